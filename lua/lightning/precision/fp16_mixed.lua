--- FP16MixedPrecision: Lightning's "16-mixed" (its MixedPrecision plugin with a GradScaler). On a GPU the
-- layers compute as under bf16-mixed but in fp16 (cuDNN's fp16 convolutions with float32 sums, fp16
-- activations between layers, channels-last; float32 weights, gradients, optimizer state and
-- checkpoints), and a dynamic loss scaler (L.amp.GradScaler) keeps small gradients from vanishing in
-- fp16's narrow range: the backward pass starts from the scale instead of 1, the gradients are unscaled
-- before the on_before_optimizer_step hooks and clipping see them, a step whose gradients overflowed is
-- skipped (the module's optimizer_step hook is not called) and the scale is updated after every step.
-- The scaler's state is saved in checkpoints.
--
-- The CPU has no fp16 kernels, so on the CPU this is refused as Lightning refuses it ("use bf16-mixed").
-- Reading back whether to skip makes the host wait once a step, so a run under 16-mixed is not replayed
-- as a CUDA graph (docs/gpu.md).
local L = require "lightning"
local class = require "lightning.class"
local options = require "lightning.util.options"
local GradScaler = require "lightning.amp.grad_scaler"
local HalfLayers = require "lightning.precision.half_layers"

local FP16Mixed = class("FP16MixedPrecision", HalfLayers)
FP16Mixed.precision = "16-mixed"

FP16Mixed.CPU_REFUSAL = "16-mixed (fp16 with a loss scaler) needs a GPU: the CPU has no fp16 kernels (Lightning " ..
  "refuses it on a CPU too); use precision = \"bf16-mixed\""

--- FP16MixedPrecision{scaler = L.amp.GradScaler{...}}: a scaler of one's own (the default one's settings
-- are PyTorch's: init_scale 2^16, growth_interval 2000).
function FP16Mixed:__init(opts)
  local o = options.check("FP16MixedPrecision", opts,
    {scaler = {test = function(v) return class.is_instance(v, GradScaler) end, expected = "an L.amp.GradScaler"}})
  self.scaler = o.scaler or GradScaler()
end

--- The layers' precision on `device` ("fp16", or "fp32" where the GPU's backend has no fp16 kernels) and,
-- when that is not the design, one line saying why.
function FP16Mixed.limitation(device)
  local fp16, why = L.cuda.is_fp16_supported()
  if fp16 then return "fp16", nil end
  return "fp32", ("16-mixed on %s: %s, so the layers compute in float32 (the loss scaler still runs)"):format(device, why)
end

--- Refused on the host; on a GPU the layers go to fp16 (HalfLayers).
function FP16Mixed:connect(module)
  if module:device() == "cpu" then options.fail("Trainer", "%s", FP16Mixed.CPU_REFUSAL) end
  return HalfLayers.connect(self, module)
end

--- The backward pass from the loss scale (backward_step's grad_loss), on the loss's device (the
-- module's, when the loss is a number).
function FP16Mixed:backward(loss, module, optimizer, batch, outputs)
  local like = L.is_tensor(loss) and loss or module:parameters()[1]
  local grad_loss = like and self.scaler:loss_gradient(like) or nil
  return module.trainer:_call_module_hook("backward_step", batch, outputs, grad_loss)
end

--- Unscales, runs the hooks and clipping on the true gradients, then the module's optimizer_step unless
-- the gradients overflowed, and updates the scale.
function FP16Mixed:optimizer_step(optimizer, module, batch_idx)
  local scaler = self.scaler
  local scaled = scaler:is_enabled() and scaler:has_scale()
  if scaled then scaler:unscale_(optimizer) end
  self:_before_step(optimizer, module)
  -- disabled, or nothing was scaled (no backward pass ran): a plain step
  if not scaled then return self:_take_step(optimizer, module, batch_idx) end
  local result = scaler:step_with(optimizer, function() return self:_take_step(optimizer, module, batch_idx) end)
  scaler:update()
  return result
end

--- The scaler's state (PyTorch's GradScaler.state_dict), saved in checkpoints.
function FP16Mixed:state_dict() return self.scaler:state_dict() end

function FP16Mixed:load_state_dict(state)
  if state and next(state) ~= nil then self.scaler:load_state_dict(state) end
end

return FP16Mixed
