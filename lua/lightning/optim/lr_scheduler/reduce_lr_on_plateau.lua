--- ReduceLROnPlateau(opt, {mode = "min", factor = 0.1, patience = 10, threshold = 1e-4,
-- threshold_mode = "rel", cooldown = 0, min_lr = 0, eps = 1e-8}): PyTorch 1.13's. sched:step(metric)
-- after each validation; when the metric has not improved (by threshold) for more than `patience`
-- steps, every group's lr becomes max(lr * factor, min_lr), unless that changes it by less than eps;
-- then `cooldown` steps pass before bad steps count again. min_lr may be a list, one per group.
local L = require "lightning"
local class = require "lightning.class"
local check = require "lightning.util.options"
local LRScheduler = require "lightning.optim.lr_scheduler.scheduler"

local ReduceLROnPlateau = class("ReduceLROnPlateau")

local options = {
  mode = {kind = "string", one_of = {"min", "max"}, default = "min"},
  factor = {kind = "number", min = 0, below = 1, default = 0.1},
  patience = {kind = "integer", min = 0, default = 10},
  threshold = {kind = "number", min = 0, default = 1e-4},
  threshold_mode = {kind = "string", one_of = {"rel", "abs"}, default = "rel"},
  cooldown = {kind = "integer", min = 0, default = 0},
  min_lr = {kind = "number_or_list", min = 0, default = 0},
  eps = {kind = "number", min = 0, default = 1e-8},
}

-- The state dict: the options (min_lr as min_lrs, a list) and the counters. best is left out while it
-- is infinite (no metric seen yet), so that the table stays valid JSON.
local state_specs = {
  mode = options.mode, factor = options.factor, patience = options.patience, threshold = options.threshold,
  threshold_mode = options.threshold_mode, cooldown = options.cooldown, eps = options.eps,
  min_lrs = {kind = "numbers", min = 0},
  cooldown_counter = {kind = "integer", min = 0},
  num_bad_epochs = {kind = "integer", min = 0},
  last_epoch = {kind = "integer", min = 0},
  best = {kind = "number"},
  _last_lr = {kind = "numbers"},
}

local fail = check.fail

function ReduceLROnPlateau:_fname(method)
  return "lightning.optim.lr_scheduler.ReduceLROnPlateau" .. (method and ":" .. method or "")
end

function ReduceLROnPlateau:__init(optimizer, opts)
  local fname = self:_fname()
  LRScheduler.check_optimizer(optimizer, fname)
  opts = check.check(fname, opts, options)
  self.optimizer = optimizer
  local n = #optimizer.param_groups
  if type(opts.min_lr) == "table" then
    if #opts.min_lr ~= n then fail(fname, "expected %d min_lr values (one per parameter group), got %d", n, #opts.min_lr) end
    self.min_lrs = check.copy(opts.min_lr)
  else
    self.min_lrs = {}
    for i = 1, n do self.min_lrs[i] = opts.min_lr end
  end
  for _, key in ipairs{"mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "eps"} do
    self[key] = opts[key]
  end
  self.last_epoch = 0
  self.cooldown_counter = 0
  self.num_bad_epochs = 0
  self.best = self:_worst()
  self._last_lr = LRScheduler._group_lrs(self)
end

function ReduceLROnPlateau:_worst() return self.mode == "min" and math.huge or -math.huge end

function ReduceLROnPlateau:_is_better(a, best)
  if self.mode == "min" and self.threshold_mode == "rel" then return a < best * (1 - self.threshold)
  elseif self.mode == "min" then return a < best - self.threshold
  elseif self.threshold_mode == "rel" then return a > best * (self.threshold + 1)
  else return a > best + self.threshold end
end

--- One step with the metric of this epoch (a number, or a tensor of one element).
function ReduceLROnPlateau:step(metric)
  local fname = self:_fname("step")
  if L.is_tensor(metric) then
    if metric:numel() ~= 1 then fail(fname, "the metric must be a number or a one-element tensor, got a tensor of %d elements", metric:numel()) end
    metric = metric:item()
  end
  if type(metric) ~= "number" then fail(fname, "the metric must be a number, got %s", check.describe(metric)) end
  self.last_epoch = self.last_epoch + 1
  if self:_is_better(metric, self.best) then
    self.best = metric
    self.num_bad_epochs = 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0  -- bad epochs in cooldown do not count
  end
  if self.num_bad_epochs > self.patience then
    for i, group in ipairs(self.optimizer.param_groups) do
      local new_lr = math.max(group.lr * self.factor, self.min_lrs[i])
      if group.lr - new_lr > self.eps then group.lr = new_lr end
    end
    self.cooldown_counter = self.cooldown
    self.num_bad_epochs = 0
  end
  self._last_lr = LRScheduler._group_lrs(self)
end

function ReduceLROnPlateau:get_last_lr() return check.copy(self._last_lr) end

function ReduceLROnPlateau:state_dict()
  local sd = {}
  for key in pairs(state_specs) do sd[key] = check.copy(self[key]) end
  if sd.best == math.huge or sd.best == -math.huge then sd.best = nil end
  return sd
end

function ReduceLROnPlateau:load_state_dict(sd)
  local fname = self:_fname("load_state_dict")
  if type(sd) ~= "table" then fail(fname, "expected a table (from state_dict()), got %s", check.describe(sd)) end
  check.check_entries(fname, "", sd, state_specs, "ReduceLROnPlateau")
  for key, value in pairs(sd) do check.check_value(fname, "", key, state_specs[key], value) end
  if sd.min_lrs and #sd.min_lrs ~= #self.optimizer.param_groups then
    fail(fname, "min_lrs has %d values, the optimizer has %d parameter groups", #sd.min_lrs, #self.optimizer.param_groups)
  end
  for key, value in pairs(sd) do
    if state_specs[key].kind == "integer" then value = math.tointeger(value) end
    self[key] = check.copy(value)
  end
  if sd.best == nil then self.best = self:_worst() end
end

return ReduceLROnPlateau
