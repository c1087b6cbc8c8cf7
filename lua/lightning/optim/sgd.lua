--- lightning.optim.SGD(params, {lr, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
-- maximize = false}): stochastic gradient descent as PyTorch 1.13 computes it (momentum buffer
-- started as the first gradient, then buf = momentum * buf + (1 - dampening) * grad).
local L = require "lightning"
local class = require "lightning.class"
local Optimizer = require "lightning.optim.optimizer"
local graph_step = require "lightning.optim.graph_step"

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

-- In a CUDA graph's capture: the row of step values the update reads, written before each replay from the
-- group as it is then (graph_step.lua).
function SGD:_graph_step_values(p, group, index)
  local function switches()
    return ("momentum %s, nesterov %s, weight decay %s"):format(group.momentum ~= 0, group.nesterov,
      group.weight_decay ~= 0)
  end
  return graph_step.values(self, p, index, switches, function(into, row)
    C.sgd_step_values{lr = group.lr, momentum = group.momentum, dampening = group.dampening,
      weight_decay = group.weight_decay, nesterov = group.nesterov, maximize = group.maximize, into = into, row = row}
  end)
end

function SGD:_update(p, grad, group, state, index)
  local buffer, init = state.momentum_buffer, false
  local captured = graph_step.capturing(p)
  if captured then graph_step.require_state(self, group.momentum == 0 or buffer ~= nil) end
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
  a.step_values = nil
  if captured then a.step_values = self:_graph_step_values(p, group, index) end
  C.sgd_step(a)
  if init then state.momentum_buffer = buffer end
end

return SGD
