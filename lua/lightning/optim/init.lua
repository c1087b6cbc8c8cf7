--- lightning.optim: optimizers over lists of parameters (SGD, Adam, AdamW), learning-rate schedulers
-- (lightning.optim.lr_scheduler) and gradient clipping. PyTorch 1.13's semantics and names; see
-- docs/optim.md.
local L = require "lightning"
local adam = require "lightning.optim.adam"
local state_dict = require "lightning.optim.state_dict"

local optim = {
  Optimizer = require "lightning.optim.optimizer",
  SGD = require "lightning.optim.sgd",
  Adam = adam.Adam,
  AdamW = adam.AdamW,
  --- clip_grad_norm(params, max_norm[, norm_type = 2[, error_if_nonfinite = false]]) --> total norm
  -- (before clipping) of the gradients p.grad, scaled in place by max_norm / (total + 1e-6) when that is
  -- below 1. norm_type may be math.huge (or "inf") for the largest absolute value.
  clip_grad_norm = L.core.optim.clip_grad_norm,
  --- get_total_norm(tensors[, norm_type = 2]) --> their norm as if concatenated, as a one-element tensor on
  -- their device (PyTorch's torch.nn.utils.get_total_norm): on a GPU nothing waits for it.
  get_total_norm = L.core.optim.get_total_norm,
  --- clip_grads_with_norm(params, max_norm, total_norm): the gradients scaled by
  -- min(1, max_norm / (total_norm + 1e-6)), total_norm a one-element tensor on their device (PyTorch's
  -- clip_grads_with_norm_). With get_total_norm: clip_grad_norm without reading the norm on the host, in
  -- float32 where the gradients are (so its bits may differ from clip_grad_norm's by a rounding).
  clip_grads_with_norm = L.core.optim.clip_grads_with_norm,
  --- clip_grad_value(params, clip_value): clamps every gradient element to [-clip_value, clip_value].
  clip_grad_value = L.core.optim.clip_grad_value,
  flatten_state_dict = state_dict.flatten,
  unflatten_state_dict = state_dict.unflatten,
  --- learning_rates(opt) --> the learning rates of an optimizer, one per parameter group.
  learning_rates = require "lightning.optim.learning_rates",
}

-- the schedulers load on first use
return require("lightning.lazy")({lr_scheduler = "lightning.optim.lr_scheduler"}, optim)
