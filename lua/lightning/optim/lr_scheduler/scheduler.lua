--- LRScheduler: what the epoch-based schedulers share (PyTorch 1.13's _LRScheduler).
--   sched = L.optim.lr_scheduler.StepLR(opt, {step_size = 10, gamma = 0.1})
--   sched:step()            -- after opt:step(), once per epoch (or per batch, as the schedule means)
--   sched:get_last_lr()     -- the learning rate of every group, a list
--   sched.last_epoch        -- how many steps were taken (0 after construction)
--   sched:state_dict() / sched:load_state_dict(sd)   -- plain tables of numbers, strings and booleans
-- Construction records each group's lr as group.initial_lr (unless it is there already) and takes the
-- first step, as PyTorch does. A subclass sets `options` (specs, see lightning/util/options.lua), `_compute_lr()` (the
-- chainable form: from the groups' current lrs) and may set `_closed_form_lr()` (from base_lrs; used
-- by SequentialLR) and `_setup(fname)` (checks and set-up before the base learning rates are read).
local class = require "lightning.class"
local check = require "lightning.util.options"
local Optimizer = require "lightning.optim.optimizer"

local LRScheduler = class("LRScheduler")
LRScheduler.options = {}

local fail = check.fail

-- Entries of every state dict, beside the options; and how to check them when loading.
local common_state = {
  last_epoch = {kind = "integer", min = -1},
  _step_count = {kind = "integer", min = 0},
  base_lrs = {kind = "numbers"},
  _last_lr = {kind = "numbers"},
}

function LRScheduler:_fname(method)
  return "lightning.optim.lr_scheduler." .. class.name_of(self) .. (method and ":" .. method or "")
end

--- Raises unless optimizer is one of lightning.optim's optimizers.
function LRScheduler.check_optimizer(optimizer, fname)
  if not class.is_instance(optimizer, Optimizer) then
    fail(fname, "argument 1 must be an optimizer (lightning.optim.SGD, Adam, AdamW, ...), got %s",
      type(optimizer) == "table" and class.name_of(optimizer) or check.describe(optimizer))
  end
end

function LRScheduler:__init(optimizer, options)
  local fname = self:_fname()
  LRScheduler.check_optimizer(optimizer, fname)
  local specs = {last_epoch = {kind = "integer", min = -1, default = -1}}
  for name, spec in pairs(self.options) do specs[name] = spec end
  for name, value in pairs(check.check(fname, options, specs)) do self[name] = check.copy(value) end
  self.optimizer = optimizer
  self:_setup(fname)
  self.base_lrs = {}
  for i, group in ipairs(optimizer.param_groups) do
    if self.last_epoch == -1 then
      if group.initial_lr == nil then group.initial_lr = group.lr end
    elseif group.initial_lr == nil then
      fail(fname, "param_groups[%d] has no initial_lr, which resuming with last_epoch = %d needs", i, self.last_epoch)
    end
    self.base_lrs[i] = group.initial_lr
  end
  self:_initial_step()
end

function LRScheduler:_setup(fname) end

function LRScheduler:_initial_step()
  self._step_count = 0
  self:step()
end

function LRScheduler:_set_lrs(values)
  local last = {}
  for i, group in ipairs(self.optimizer.param_groups) do
    group.lr = values[i]
    last[i] = values[i]
  end
  self._last_lr = last
end

--- One step of the schedule: last_epoch + 1, and every group's lr set.
function LRScheduler:step(...)
  if select("#", ...) > 0 then
    fail(self:_fname("step"), "takes no argument, got %s (ReduceLROnPlateau:step(metric) is the one that takes a metric)",
      check.describe((...)))
  end
  self._step_count = self._step_count + 1
  self.last_epoch = self.last_epoch + 1
  self:_set_lrs(self:_compute_lr())
end

--- PyTorch's deprecated step(epoch): jumps to `epoch` with the closed form where there is one.
-- SequentialLR uses it (step(0)) when it switches to the next scheduler.
function LRScheduler:_step_to(epoch)
  self._step_count = self._step_count + 1
  self.last_epoch = epoch
  self:_set_lrs(self._closed_form_lr and self:_closed_form_lr() or self:_compute_lr())
end

--- The groups' current learning rates (what the chainable forms start from).
function LRScheduler:_group_lrs()
  local lrs = {}
  for i, group in ipairs(self.optimizer.param_groups) do lrs[i] = group.lr end
  return lrs
end

--- The learning rate of each group after the last step: a new list.
function LRScheduler:get_last_lr()
  return check.copy(self._last_lr)
end

-- The entries of the state dict and their specs: the common ones and the options that are not functions.
function LRScheduler:_state_specs()
  local specs = {}
  for name, spec in pairs(common_state) do specs[name] = spec end
  for name, spec in pairs(self.options) do
    if spec.kind ~= "function" and spec.kind ~= "function_or_list" then specs[name] = spec end
  end
  return specs
end

--- The scheduler's state as a plain table (no functions, no optimizer): fit for JSON.
function LRScheduler:state_dict()
  local sd = {}
  for name in pairs(self:_state_specs()) do sd[name] = check.copy(self[name]) end
  return sd
end

--- Restores what state_dict() returned. Unknown entries and wrong values are errors, and leave the
-- scheduler as it was.
function LRScheduler:load_state_dict(sd)
  local fname = self:_fname("load_state_dict")
  if type(sd) ~= "table" then fail(fname, "expected a table (from state_dict()), got %s", check.describe(sd)) end
  local specs = self:_state_specs()
  check.check_entries(fname, "", sd, specs, class.name_of(self))
  for key, value in pairs(sd) do check.check_value(fname, "", key, specs[key], value) end
  for key, value in pairs(sd) do
    if specs[key].kind == "integer" then value = math.tointeger(value) end  -- 5.0 after a trip through JSON
    self[key] = check.copy(value)
  end
end

return LRScheduler
