--- lightning.optim.SGD(params, {lr, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
-- maximize = false}): stochastic gradient descent as PyTorch 1.13 computes it (momentum buffer
-- started as the first gradient, then buf = momentum * buf + (1 - dampening) * grad).
local L = require "lightning"
local class = require "lightning.class"
local Optimizer = require "lightning.optim.optimizer"

local C = L.core.optim

local SGD = class("SGD", Optimizer)

SGD.options = {
  lr = {kind = "number", min = 0, required = true},
  momentum = {kind = "number", min = 0, default = 0},
  dampening = {kind = "number", default = 0},
  weight_decay = {kind = "number", min = 0, default = 0},
  nesterov = {kind = "boolean", default = false},
  maximize = {kind = "boolean", default = false},
}
SGD.state_keys = {momentum_buffer = "tensor"}

function SGD:_combination_problem(group)
  if group.nesterov and (group.momentum <= 0 or group.dampening ~= 0) then
    return ("nesterov momentum requires a momentum > 0 and zero dampening (momentum %s, dampening %s)")
      :format(tostring(group.momentum), tostring(group.dampening))
  end
end

function SGD:_update(p, grad, group, state, index)
  local buffer, init = state.momentum_buffer, false
  if group.momentum ~= 0 and buffer == nil then
    -- the kernel copies the first gradient into it (on the parameter's device)
    buffer, init = L.empty(p:size()):to(p:device()), true
  end
  -- the kernel's named arguments, in one table reused at every call: a step allocates nothing
  local a = self._step_args or {}
  self._step_args = a
  a.param, a.momentum_buffer, a.grad, a.init_buffer, a.index = p, buffer, grad, init, index
  a.lr, a.momentum, a.dampening, a.weight_decay = group.lr, group.momentum, group.dampening, group.weight_decay
  a.nesterov, a.maximize = group.nesterov, group.maximize
  C.sgd_step(a)
  if init then state.momentum_buffer = buffer end
end

return SGD
