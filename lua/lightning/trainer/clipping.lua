--- Gradient clipping for the Trainer's gradient_clip_val / gradient_clip_algorithm, as PyTorch's
-- clip_grad_norm_ (by the total 2-norm of all gradients) and clip_grad_value_ (each element).
-- Uses lightning.optim's functions when they exist.
local clipping = {}

local function optim_function(names)
  local ok, optim = pcall(require, "lightning.optim")
  if not ok or type(optim) ~= "table" then return nil end
  for _, name in ipairs(names) do
    if type(optim[name]) == "function" then return optim[name] end
  end
end

local function grads_of(params)
  local grads = {}
  for _, p in ipairs(params) do if p.grad then grads[#grads + 1] = p.grad end end
  return grads
end

--- Scales all gradients so that their total norm is at most max_norm; returns the norm before.
function clipping.clip_norm(params, max_norm)
  local fn = optim_function {"clip_grad_norm_", "clip_grad_norm"}
  if fn then return fn(params, max_norm) end
  local sum = 0
  for _, g in ipairs(grads_of(params)) do sum = sum + g:norm() ^ 2 end
  local total = math.sqrt(sum)
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then
    for _, g in ipairs(grads_of(params)) do g:mul(coef) end
  end
  return total
end

--- Clamps every gradient element to [-clip_value, clip_value].
function clipping.clip_value(params, clip_value)
  local fn = optim_function {"clip_grad_value_", "clip_grad_value"}
  if fn then return fn(params, clip_value) end
  for _, g in ipairs(grads_of(params)) do g:clamp(-clip_value, clip_value) end
end

function clipping.clip(optimizer, module, value, algorithm)
  local params = require("lightning.trainer.optimization").parameters_of(optimizer, module)
  if algorithm == "value" then return clipping.clip_value(params, value) end
  if algorithm ~= "norm" then
    error(("gradient_clip_algorithm must be \"norm\" or \"value\", got %s"):format(tostring(algorithm)), 0)
  end
  return clipping.clip_norm(params, value)
end

return clipping
