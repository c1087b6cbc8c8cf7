--- L.autograd: the tape (PyTorch's define-by-run autograd). The tensor API records through it once
-- lightning is loaded; this module gives the rest:
--   L.autograd.Function(name)           a differentiable operation with its own forward and backward
--   L.autograd.gradcheck(fn, inputs)    finite differences against autograd
--   L.autograd.backward(tensors, grads[, {retain_graph}])   several roots at once
--   L.autograd.no_grad(fn, ...), enable_grad, set_grad_enabled, is_grad_enabled (also on L)
-- See docs/autograd.md.
local mode = require "lightning.autograd.mode"
local engine = require "lightning.autograd.engine"

return {
  Function = require "lightning.autograd.function",
  gradcheck = require "lightning.autograd.gradcheck",
  backward = engine.backward,
  no_grad = mode.no_grad,
  enable_grad = mode.enable_grad,
  set_grad_enabled = mode.set_grad_enabled,
  is_grad_enabled = mode.is_grad_enabled,
}
