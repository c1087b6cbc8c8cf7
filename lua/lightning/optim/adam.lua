--- lightning.optim.Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
-- amsgrad = false, maximize = false}) and lightning.optim.AdamW (the same with decoupled weight decay,
-- default 1e-2), as PyTorch 1.13 computes them. State per parameter: step (an integer), exp_avg,
-- exp_avg_sq and, with amsgrad, max_exp_avg_sq.
local L = require "lightning"
local class = require "lightning.class"
local Optimizer = require "lightning.optim.optimizer"
local graph_step = require "lightning.optim.graph_step"

local C = L.core.optim

local function adam_options(weight_decay)
  return {
    lr = {kind = "number", min = 0, default = 1e-3},
    betas = {kind = "betas", default = {0.9, 0.999}},
    eps = {kind = "number", min = 0, default = 1e-8},
    weight_decay = {kind = "number", min = 0, default = weight_decay},
    amsgrad = {kind = "boolean", default = false},
    maximize = {kind = "boolean", default = false},
  }
end

local Adam = class("Adam", Optimizer)
Adam.options = adam_options(0)
Adam.state_keys = {step = "integer", exp_avg = "tensor", exp_avg_sq = "tensor", max_exp_avg_sq = "tensor"}
Adam.decoupled_weight_decay = false

-- In a CUDA graph's capture: the row of step values the update reads, written before each replay from the
-- group as it is then, for the state's next step, which the replay takes (graph_step.lua).
function Adam:_graph_step_values(p, group, state, index)
  local decoupled = self.decoupled_weight_decay
  local function switches()
    return ("amsgrad %s, L2 weight decay %s"):format(group.amsgrad, not decoupled and group.weight_decay ~= 0)
  end
  return graph_step.values(self, p, index, switches, function(into, row)
    local step = state.step + 1
    C.adam_step_values{lr = group.lr, beta1 = group.betas[1], beta2 = group.betas[2], eps = group.eps,
      weight_decay = group.weight_decay, amsgrad = group.amsgrad, maximize = group.maximize, decoupled = decoupled,
      step = step, into = into, row = row}
    state.step = step
  end)
end

function Adam:_update(p, grad, group, state, index)
  local captured = graph_step.capturing(p)
  if captured then graph_step.require_state(self, state.step ~= nil and (state.max_exp_avg_sq or not group.amsgrad)) end
  if state.step == nil then
    state.step = 0
    -- (on the parameter's device: a model moved to the GPU keeps its optimizer's state there)
    state.exp_avg = L.zeros(p:size()):to(p:device())
    state.exp_avg_sq = L.zeros(p:size()):to(p:device())
  end
  if group.amsgrad and state.max_exp_avg_sq == nil then state.max_exp_avg_sq = L.zeros(p:size()):to(p:device()) end
  local step = state.step + 1
  -- the kernel's named arguments, in one table reused at every call: a step allocates nothing
  local a = self._step_args or {}
  self._step_args = a
  a.param, a.grad, a.step, a.index = p, grad, step, index
  a.exp_avg, a.exp_avg_sq, a.max_exp_avg_sq = state.exp_avg, state.exp_avg_sq, state.max_exp_avg_sq
  a.lr, a.beta1, a.beta2, a.eps, a.weight_decay = group.lr, group.betas[1], group.betas[2], group.eps, group.weight_decay
  a.amsgrad, a.maximize, a.decoupled = group.amsgrad, group.maximize, self.decoupled_weight_decay
  a.step_values = nil
  if captured then a.step_values = self:_graph_step_values(p, group, state, index) end
  C.adam_step(a)
  -- in a graph each replay takes the step: the count advances then, not now
  if not captured then state.step = step end
end

local AdamW = class("AdamW", Adam)
AdamW.options = adam_options(1e-2)
AdamW.decoupled_weight_decay = true

return {Adam = Adam, AdamW = AdamW}
