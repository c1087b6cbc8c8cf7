--- lightning: deep learning for Lua 5.4 with a C core.
-- `require "lightning"` gives the tensor functions of the C library (lightning.core); the Lua parts
-- (nn, optim, data, Trainer, ...) load on first use, so that requiring the library stays cheap.
local core = require "lightning.core"

local L = {}
for name, value in pairs(core) do
  if type(value) == "function" then L[name] = value end
end
L.core = core
-- autograd records through the tensor operators and methods (lightning/autograd/tensor.lua)
require("lightning.autograd.tensor").install(L)

-- key of L -> the module that provides it, or {module, field} for one function of a module
local lazy = {
  class = "lightning.class",
  nn = "lightning.nn",
  autograd = "lightning.autograd",
  optim = "lightning.optim",
  amp = "lightning.amp",
  data = "lightning.data",
  models = "lightning.models",
  loggers = "lightning.loggers",
  callbacks = "lightning.callbacks",
  plot = "lightning.plot",
  metrics = "lightning.metrics",
  Trainer = "lightning.trainer",
  LightningModule = "lightning.lightning_module",
  Callback = "lightning.callbacks.callback",
  strategies = "lightning.strategies",
  precision = "lightning.precision",
  distributed = "lightning.distributed",
  cuda = "lightning.cuda",
  accelerators = "lightning.accelerators",
  save_weights = {"lightning.weights", "save_weights"},
  load_weights = {"lightning.weights", "load_weights"},
  print = {"lightning.util.output", "print"},   -- print above a progress bar (lightning.util.output)
}

return require("lightning.lazy")(lazy, L)
