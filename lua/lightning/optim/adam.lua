--- lightning.optim.Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
-- amsgrad = false, maximize = false}) and lightning.optim.AdamW (the same with decoupled weight decay,
-- default 1e-2), as PyTorch 1.13 computes them. State per parameter: step (an integer), exp_avg,
-- exp_avg_sq and, with amsgrad, max_exp_avg_sq.
local L = require "lightning"
local class = require "lightning.class"
local Optimizer = require "lightning.optim.optimizer"

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

function Adam:_update(p, grad, group, state, index)
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
  C.adam_step(a)
  state.step = step
end

local AdamW = class("AdamW", Adam)
AdamW.options = adam_options(1e-2)
AdamW.decoupled_weight_decay = true

return {Adam = Adam, AdamW = AdamW}
