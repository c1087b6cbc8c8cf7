--- What self:log() collects during one loop (training, validation or test), as PyTorch Lightning's
-- result collection does: the latest value of each metric (on_step), and a mean over the epoch
-- weighted by batch size (on_epoch). Where a value goes:
--   trainer.callback_metrics      what callbacks see: step values (training only) and epoch values
--   trainer.progress_bar_metrics  metrics logged with prog_bar = true
--   trainer.logged_metrics        what went to the logger
-- A metric logged with both on_step and on_epoch is reported as name_step and name_epoch, and
-- callback_metrics also holds it under its plain name.
local L = require "lightning"

local Results = {}
Results.__index = Results

-- Where logging is allowed and its defaults: fx -> {on_step default, on_epoch default, step allowed,
-- epoch allowed}. A hook that is absent here cannot log, as in Lightning.
local STEP = {true, false, true, true}          -- training-time hooks: per step by default
local EVAL_STEP = {false, true, true, true}     -- validation/test steps: per epoch by default
local EPOCH = {false, true, false, true}        -- epoch hooks: per epoch only
local FX = {
  training_step = STEP, backward_step = STEP, on_train_batch_start = STEP, on_train_batch_end = STEP,
  on_before_backward = STEP, on_after_backward = STEP, on_before_optimizer_step = STEP,
  on_before_zero_grad = STEP, optimizer_step = STEP, optimizer_zero_grad = STEP,
  configure_gradient_clipping = STEP,
  validation_step = EVAL_STEP, test_step = EVAL_STEP,
  on_validation_batch_start = EVAL_STEP, on_validation_batch_end = EVAL_STEP,
  on_test_batch_start = EVAL_STEP, on_test_batch_end = EVAL_STEP,
  on_train_start = EPOCH, on_train_epoch_start = EPOCH, on_train_epoch_end = EPOCH,
  on_validation_start = EPOCH, on_validation_epoch_start = EPOCH, on_validation_epoch_end = EPOCH,
  on_test_start = EPOCH, on_test_epoch_start = EPOCH, on_test_epoch_end = EPOCH,
}
Results.FX = FX

local REDUCE = {mean = true, sum = true, max = true, min = true}

function Results.new(stage)
  return setmetatable({stage = stage, entries = {}, order = {}}, Results)
end

local function to_number(name, value)
  if type(value) == "number" then return value end
  if L.is_tensor(value) then
    if value:numel() == 1 then return value:item() end
    error(("self.log(%q): value must be a number or a one-element tensor, got a tensor of size %s")
      :format(name, tostring(value:size())), 0)
  end
  error(("self.log(%q): value must be a number or a one-element tensor, got %s"):format(name, type(value)), 0)
end

local function check_option(name, opts, key, kind)
  local v = opts[key]
  if v ~= nil and type(v) ~= kind then
    error(("self.log(%q): option %s must be a %s, got %s"):format(name, key, kind, type(v)), 0)
  end
end

local KNOWN_OPTIONS = {prog_bar = true, logger = true, on_step = true, on_epoch = true, reduce_fx = true,
  batch_size = true, sync_dist = true}

--- Records one self:log call made while `fx` runs.
function Results:log(trainer, name, value, opts)
  opts = opts or {}
  if type(name) ~= "string" or name == "" then
    error(("self.log: the name must be a non-empty string, got %s"):format(type(name)), 0)
  end
  if type(opts) ~= "table" then error(("self.log(%q): options must be a table, got %s"):format(name, type(opts)), 0) end
  for key in pairs(opts) do
    if not KNOWN_OPTIONS[key] then error(("self.log(%q): unknown option %s"):format(name, tostring(key)), 0) end
  end
  for _, key in ipairs {"prog_bar", "logger", "on_step", "on_epoch"} do check_option(name, opts, key, "boolean") end
  check_option(name, opts, "batch_size", "number")
  local fx = trainer._current_fx
  if fx == nil then error(("self.log(%q): called outside of the Trainer's hooks"):format(name), 0) end
  local rule = FX[fx]
  if not rule then error(("self.log(%q): you can't log inside %s"):format(name, fx), 0) end
  local on_step, on_epoch = opts.on_step, opts.on_epoch
  if on_step == nil then on_step = rule[1] end
  if on_epoch == nil then on_epoch = rule[2] end
  if on_step and not rule[3] then
    error(("self.log(%q): on_step = true is not allowed in %s (it runs once per epoch)"):format(name, fx), 0)
  end
  if not on_step and not on_epoch then
    error(("self.log(%q): on_step and on_epoch are both false: the value would go nowhere"):format(name), 0)
  end
  local reduce = opts.reduce_fx or "mean"
  if not REDUCE[reduce] then
    error(("self.log(%q): reduce_fx must be \"mean\", \"sum\", \"max\" or \"min\", got %s"):format(name, tostring(reduce)), 0)
  end
  value = to_number(name, value)
  local batch_size = opts.batch_size or trainer._current_batch_size or 1

  local e = self.entries[name]
  if not e then
    e = {name = name, sum = 0, weight = 0, max = -math.huge, min = math.huge}
    self.entries[name] = e
    self.order[#self.order + 1] = name
  end
  e.fx, e.on_step, e.on_epoch, e.reduce = fx, on_step, on_epoch, reduce
  e.prog_bar, e.logger = opts.prog_bar == true, opts.logger ~= false
  e.step_value, e.step_fresh = value, true
  e.sum = e.sum + value * (reduce == "mean" and batch_size or 1)
  e.weight = e.weight + batch_size
  if value > e.max then e.max = value end
  if value < e.min then e.min = value end
  if on_epoch and FX[fx] == EPOCH then
    -- logged in an epoch hook: the epoch value is known now, and monitoring callbacks read it next
    self:_publish_epoch(trainer, e)
  end
end

function Results:_forked(e, suffix)
  if e.on_step and e.on_epoch then return e.name .. suffix end
  return e.name
end

function Results:_epoch_value(e)
  if e.reduce == "mean" then return e.weight > 0 and e.sum / e.weight or 0 end
  if e.reduce == "sum" then return e.sum end
  if e.reduce == "max" then return e.max end
  return e.min
end

function Results:_publish_epoch(trainer, e)
  local value = self:_epoch_value(e)
  local forked = self:_forked(e, "_epoch")
  trainer.callback_metrics[e.name] = value
  trainer.callback_metrics[forked] = value
  if e.prog_bar then trainer.progress_bar_metrics[forked] = value end
  e.epoch_published = true
end

--- After a batch: publishes the step values logged during it; returns the ones for the logger.
function Results:step_end(trainer)
  local to_log = {}
  for _, name in ipairs(self.order) do
    local e = self.entries[name]
    if e.step_fresh and e.on_step then
      local forked = self:_forked(e, "_step")
      if self.stage == "train" then
        trainer.callback_metrics[e.name] = e.step_value
        trainer.callback_metrics[forked] = e.step_value
      end
      if e.prog_bar then trainer.progress_bar_metrics[forked] = e.step_value end
      if e.logger then to_log[forked] = e.step_value end
    end
    e.step_fresh = false
  end
  return to_log
end

--- At the end of an epoch, before its epoch-end hooks: publishes the epoch values of what the steps
-- logged.
function Results:epoch_end_reached(trainer)
  for _, name in ipairs(self.order) do
    local e = self.entries[name]
    if e.on_epoch then self:_publish_epoch(trainer, e) end
  end
end

--- After the epoch-end hooks: the epoch values for the logger.
function Results:epoch_metrics()
  local to_log = {}
  for _, name in ipairs(self.order) do
    local e = self.entries[name]
    if e.on_epoch and e.logger then to_log[self:_forked(e, "_epoch")] = self:_epoch_value(e) end
  end
  return to_log
end

return Results
