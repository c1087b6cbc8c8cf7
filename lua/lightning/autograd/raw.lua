--- The tensor operations as the C library defines them, captured before autograd wraps the methods and
-- operators that it records (tensor.lua): the ops' forward and backward functions call these, so that
-- computing a gradient never records, and costs what the C call costs.
local L = require "lightning.core"

local raw = {}
for name, fn in pairs(L.Tensor) do raw[name] = fn end
local mt = getmetatable(L.empty(0))
for _, name in ipairs {"__add", "__sub", "__mul", "__div", "__pow", "__unm"} do raw[name] = mt[name] end
for _, name in ipairs {"mm", "bmm", "matmul", "addmm", "cat", "stack", "where", "zeros", "ones", "empty", "full"} do
  raw["L_" .. name] = L[name]
end
return raw
