--- lightning.nn: layers, containers and losses with PyTorch's names and Torch7's forward/backward
-- protocol (see module.lua).
local nn = {}

nn.Module = require "lightning.nn.module"

return nn
