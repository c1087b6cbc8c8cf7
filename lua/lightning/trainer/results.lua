--- What self:log() collects during one loop (training, validation or test), as PyTorch Lightning's
-- result collection does: the latest value of each metric (on_step), and a mean over the epoch
-- weighted by batch size (on_epoch). Where a value goes:
--   trainer.callback_metrics      what callbacks see: step values (training only) and epoch values
--   trainer.progress_bar_metrics  metrics logged with prog_bar = true
--   trainer.logged_metrics        what went to the logger
-- A metric logged with both on_step and on_epoch is reported as name_step and name_epoch, and
-- callback_metrics also holds it under its plain name.
-- With sync_dist = true the values are reduced over processes by the Trainer's strategy (reduce_fx).
-- A metric object (a table with compute(), as Lightning logs a torchmetrics Metric) is logged per
-- epoch: its compute() at the epoch's end is the value, known before the epoch-end hooks run (so a
-- callback's on_validation_epoch_end reads this epoch's value); the module resets it (at the epoch's
-- start, as ImageClassifier does). Its state (state_dict(), merge_state(state), when it has them) goes
-- into a checkpoint saved inside an epoch; `state_owner` names the object that holds the state of a view
-- (EpochMetrics:view("accuracy")), so that views of one state are saved and restored once.
-- state_dict() / load_state_dict() give the running sums of an epoch (checkpoints inside an epoch).
-- A value logged as a one-element tensor on a GPU is not read when it is logged (that would make every
-- step wait for the GPU): it is kept, published lazily (trainer/lazy_values.lua), and added to the
-- epoch's sums when they are needed or when PENDING_MOST of them wait, all in one copy.
local L = require "lightning"
local options = require "lightning.util.options"
local dist_metrics = require "lightning.distributed.metrics"
local lazy = require "lightning.trainer.lazy_values"

local PENDING_MOST = 64

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

function Results.new(stage)
  return setmetatable({stage = stage, entries = {}, order = {}}, Results)
end

--- Whether value is a metric object (logged per epoch through its compute()).
local function is_metric(value)
  return type(value) == "table" and type(value.compute) == "function"
end
Results.is_metric = is_metric

-- A number; a one-element tensor on a GPU stays one (detached from autograd's graph), read later.
local function loggable(name, value)
  if type(value) == "number" then return value end
  if L.is_tensor(value) then
    if value:numel() == 1 then
      if lazy.is_lazy(value) then return value:detach() end
      return value:item()
    end
    error(("self.log(%q): value must be a number or a one-element tensor, got a tensor of size %s")
      :format(name, tostring(value:size())), 0)
  end
  error(("self.log(%q): value must be a number or a one-element tensor, got %s%s"):format(name, type(value),
    type(value) == "table" and " (a metric object has compute())" or ""), 0)
end

-- The options of self:log (Lightning's names); sync_dist reduces the value over processes (strategy:reduce).
local LOG_OPTIONS = {prog_bar = {kind = "boolean"}, logger = {kind = "boolean"}, on_step = {kind = "boolean"},
  on_epoch = {kind = "boolean"}, reduce_fx = {kind = "string", one_of = {"mean", "sum", "max", "min"}},
  batch_size = {kind = "number"}, sync_dist = {kind = "boolean"}}

-- Checks the options of one self:log call; builds nothing unless something is wrong (it runs every step).
local function check_log_options(name, opts)
  if type(opts) ~= "table" then
    options.fail(("self.log(%q)"):format(name), "expected a table of options, got %s", options.describe(opts))
  end
  for key in pairs(opts) do
    if not LOG_OPTIONS[key] then options.check_names(("self.log(%q)"):format(name), "", opts, LOG_OPTIONS) end
  end
  for _, key in ipairs(options.sorted_names(LOG_OPTIONS)) do
    local spec, v = LOG_OPTIONS[key], opts[key]
    if v ~= nil and options.problem(spec, v, key) then
      options.check_value(("self.log(%q)"):format(name), "", key, spec, v)
    end
  end
end

--- Records one self:log call made while the hook `fx` runs (nil: outside the Trainer's hooks), in a
-- loop whose last batch held batch_size samples (nil: none yet).
function Results:log(trainer, fx, batch_size, name, value, opts)
  opts = opts or {}
  if type(name) ~= "string" or name == "" then
    error(("self.log: the name must be a non-empty string, got %s"):format(type(name)), 0)
  end
  check_log_options(name, opts)
  if fx == nil then error(("self.log(%q): called outside of the Trainer's hooks"):format(name), 0) end
  local rule = FX[fx]
  if not rule then error(("self.log(%q): you can't log inside %s"):format(name, fx), 0) end
  local metric = is_metric(value) and value or nil
  local on_step, on_epoch = opts.on_step, opts.on_epoch
  if metric then
    if on_step then
      error(("self.log(%q): a metric object is computed once per epoch: on_step must be false (log a number " ..
        "for a per-step value)"):format(name), 0)
    end
    on_step, on_epoch = false, true
  end
  if on_step == nil then on_step = rule[1] end
  if on_epoch == nil then on_epoch = rule[2] end
  if on_step and not rule[3] then
    error(("self.log(%q): on_step = true is not allowed in %s (it runs once per epoch)"):format(name, fx), 0)
  end
  if not on_step and not on_epoch then
    error(("self.log(%q): on_step and on_epoch are both false: the value would go nowhere"):format(name), 0)
  end
  local reduce = opts.reduce_fx or "mean"
  if not metric then value = loggable(name, value) end
  batch_size = opts.batch_size or batch_size or 1

  local e = self.entries[name]
  if not e then
    e = {name = name, sum = 0, weight = 0, max = -math.huge, min = math.huge, count = 0}
    self.entries[name] = e
    self.order[#self.order + 1] = name
  end
  e.fx, e.on_step, e.on_epoch, e.reduce = fx, on_step, on_epoch, reduce
  e.prog_bar, e.logger, e.sync_dist = opts.prog_bar == true, opts.logger ~= false, opts.sync_dist == true
  e.count = e.count + 1
  self.strategy = trainer.strategy
  if metric then
    self:_attach_metric(e, metric)
  else
    e.metric, e.metric_key, e.metric_value = nil, nil, nil
    e.step_value, e.step_fresh = value, true
    local factor = reduce == "mean" and batch_size or 1
    if lazy.is_lazy(value) then
      e.pending = e.pending or {}
      e.pending[#e.pending + 1] = {value, factor, batch_size}
      if #e.pending >= PENDING_MOST then Results._fold(e) end
    else
      Results._add(e, value, factor, batch_size)
    end
  end
  if on_epoch and FX[fx] == EPOCH then
    -- logged in an epoch hook: the epoch value is known now, and monitoring callbacks read it next
    self:_publish_epoch(trainer, e)
  end
end

-- A metric object's entry: the object (its latest), and the key its state is saved under (the name
-- of the first entry that logged its state owner). A state restored from a checkpoint is merged
-- into the owner when the first entry logs it: the owner then holds the batches done before the
-- checkpoint and this batch.
function Results:_attach_metric(e, metric)
  e.metric = metric
  e.metric_value = nil
  local owner = metric.state_owner or metric
  self.owners = self.owners or {}
  local key = self.owners[owner]
  if not key then
    key = e.metric_key or e.name
    self.owners[owner] = key
  end
  e.metric_key = key
  local pending = self.pending_states and self.pending_states[key]
  if pending then
    self.pending_states[key] = nil
    if type(owner.merge_state) ~= "function" then
      error(("self.log(%q): resuming inside an epoch needs the metric object's merge_state(state)"):format(e.name), 0)
    end
    owner:merge_state(pending)
  end
end

-- One value into an entry's epoch sums.
function Results._add(e, value, factor, batch_size)
  e.sum = e.sum + value * factor
  e.weight = e.weight + batch_size
  if value > e.max then e.max = value end
  if value < e.min then e.min = value end
end

-- The values an entry keeps on a GPU, read (in one copy) and added in the order they were logged.
function Results._fold(e)
  local pending = e.pending
  if not pending or #pending == 0 then return end
  local values = {}
  for i, p in ipairs(pending) do values[i] = p[1] end
  local numbers = lazy.numbers(values)
  for i, p in ipairs(pending) do Results._add(e, numbers[i], p[2], p[3]) end
  e.pending = nil
end

function Results:_forked(e, suffix)
  if e.on_step and e.on_epoch then return e.name .. suffix end
  return e.name
end

local function epoch_value(e, sum, weight, max, min)
  if e.reduce == "mean" then return weight > 0 and sum / weight or 0 end
  if e.reduce == "sum" then return sum end
  if e.reduce == "max" then return max end
  return min
end

-- With sync_dist the epoch value is over every process: sums and batch counts added (a weighted mean of
-- all batches, as Lightning's), maxima and minima combined. Reduced once per new value: every process
-- asks for the same values in the same order, as collectives need.
function Results:_epoch_value(e)
  if e.metric_key then
    -- a metric object's compute(); an entry restored from a checkpoint keeps the value saved with it
    -- until its object is logged again (no batch may be left in the epoch)
    if e.metric and e.metric_value == nil then
      local v = e.metric:compute()
      if type(v) ~= "number" then
        error(("self.log(%q): the metric object's compute() must return a number, got %s"):format(e.name, type(v)), 0)
      end
      e.metric_value = v
    end
    return e.metric_value
  end
  Results._fold(e)
  if not (e.sync_dist and self.strategy) then return epoch_value(e, e.sum, e.weight, e.max, e.min) end
  if e.synced_count ~= e.count then
    local s = self.strategy
    if e.reduce == "mean" then
      e.synced_value = epoch_value(e, s:reduce(e.sum, "sum"), s:reduce(e.weight, "sum"))
    elseif e.reduce == "sum" then
      e.synced_value = s:reduce(e.sum, "sum")
    else
      e.synced_value = s:reduce(e[e.reduce], e.reduce)
    end
    e.synced_count = e.count
  end
  return e.synced_value
end

-- A step value, over every process with sync_dist (reduced by reduce_fx).
function Results:_step_value(e)
  if e.sync_dist and self.strategy then return self.strategy:reduce(lazy.number(e.step_value), e.reduce) end
  return e.step_value
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
      local forked, value = self:_forked(e, "_step"), self:_step_value(e)
      -- (a GPU's value is read where it is looked at: lazy_values.put)
      if self.stage == "train" then
        lazy.put(trainer.callback_metrics, e.name, value)
        lazy.put(trainer.callback_metrics, forked, value)
      end
      if e.prog_bar then lazy.put(trainer.progress_bar_metrics, forked, value) end
      if e.logger then to_log[forked] = value end
    end
    e.step_fresh = false
  end
  return to_log
end

--- At the end of an epoch, before its epoch-end hooks: publishes the epoch values of what the steps
-- logged.
function Results:epoch_end_reached(trainer)
  self:_sync_metrics()
  for _, name in ipairs(self.order) do
    local e = self.entries[name]
    if e.on_epoch then self:_publish_epoch(trainer, e) end
  end
end

-- In a data-parallel run a metric object's epoch value covers every process: compute() on its state
-- merged over them (distributed/metrics.lua, as torchmetrics syncs before compute). Here, where every
-- process arrives with the same entries in the same order, rather than in _epoch_value, which the
-- loop's saved state calls after every step.
function Results:_sync_metrics()
  local strategy = self.strategy
  if not (strategy and strategy:world_size() > 1) then return end
  for _, name in ipairs(self.order) do
    local e = self.entries[name]
    if e.on_epoch and e.metric then
      e.metric_value = nil
      e.metric_value = dist_metrics.synced(e.metric.state_owner or e.metric, strategy, function()
        return self:_epoch_value(e)
      end)
    end
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

--- The epoch values of everything logged per epoch (for the logger or not), by the name they are
-- reported under: what trainer:validate and trainer:test return.
function Results:epoch_values()
  local values = {}
  for _, name in ipairs(self.order) do
    local e = self.entries[name]
    if e.on_epoch then values[self:_forked(e, "_epoch")] = self:_epoch_value(e) end
  end
  return values
end

-- ---- the running sums of an epoch, for a checkpoint saved inside it ----

local SAVED_FIELDS = {"name", "fx", "on_step", "on_epoch", "reduce", "prog_bar", "logger", "sync_dist", "count", "sum",
  "weight", "max", "min", "metric_key", "metric_value"}

--- The epoch's sums so far: {entries = {{name = ..., sum = ..., ...}, ...}, metrics = {key = state}}
-- (numbers, strings, booleans and what the metric objects' state_dict() returns). Values still on a GPU
-- are listed as they are (entry.pending), not read: the loop takes this state after every step;
-- Results.settled gives it with them added, for a checkpoint. So are metric objects that can copy
-- their state without reading a GPU (snapshot(), as EpochMetrics does), and the values of their
-- views (a view's score: entry.metric_of = {snapshot, score}).
function Results:state_dict()
  local entries, states, snapshots = {}, {}, {}
  local function snapshot_of(owner)
    if type(owner.snapshot) ~= "function" then return nil end
    snapshots[owner] = snapshots[owner] or owner:snapshot()
    return snapshots[owner]
  end
  for i, name in ipairs(self.order) do
    local e, copy = self.entries[name], {}
    local snap = e.metric and e.metric.score ~= nil and snapshot_of(e.metric.state_owner or e.metric)
    if e.metric and not snap then self:_epoch_value(e) end   -- (its value so far, for a resume with no batch left)
    for _, field in ipairs(SAVED_FIELDS) do copy[field] = e[field] end
    if e.pending then copy.pending = {table.unpack(e.pending)} end
    if snap then copy.metric_value, copy.metric_of = e.metric_value, {snap, e.metric.score} end
    entries[i] = copy
  end
  for key, pending in pairs(self.pending_states or {}) do states[key] = pending end   -- (not logged again yet)
  for owner, key in pairs(self.owners or {}) do
    -- (one without state_dict starts again from a resume inside the epoch)
    if type(owner.state_dict) == "function" then states[key] = snapshot_of(owner) or owner:state_dict() end
  end
  return {entries = entries, metrics = states}
end

--- Takes back what state_dict() gave (a new Results of the same loop): the sums now, the metric
-- objects' states when they are logged again.
function Results:load_state_dict(state)
  for _, saved in ipairs(state.entries or {}) do
    local e = {}
    for _, field in ipairs(SAVED_FIELDS) do e[field] = saved[field] end
    if saved.pending then e.pending = {table.unpack(saved.pending)} end
    self.entries[e.name] = e
    self.order[#self.order + 1] = e.name
  end
  self.pending_states = {}
  for key, s in pairs(state.metrics or {}) do self.pending_states[key] = s end
end

--- A state_dict() with what it kept unread read: values still on a GPU added to the sums, metric
-- objects' snapshots as their state_dict() and their views' values computed. What a checkpoint holds.
function Results.settled(state)
  local entries, metrics = {}, {}
  for i, saved in ipairs(state.entries or {}) do
    local e = {}
    for k, v in pairs(saved) do e[k] = v end
    Results._fold(e)
    if e.metric_of then
      if e.metric_value == nil then e.metric_value = e.metric_of[1]:compute()[e.metric_of[2]] end
      e.metric_of = nil
    end
    entries[i] = e
  end
  for key, s in pairs(state.metrics or {}) do
    if getmetatable(s) and type(s.state_dict) == "function" then s = s:state_dict() end
    metrics[key] = s
  end
  return {entries = entries, metrics = metrics}
end

return Results
