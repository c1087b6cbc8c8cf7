--- BF16MixedPrecision: Lightning's "bf16-mixed". The network's layers compute in bf16 where that has an
-- implementation (every convolution through oneDNN, with float32 accumulation) and keep their
-- activations, and the gradients of those activations, in bf16 between layers (channels-last; see
-- docs/nn.md); the layers after Flatten (linear, BatchNorm1d, dropout), the loss, the weights, their
-- gradients, the optimizer's state and BatchNorm's statistics stay float32, so checkpoints are the same
-- float32 safetensors. The forward and backward passes are where it differs from "32-true"; the
-- optimizer step and clipping are Precision's.
--
-- Without oneDNN in the build, or on a CPU without bf16 instructions, it says so once: the first runs
-- everything in float32, the second is correct (oneDNN emulates bf16) but slower than float32.
local L = require "lightning"
local class = require "lightning.class"
local output = require "lightning.util.output"
local Precision = require "lightning.precision.precision"

local BF16Mixed = class("BF16MixedPrecision", Precision)
BF16Mixed.precision = "bf16-mixed"

local warned = {}

local function warn_once(key, text)
  if warned[key] then return end
  warned[key] = true
  output.print(text)
end

--- What this machine and build do with bf16-mixed, as one line (nil when it runs as designed).
function BF16Mixed.limitation()
  local info = L.info().mixed_precision
  if not info then
    return "bf16-mixed: this build of lightning has no oneDNN (libdnnl-dev), so it computes in float32"
  end
  if not info.bf16_native then
    return ("bf16-mixed: this CPU has no bf16 instructions (oneDNN uses %s): bf16 is emulated, correct but " ..
      "slower than float32"):format(info.isa)
  end
  return nil
end

--- Switches the module's layers to bf16.
function BF16Mixed:connect(module)
  local limit = BF16Mixed.limitation()
  if limit then warn_once(limit, limit) end
  module:set_precision("bf16")
  self._module = module
  return module
end

--- The module's layers back to float32 (as the module was before the run).
function BF16Mixed:teardown()
  if self._module then self._module:set_precision("fp32") end
  self._module = nil
end

return BF16Mixed
