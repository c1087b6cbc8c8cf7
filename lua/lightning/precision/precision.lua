--- Precision: the plugin a strategy holds for the numerics of a training step, PyTorch Lightning's
-- Precision. This base class is full float32 ("32-true"): it runs the backward pass and the optimizer
-- step as they are, with the hooks around them, and clips gradients. A mixed-precision plugin
-- (bf16-mixed) subclasses it: it may convert the module (connect), run forward passes in another
-- precision, keep float32 master weights (main_params) and change how the step is taken.
--   pre_backward(loss, module)              on_before_backward hooks
--   backward(loss, module, optimizer, batch, outputs)   the module's backward_step
--   post_backward(loss, module)             on_after_backward hooks
--   optimizer_step(optimizer, module, batch_idx)
--       on_before_optimizer_step hooks, configure_gradient_clipping, the module's optimizer_step
--   clip_gradients(optimizer, clip_val, algorithm, module)  "norm" or "value", on main_params(optimizer)
--   main_params(optimizer, module)          the tensors the optimizer updates
--   connect(module), teardown(), state_dict(), load_state_dict(state)
-- Hooks run through module.trainer (trainer:_call_hook / _call_module_hook), as Lightning's plugins
-- call them through the trainer.
local class = require "lightning.class"
local optim = require "lightning.optim"
local flat = require "lightning.nn.flat"
local options = require "lightning.util.options"

local Precision = class("Precision")

--- The name of the setting (Lightning's): "32-true".
Precision.precision = "32-true"

function Precision:__init() end

--- Prepares the module for this precision (nothing to do in float32); returns it.
function Precision:connect(module) return module end

function Precision:pre_backward(loss, module)
  module.trainer:_call_hook("on_before_backward", loss)
  return loss
end

function Precision:backward(loss, module, optimizer, batch, outputs)
  return module.trainer:_call_module_hook("backward_step", batch, outputs)
end

function Precision:post_backward(loss, module)
  module.trainer:_call_hook("on_after_backward")
  return loss
end

--- The hooks before the step, clipping (through the module's configure_gradient_clipping), then the
-- module's optimizer_step (whose default calls optimizer:step()).
function Precision:optimizer_step(optimizer, module, batch_idx)
  self:_before_step(optimizer, module)
  return self:_take_step(optimizer, module, batch_idx)
end

-- What comes before the step: the on_before_optimizer_step hooks, then clipping.
function Precision:_before_step(optimizer, module)
  local trainer = module.trainer
  trainer:_call_hook("on_before_optimizer_step", optimizer)
  local clip_val = trainer.gradient_clip_val
  trainer:_call_module_hook("configure_gradient_clipping", optimizer, clip_val,
    trainer.gradient_clip_algorithm or (clip_val and "norm"))
end

-- The step itself: the module's optimizer_step hook.
function Precision:_take_step(optimizer, module, batch_idx)
  local trainer = module.trainer
  return trainer:_call_module_hook("optimizer_step", trainer.current_epoch, batch_idx, optimizer)
end

--- The parameters an optimizer updates (param_groups[i].params, PyTorch's layout), or the module's
-- when the optimizer does not list them.
function Precision:main_params(optimizer, module)
  if type(optimizer.param_groups) == "table" then
    local list = {}
    for _, group in ipairs(optimizer.param_groups) do
      for _, p in ipairs(group.params or {}) do list[#list + 1] = p end
    end
    if #list > 0 then return list end
  end
  return module:parameters()
end

--- Clips the gradients of main_params(optimizer): by their total 2-norm ("norm", PyTorch's
-- clip_grad_norm_) or each element ("value"); nothing without a positive clip_val.
function Precision:clip_gradients(optimizer, clip_val, algorithm, module)
  if not clip_val or clip_val <= 0 then return end
  algorithm = algorithm or "norm"
  if algorithm == "value" then return self:clip_grad_by_value(optimizer, clip_val, module) end
  if algorithm ~= "norm" then
    options.fail(nil, "gradient_clip_algorithm must be \"norm\" or \"value\", got %s", options.describe(algorithm))
  end
  return self:clip_grad_by_norm(optimizer, clip_val, module)
end

-- main_params(optimizer), or the flat parameters when they are flattened (Module:flatten_parameters):
-- one pass over the flat gradient.
local function clipped_params(self, optimizer, module)
  local params = self:main_params(optimizer, module)
  local rec = flat.flat_of(params)
  return rec and {rec.flat_params} or params
end

local function clip_with(self, fn, optimizer, clip_val, module)
  return fn(clipped_params(self, optimizer, module), clip_val)
end

--- Scales the gradients so that their total norm is at most clip_val; returns the norm before: a number
-- on the CPU, a one-element tensor on a GPU, where the norm stays (get_total_norm and
-- clip_grads_with_norm: nothing waits, so a step that clips can be a CUDA graph's).
function Precision:clip_grad_by_norm(optimizer, clip_val, module)
  local params = clipped_params(self, optimizer, module)
  if not (params[1] and params[1]:device() ~= "cpu") then return optim.clip_grad_norm(params, clip_val) end
  local total = optim.get_total_norm(flat.gradients(params))
  optim.clip_grads_with_norm(params, clip_val, total)
  return total
end

--- Clamps every gradient element to [-clip_val, clip_val].
function Precision:clip_grad_by_value(optimizer, clip_val, module)
  return clip_with(self, optim.clip_grad_value, optimizer, clip_val, module)
end

function Precision:teardown() end

--- State saved in checkpoints (a loss scaler's, for plugins that have one).
function Precision:state_dict() return {} end
function Precision:load_state_dict(state) end

return Precision
