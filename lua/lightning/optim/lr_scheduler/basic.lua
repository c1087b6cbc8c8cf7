--- The schedules that follow from the epoch alone, with PyTorch 1.13's formulas: the chainable form
-- (_compute_lr, from the groups' current lrs, which PyTorch's step() uses) and the closed form
-- (_closed_form_lr, from base_lrs). Both are kept so that the numbers agree with PyTorch's in either use.
local class = require "lightning.class"
local LRScheduler = require "lightning.optim.lr_scheduler.scheduler"

local M = {}

-- Each group's current lr times factor(i) (i: the group's index).
local function scaled(self, factor)
  local lrs = self:_group_lrs()
  for i = 1, #lrs do lrs[i] = lrs[i] * factor(i) end
  return lrs
end

local function from_base(self, f)
  local lrs = {}
  for i, base in ipairs(self.base_lrs) do lrs[i] = f(base, i) end
  return lrs
end

--- StepLR(opt, {step_size, gamma = 0.1}): lr * gamma every step_size epochs.
local StepLR = class("StepLR", LRScheduler)
StepLR.options = {
  step_size = {kind = "integer", min = 1, required = true},
  gamma = {kind = "number", default = 0.1},
}
function StepLR:_compute_lr()
  if self.last_epoch == 0 or self.last_epoch % self.step_size ~= 0 then return self:_group_lrs() end
  return scaled(self, function() return self.gamma end)
end
function StepLR:_closed_form_lr()
  return from_base(self, function(base) return base * self.gamma ^ (self.last_epoch // self.step_size) end)
end
M.StepLR = StepLR

--- MultiStepLR(opt, {milestones, gamma = 0.1}): lr * gamma at each milestone (an epoch listed twice
-- multiplies twice).
local MultiStepLR = class("MultiStepLR", LRScheduler)
MultiStepLR.options = {
  milestones = {kind = "integers", required = true},
  gamma = {kind = "number", default = 0.1},
}
function MultiStepLR:_setup()
  table.sort(self.milestones)
end
function MultiStepLR:_compute_lr()
  local count = 0
  for _, m in ipairs(self.milestones) do
    if m == self.last_epoch then count = count + 1 end
  end
  if count == 0 then return self:_group_lrs() end
  return scaled(self, function() return self.gamma ^ count end)
end
function MultiStepLR:_closed_form_lr()
  local passed = 0  -- milestones at or before last_epoch
  for _, m in ipairs(self.milestones) do
    if m <= self.last_epoch then passed = passed + 1 end
  end
  return from_base(self, function(base) return base * self.gamma ^ passed end)
end
M.MultiStepLR = MultiStepLR

--- ConstantLR(opt, {factor = 1/3, total_iters = 5}): lr * factor until epoch total_iters.
local ConstantLR = class("ConstantLR", LRScheduler)
ConstantLR.options = {
  factor = {kind = "number", above = 0, max = 1, default = 1 / 3},
  total_iters = {kind = "integer", min = 0, default = 5},
}
function ConstantLR:_compute_lr()
  if self.last_epoch == 0 then return scaled(self, function() return self.factor end) end
  if self.last_epoch ~= self.total_iters then return self:_group_lrs() end
  return scaled(self, function() return 1.0 / self.factor end)
end
function ConstantLR:_closed_form_lr()
  local f = self.last_epoch >= self.total_iters and 1 or self.factor
  return from_base(self, function(base) return base * f end)
end
M.ConstantLR = ConstantLR

--- LinearLR(opt, {start_factor = 1/3, end_factor = 1, total_iters = 5}): the factor goes linearly from
-- start_factor to end_factor over total_iters epochs (a linear warm-up when start_factor < end_factor).
local LinearLR = class("LinearLR", LRScheduler)
LinearLR.options = {
  start_factor = {kind = "number", above = 0, max = 1, default = 1 / 3},
  end_factor = {kind = "number", min = 0, max = 1, default = 1.0},
  total_iters = {kind = "integer", min = 1, default = 5},
}
function LinearLR:_compute_lr()
  local e, s, n = self.last_epoch, self.start_factor, self.end_factor
  if e == 0 then return scaled(self, function() return s end) end
  if e > self.total_iters then return self:_group_lrs() end
  local f = 1.0 + (n - s) / (self.total_iters * s + (e - 1) * (n - s))
  return scaled(self, function() return f end)
end
function LinearLR:_closed_form_lr()
  local s, n = self.start_factor, self.end_factor
  local f = s + (n - s) * math.min(self.total_iters, self.last_epoch) / self.total_iters
  return from_base(self, function(base) return base * f end)
end
M.LinearLR = LinearLR

--- ExponentialLR(opt, {gamma}): lr * gamma every epoch.
local ExponentialLR = class("ExponentialLR", LRScheduler)
ExponentialLR.options = {gamma = {kind = "number", required = true}}
function ExponentialLR:_compute_lr()
  if self.last_epoch == 0 then return self:_group_lrs() end
  return scaled(self, function() return self.gamma end)
end
function ExponentialLR:_closed_form_lr()
  return from_base(self, function(base) return base * self.gamma ^ self.last_epoch end)
end
M.ExponentialLR = ExponentialLR

--- PolynomialLR(opt, {total_iters = 5, power = 1}): base_lr * (1 - epoch / total_iters)^power, then 0.
local PolynomialLR = class("PolynomialLR", LRScheduler)
PolynomialLR.options = {
  total_iters = {kind = "integer", min = 1, default = 5},
  power = {kind = "number", default = 1.0},
}
function PolynomialLR:_compute_lr()
  local e, n = self.last_epoch, self.total_iters
  if e == 0 or e > n then return self:_group_lrs() end
  local f = ((1.0 - e / n) / (1.0 - (e - 1) / n)) ^ self.power
  return scaled(self, function() return f end)
end
function PolynomialLR:_closed_form_lr()
  local f = (1.0 - math.min(self.total_iters, self.last_epoch) / self.total_iters) ^ self.power
  return from_base(self, function(base) return base * f end)
end
M.PolynomialLR = PolynomialLR

--- LambdaLR(opt, {lr_lambda}): base_lr * lr_lambda(epoch); lr_lambda a function or one per group. The
-- functions are not part of the state dict.
local LambdaLR = class("LambdaLR", LRScheduler)
LambdaLR.options = {lr_lambda = {kind = "function_or_list", required = true}}
function LambdaLR:_setup(fname)
  local n = #self.optimizer.param_groups
  if type(self.lr_lambda) == "table" and #self.lr_lambda ~= n then
    error(("%s: expected %d lr_lambda functions (one per parameter group), got %d"):format(fname, n, #self.lr_lambda), 0)
  end
end
function LambdaLR:_compute_lr()
  return from_base(self, function(base, i)
    local f = type(self.lr_lambda) == "function" and self.lr_lambda or self.lr_lambda[i]
    return base * f(self.last_epoch)
  end)
end
M.LambdaLR = LambdaLR

--- CosineAnnealingLR(opt, {T_max, eta_min = 0}): from base_lr down to eta_min along half a cosine over
-- T_max epochs, then back up (PyTorch's recursive form, which continues periodically).
local CosineAnnealingLR = class("CosineAnnealingLR", LRScheduler)
CosineAnnealingLR.options = {
  T_max = {kind = "number", above = 0, required = true},
  eta_min = {kind = "number", default = 0},
}
function CosineAnnealingLR:_compute_lr()
  local e, T, eta_min = self.last_epoch, self.T_max, self.eta_min
  if e == 0 then return self:_group_lrs() end
  if self._step_count == 1 and e > 0 then return self:_closed_form_lr() end
  local lrs = self:_group_lrs()
  if (e - 1 - T) % (2 * T) == 0 then
    for i, lr in ipairs(lrs) do lrs[i] = lr + (self.base_lrs[i] - eta_min) * (1 - math.cos(math.pi / T)) / 2 end
    return lrs
  end
  local ratio = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
  for i, lr in ipairs(lrs) do lrs[i] = ratio * (lr - eta_min) + eta_min end
  return lrs
end
function CosineAnnealingLR:_closed_form_lr()
  local e, T, eta_min = self.last_epoch, self.T_max, self.eta_min
  return from_base(self, function(base) return eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / T)) / 2 end)
end
M.CosineAnnealingLR = CosineAnnealingLR

return M
