--- Schedulers made of schedulers (PyTorch 1.13's SequentialLR and ChainedScheduler).
--   SequentialLR(opt, {schedulers = {warmup, main}, milestones = {5}})  -- warmup for 5 epochs, then main
--   ChainedScheduler{s1, s2}                                            -- every step steps all of them
-- Linear warm-up then cosine:
--   local S = L.optim.lr_scheduler
--   S.SequentialLR(opt, {schedulers = {S.LinearLR(opt, {start_factor = 0.01, total_iters = 5}),
--     S.CosineAnnealingLR(opt, {T_max = 95})}, milestones = {5}})
local class = require "lightning.class"
local check = require "lightning.util.options"
local LRScheduler = require "lightning.optim.lr_scheduler.scheduler"

local M = {}

local fail = check.fail

-- Raises unless every entry of list is an LRScheduler of optimizer (when given).
local function check_schedulers(fname, list, optimizer)
  if type(list) ~= "table" or #list == 0 then
    fail(fname, "schedulers must be a non-empty list of schedulers, got %s", check.describe(list))
  end
  for i, s in ipairs(list) do
    if not class.is_instance(s, LRScheduler) then
      fail(fname, "schedulers[%d] must be a scheduler such as LinearLR or CosineAnnealingLR (not ReduceLROnPlateau), got %s",
        i, type(s) == "table" and class.name_of(s) or check.describe(s))
    end
    if s.optimizer ~= (optimizer or list[1].optimizer) then
      fail(fname, "schedulers[%d] belongs to another optimizer than %s", i, optimizer and "the one given" or "schedulers[1]")
    end
  end
end

local function load_children(fname, children, states)
  if type(states) ~= "table" or #states ~= #children then
    fail(fname, "_schedulers must hold %d state dicts, got %s", #children, check.describe(states))
  end
  for i, s in ipairs(children) do s:load_state_dict(states[i]) end
end

local SequentialLR = class("SequentialLR", LRScheduler)
M.SequentialLR = SequentialLR

function SequentialLR:__init(optimizer, options)
  local fname = self:_fname()
  LRScheduler.check_optimizer(optimizer, fname)
  local opts = check.check(fname, options, {
    schedulers = {kind = "table", required = true},
    milestones = {kind = "integers", required = true},
    last_epoch = {kind = "integer", min = -1, default = -1},
  })
  check_schedulers(fname, opts.schedulers, optimizer)
  if #opts.milestones ~= #opts.schedulers - 1 then
    fail(fname, "expected %d milestone(s) for %d schedulers, got %d", #opts.schedulers - 1, #opts.schedulers,
      #opts.milestones)
  end
  for i = 2, #opts.milestones do
    if opts.milestones[i] < opts.milestones[i - 1] then fail(fname, "milestones must be in increasing order") end
  end
  self._schedulers = opts.schedulers
  self._milestones = check.copy(opts.milestones)
  self.last_epoch = opts.last_epoch + 1
  self.optimizer = optimizer
  -- the schedulers' constructors each took a step: undo them and start the first one again
  for _, group in ipairs(optimizer.param_groups) do group.lr = group.initial_lr end
  for _, s in ipairs(self._schedulers) do s.last_epoch = s.last_epoch - 1 end
  self._schedulers[1]:_initial_step()
  self._last_lr = self._schedulers[1]:get_last_lr()
end

function SequentialLR:step(...)
  if select("#", ...) > 0 then fail(self:_fname("step"), "takes no argument, got %s", check.describe((...))) end
  self.last_epoch = self.last_epoch + 1
  local idx = 0  -- milestones passed (PyTorch's bisect_right)
  for _, m in ipairs(self._milestones) do
    if m <= self.last_epoch then idx = idx + 1 end
  end
  local scheduler = self._schedulers[idx + 1]
  if idx > 0 and self._milestones[idx] == self.last_epoch then
    scheduler:_step_to(0)
  else
    scheduler:step()
  end
  self._last_lr = scheduler:get_last_lr()
end

function SequentialLR:state_dict()
  local states = {}
  for i, s in ipairs(self._schedulers) do states[i] = s:state_dict() end
  return {last_epoch = self.last_epoch, _milestones = check.copy(self._milestones), _last_lr = check.copy(self._last_lr),
    _schedulers = states}
end

function SequentialLR:load_state_dict(sd)
  local fname = self:_fname("load_state_dict")
  if type(sd) ~= "table" then fail(fname, "expected a table (from state_dict()), got %s", check.describe(sd)) end
  check.check_names(fname, "", sd, {last_epoch = true, _milestones = true, _last_lr = true, _schedulers = true})
  check.check_value(fname, "", "last_epoch", {kind = "integer"}, sd.last_epoch)
  check.check_value(fname, "", "_milestones", {kind = "integers"}, sd._milestones)
  load_children(fname, self._schedulers, sd._schedulers)
  self.last_epoch = math.tointeger(sd.last_epoch)
  self._milestones = check.copy(sd._milestones)
  if sd._last_lr then self._last_lr = check.copy(sd._last_lr) end
end

local ChainedScheduler = class("ChainedScheduler", LRScheduler)
M.ChainedScheduler = ChainedScheduler

function ChainedScheduler:__init(schedulers)
  local fname = self:_fname()
  check_schedulers(fname, schedulers)
  self._schedulers = {}
  for i, s in ipairs(schedulers) do self._schedulers[i] = s end
  self.optimizer = schedulers[1].optimizer
  self._last_lr = self:_group_lrs()
end

function ChainedScheduler:step(...)
  if select("#", ...) > 0 then fail(self:_fname("step"), "takes no argument, got %s", check.describe((...))) end
  for _, s in ipairs(self._schedulers) do s:step() end
  self._last_lr = self:_group_lrs()
end

function ChainedScheduler:state_dict()
  local states = {}
  for i, s in ipairs(self._schedulers) do states[i] = s:state_dict() end
  return {_last_lr = check.copy(self._last_lr), _schedulers = states}
end

function ChainedScheduler:load_state_dict(sd)
  local fname = self:_fname("load_state_dict")
  if type(sd) ~= "table" then fail(fname, "expected a table (from state_dict()), got %s", check.describe(sd)) end
  check.check_names(fname, "", sd, {_last_lr = true, _schedulers = true})
  load_children(fname, self._schedulers, sd._schedulers)
  if sd._last_lr then self._last_lr = check.copy(sd._last_lr) end
end

return M
