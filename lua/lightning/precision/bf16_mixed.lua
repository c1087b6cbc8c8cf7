--- BF16MixedPrecision: Lightning's "bf16-mixed". The network's layers compute in bf16 where that has an
-- implementation (every convolution through oneDNN, with float32 accumulation) and keep their
-- activations, and the gradients of those activations, in bf16 between layers (channels-last; see
-- docs/nn.md); the layers after Flatten (linear, BatchNorm1d, dropout), the loss, the weights, their
-- gradients, the optimizer's state and BatchNorm's statistics stay float32, so checkpoints are the same
-- float32 safetensors. The forward and backward passes are where it differs from "32-true"; the
-- optimizer step and clipping are Precision's.
--
-- It says once when the machine cannot do it as designed: without oneDNN in the build, or on a CPU
-- without AVX-512 (oneDNN 2.6 has no bf16 kernels there), it computes in float32; on an AVX-512 CPU
-- without bf16 instructions oneDNN emulates them, correct but slower than float32. On a GPU the same
-- layers compute in bf16 through the CUDA backend's channels-last tables (cuDNN's bf16 convolutions,
-- the backend's BatchNorm, pooling and activation kernels), where the GPU has bf16 tensor cores
-- (compute capability 8.0 or later: L.cuda.is_bf16_supported); elsewhere in float32, and it says so.
local L = require "lightning"
local class = require "lightning.class"
local HalfLayers = require "lightning.precision.half_layers"

local BF16Mixed = class("BF16MixedPrecision", HalfLayers)
BF16Mixed.precision = "bf16-mixed"

--- What this machine and build do with bf16-mixed on `device` (default "cpu"): the layers' precision
-- ("bf16", or "fp32" where bf16 cannot run) and, when that is not the design, one line saying why.
function BF16Mixed.limitation(device)
  if device and device ~= "cpu" then
    local bf16, why = L.cuda.is_bf16_supported()
    if bf16 then return "bf16", nil end
    return "fp32", ("bf16-mixed on %s: %s, so it computes in float32 (TF32 in convolutions and matrix products, " ..
      "L.cuda.allow_tf32)"):format(device, why)
  end
  local info = L.info().mixed_precision
  if not info then
    return "fp32", "bf16-mixed: this build of lightning has no oneDNN (libdnnl-dev), so it computes in float32"
  end
  if not info.bf16_supported then
    return "fp32", ("bf16-mixed: oneDNN has no bf16 kernels for this CPU (it runs %s, bf16 needs AVX-512), so " ..
      "it computes in float32"):format(info.isa)
  end
  if not info.bf16_native then
    return "bf16", ("bf16-mixed: this CPU has no bf16 instructions (oneDNN runs %s): bf16 is emulated, correct " ..
      "but slower than float32"):format(info.isa)
  end
  return "bf16", nil
end

return BF16Mixed
