--- HalfLayers: what the two mixed-precision plugins share (bf16_mixed.lua, fp16_mixed.lua): connect
-- switches the module's layers to the 16-bit precision where the device computes it, saying once why
-- when it cannot; teardown switches them back to float32. A subclass gives limitation(device) --> the
-- layers' precision ("bf16", "fp16" or "fp32") and nil, or a line saying why not the design.
local class = require "lightning.class"
local output = require "lightning.util.output"
local Precision = require "lightning.precision.precision"

local HalfLayers = class("HalfLayers", Precision)

local warned = {}

--- Switches the module's layers to the subclass's precision (or float32, said once).
function HalfLayers:connect(module)
  local layers, limit = self.limitation(module:device())
  if limit and not warned[limit] then
    warned[limit] = true
    output.print(limit)
  end
  module:set_precision(layers)
  self._module = module
  return module
end

--- The module's layers back to float32 (as the module was before the run).
function HalfLayers:teardown()
  if self._module then self._module:set_precision("fp32") end
  self._module = nil
end

return HalfLayers
