--- lightning: deep learning for Lua 5.4 with a C core.
-- `require "lightning"` gives the tensor functions of the C library (lightning.core) and, on first
-- use, the Lua submodules (nn, optim, data, ...), so loading the library stays cheap.
local core = require "lightning.core"

local L = {}
for name, value in pairs(core) do L[name] = value end

local submodules = {}

return setmetatable(L, {
  __index = function(_, key)
    if submodules[key] then
      local module = require("lightning." .. submodules[key])
      rawset(L, key, module)
      return module
    end
  end,
})
