--- OneCycleLR(opt, {max_lr, total_steps | epochs + steps_per_epoch, pct_start = 0.3,
-- anneal_strategy = "cos", cycle_momentum = true, base_momentum = 0.85, max_momentum = 0.95,
-- div_factor = 25, final_div_factor = 1e4, three_phase = false}): PyTorch 1.13's, stepped once per
-- batch. The lr rises from max_lr / div_factor to max_lr over pct_start of the steps, then falls to
-- initial_lr / final_div_factor. With cycle_momentum the momentum (SGD's momentum, Adam's beta1) moves
-- the other way between max_momentum and base_momentum; construction sets it to max_momentum, as
-- PyTorch does. max_lr, base_momentum and max_momentum may be lists, one value per group.
local class = require "lightning.class"
local LRScheduler = require "lightning.optim.lr_scheduler.scheduler"
local check = require "lightning.util.options"

local OneCycleLR = class("OneCycleLR", LRScheduler)

OneCycleLR.options = {
  max_lr = {kind = "number_or_list", min = 0, required = true},
  total_steps = {kind = "integer", min = 1},
  epochs = {kind = "integer", min = 1},
  steps_per_epoch = {kind = "integer", min = 1},
  pct_start = {kind = "number", min = 0, max = 1, default = 0.3},
  anneal_strategy = {kind = "string", one_of = {"cos", "linear"}, default = "cos"},
  cycle_momentum = {kind = "boolean", default = true},
  base_momentum = {kind = "number_or_list", default = 0.85},
  max_momentum = {kind = "number_or_list", default = 0.95},
  div_factor = {kind = "number", above = 0, default = 25.0},
  final_div_factor = {kind = "number", above = 0, default = 1e4},
  three_phase = {kind = "boolean", default = false},
}

local fail = check.fail

-- A value per group from a number or a list.
local function per_group(fname, name, value, n)
  if type(value) == "number" then
    local list = {}
    for i = 1, n do list[i] = value end
    return list
  end
  if #value ~= n then fail(fname, "expected %d values for %s (one per parameter group), got %d", n, name, #value) end
  return value
end

function OneCycleLR:_setup(fname)
  if self.total_steps == nil then
    if self.epochs == nil or self.steps_per_epoch == nil then
      fail(fname, "give total_steps, or epochs and steps_per_epoch")
    end
    self.total_steps = self.epochs * self.steps_per_epoch
  end
  local groups = self.optimizer.param_groups
  if self.last_epoch == -1 then
    local max_lrs = per_group(fname, "max_lr", self.max_lr, #groups)
    for i, group in ipairs(groups) do
      group.initial_lr = max_lrs[i] / self.div_factor
      group.max_lr = max_lrs[i]
      group.min_lr = group.initial_lr / self.final_div_factor
    end
  end
  if self.cycle_momentum then
    local defaults = self.optimizer.defaults
    if defaults.momentum == nil and defaults.betas == nil then
      fail(fname, "cycle_momentum needs an optimizer with momentum or betas (SGD, Adam, AdamW); pass cycle_momentum = false")
    end
    self.use_beta1 = defaults.betas ~= nil
    if self.last_epoch == -1 then
      local max_m = per_group(fname, "max_momentum", self.max_momentum, #groups)
      local base_m = per_group(fname, "base_momentum", self.base_momentum, #groups)
      for i, group in ipairs(groups) do
        self:_set_momentum(group, max_m[i])
        group.max_momentum = max_m[i]
        group.base_momentum = base_m[i]
      end
    end
  end
end

function OneCycleLR:_set_momentum(group, m)
  if self.use_beta1 then group.betas = {m, group.betas[2]} else group.momentum = m end
end

-- The phases: from which group key to which, ending at which step.
function OneCycleLR:_phases()
  local n, pct = self.total_steps, self.pct_start
  if self.three_phase then
    return {
      {end_step = pct * n - 1, start_lr = "initial_lr", end_lr = "max_lr", start_m = "max_momentum", end_m = "base_momentum"},
      {end_step = 2 * pct * n - 2, start_lr = "max_lr", end_lr = "initial_lr", start_m = "base_momentum", end_m = "max_momentum"},
      {end_step = n - 1, start_lr = "initial_lr", end_lr = "min_lr", start_m = "max_momentum", end_m = "max_momentum"},
    }
  end
  return {
    {end_step = pct * n - 1, start_lr = "initial_lr", end_lr = "max_lr", start_m = "max_momentum", end_m = "base_momentum"},
    {end_step = n - 1, start_lr = "max_lr", end_lr = "min_lr", start_m = "base_momentum", end_m = "max_momentum"},
  }
end

local function anneal(strategy, start, stop, pct)
  if strategy == "cos" then return stop + (start - stop) / 2.0 * (math.cos(math.pi * pct) + 1) end
  return (stop - start) * pct + start
end

function OneCycleLR:_compute_lr()
  local step = self.last_epoch
  if step > self.total_steps then
    fail(self:_fname("step"), "tried to step %d times; the schedule has total_steps = %d", step + 1, self.total_steps)
  end
  local phases = self:_phases()
  local lrs = {}
  for gi, group in ipairs(self.optimizer.param_groups) do
    local start_step = 0
    for i, phase in ipairs(phases) do
      if step <= phase.end_step or i == #phases then
        local pct = (step - start_step) / (phase.end_step - start_step)
        lrs[gi] = anneal(self.anneal_strategy, group[phase.start_lr], group[phase.end_lr], pct)
        if self.cycle_momentum then
          self:_set_momentum(group, anneal(self.anneal_strategy, group[phase.start_m], group[phase.end_m], pct))
        end
        break
      end
      start_step = phase.end_step
    end
  end
  return lrs
end

return OneCycleLR
