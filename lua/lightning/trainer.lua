--- L.Trainer: runs a LightningModule's training, validation, test and prediction loops with
-- PyTorch Lightning's options, hook order and logging semantics.
--   local trainer = L.Trainer{max_epochs = 10, callbacks = {...}, logger = L.loggers.CSVLogger{...}}
--   trainer:fit(model, datamodule[, {ckpt_path = "last" | path}])
--   trainer:fit(model, train_loader[, val_loader][, {ckpt_path = ...}])   (a nil val_loader is skipped)
--   trainer:validate(model, datamodule or loader[, {ckpt_path = ...}]) --> {{val_loss = ..., ...}}
--   trainer:test(model, datamodule or loader[, {ckpt_path = "best" | "last" | path}])
--   trainer:predict(model, datamodule or loader) --> list of predict_step results
-- State: current_epoch (0-based, the number of finished epochs), global_step (optimizer steps),
-- should_stop, callback_metrics, logged_metrics, progress_bar_metrics, diverged, interrupted_by,
-- nothing_to_train. batch_idx is 1-based.
-- The loops are objects the Trainer holds, in Lightning's shape (lightning/trainer/loops/):
-- trainer.fit_loop (the epochs) with fit_loop.epoch_loop (one epoch's batches, the last good state a
-- checkpoint inside the epoch goes back to), and trainer.validate_loop, test_loop, predict_loop (one
-- evaluation pass each; validate_loop also runs inside fit). Each owns its progress counters and
-- state (state_dict / load_state_dict; fit_loop's is a checkpoint's loops section); the loop running
-- now is trainer.active_loop. trainer:fit's setup and sanity check are in trainer/fit.lua, validate /
-- test / predict's in trainer/evaluate.lua; checkpoints in checkpoint.lua; failures and interruptions
-- (Ctrl-C, held back to the end of a batch) in faults.lua and interrupt.lua.
-- The per-batch work (backward, clipping, the optimizer step), the reduction of logged values, data
-- loaders and checkpoint files go through trainer.strategy (lightning/strategies/), which holds the
-- precision plugin (trainer.precision_plugin, lightning/precision/). Logs, checkpoints and plots are
-- written where trainer.is_global_zero (global rank 0 of trainer.world_size processes).
local class = require "lightning.class"
local options = require "lightning.trainer.options"
local hooks = require "lightning.trainer.hooks"
local data = require "lightning.trainer.data"
local checkpoint = require "lightning.trainer.checkpoint"
local optimization = require "lightning.trainer.optimization"
local Results = require "lightning.trainer.results"
local lazy_values = require "lightning.trainer.lazy_values"
local fit = require "lightning.trainer.fit"
local evaluate = require "lightning.trainer.evaluate"
local FitLoop = require "lightning.trainer.loops.fit_loop"
local EvaluationLoop = require "lightning.trainer.loops.evaluation_loop"
local faults = require "lightning.trainer.faults"
local interrupt = require "lightning.trainer.interrupt"
local fs = require "lightning.util.fs"
local output = require "lightning.util.output"
local util_options = require "lightning.util.options"
local callbacks = require "lightning.callbacks"
local loggers = require "lightning.loggers"
local LightningModule = require "lightning.lightning_module"
local strategies = require "lightning.strategies"
local precision = require "lightning.precision"
local accelerators = require "lightning.accelerators"
local core = require "lightning.core"

local Trainer = class("Trainer")

local function build_loggers(self, logger)
  if self.fast_dev_run or logger == false then return {} end
  if logger == nil or logger == true then
    return {loggers.TensorBoardLogger{save_dir = self.default_root_dir, name = "lightning_logs"}}
  end
  if type(logger.log_metrics) == "function" then return {logger} end
  local list = {}
  for i, lg in ipairs(logger) do
    if type(lg) ~= "table" or type(lg.log_metrics) ~= "function" then
      util_options.fail("Trainer", "logger %d must have log_metrics(metrics, step), got %s", i, class.name_of(lg))
    end
    list[i] = lg
  end
  return list
end

-- User callbacks, then the defaults the options ask for; checkpoint callbacks last (Lightning's order).
local function build_callbacks(self, user)
  local C = callbacks
  local list = {}
  for i, cb in ipairs(user or {}) do
    hooks.check_callback(cb, i)
    list[#list + 1] = cb
  end
  local function has(cls)
    for _, cb in ipairs(list) do if class.is_instance(cb, cls) then return true end end
    return false
  end
  if self.enable_progress_bar and not has(C.ProgressBar) then list[#list + 1] = C.ProgressBar() end
  if self.enable_model_summary and not has(C.ModelSummary) then list[#list + 1] = C.ModelSummary() end
  if has(C.ModelCheckpoint) and not self.enable_checkpointing then
    util_options.fail("Trainer", "enable_checkpointing = false but a ModelCheckpoint is in callbacks")
  end
  if self.enable_checkpointing and not has(C.ModelCheckpoint) then list[#list + 1] = C.ModelCheckpoint() end
  local others, checkpoints = {}, {}
  for _, cb in ipairs(list) do
    if class.is_instance(cb, C.ModelCheckpoint) then checkpoints[#checkpoints + 1] = cb else others[#others + 1] = cb end
  end
  for _, cb in ipairs(checkpoints) do others[#others + 1] = cb end
  return others
end

function Trainer:_refresh_callback_views()
  local C = callbacks
  self.checkpoint_callbacks, self.early_stopping_callbacks = {}, {}
  self.progress_bar_callback = nil
  for _, cb in ipairs(self.callbacks) do
    if class.is_instance(cb, C.ModelCheckpoint) then self.checkpoint_callbacks[#self.checkpoint_callbacks + 1] = cb end
    if class.is_instance(cb, C.EarlyStopping) then self.early_stopping_callbacks[#self.early_stopping_callbacks + 1] = cb end
    if class.is_instance(cb, C.ProgressBar) then self.progress_bar_callback = cb end
  end
  self.checkpoint_callback = self.checkpoint_callbacks[1]
  self.early_stopping_callback = self.early_stopping_callbacks[1]
end

-- The strategy object and its precision plugin (from the precision option unless the strategy came
-- with one; then the option must be left out).
local function build_strategy(resolved, opts)
  local strategy = strategies.resolve(resolved.strategy)
  if strategy.precision_plugin == nil then
    strategy.precision_plugin = precision.plugin(resolved.precision)
  elseif opts.precision ~= nil then
    util_options.fail("Trainer", "precision is given twice: by the precision option and by the strategy's " ..
      "precision_plugin; leave one out")
  end
  return strategy
end

function Trainer:__init(opts)
  local resolved = options.resolve(opts)
  for name, value in pairs(resolved) do self[name] = value end
  self.strategy = build_strategy(resolved, opts)
  -- the hardware (a GPU asked for and not there is refused here, with the reason); the strategy moves
  -- the model and the batches to its device
  self.accelerator = accelerators.resolve(resolved.accelerator, resolved.devices)
  if self.strategy.accelerator == nil then self.strategy.accelerator = self.accelerator end
  -- fp16 on the host is refused here, as Lightning's connector refuses it (the plugin checks again where
  -- the model is, for a strategy that brings its own accelerator)
  if self.strategy.precision_plugin.precision == "16-mixed" and self.strategy.accelerator:device() == "cpu" then
    util_options.fail("Trainer", "%s", self.strategy.precision_plugin.CPU_REFUSAL)
  end
  -- Lightning's deterministic: kernels whose sums would follow the thread count split them by a fixed rule
  if resolved.deterministic ~= nil then core.set_deterministic(resolved.deterministic == true) end
  self.precision_plugin = self.strategy.precision_plugin
  self:_refresh_ranks()
  self.current_epoch = 0
  self.global_step = 0
  self.should_stop = false
  self.callback_metrics, self.logged_metrics, self.progress_bar_metrics = {}, {}, {}
  self.state = {fn = nil, stage = nil, status = "initializing"}
  self.sanity_checking, self.training, self.validating, self.testing, self.predicting = false, false, false, false, false
  self.interrupted = false
  self.optimizers, self.lr_scheduler_configs = {}, {}
  self.num_training_batches, self.num_val_batches, self.num_test_batches = 0, 0, 0
  self.loggers = build_loggers(self, resolved.logger)
  self.logger = self.loggers[1]
  self.callbacks = build_callbacks(self, resolved.callbacks)
  self:_refresh_callback_views()
  self._prepared = setmetatable({}, {__mode = "k"})
  self.log_dir = self:_resolve_log_dir()
  -- the loops (Lightning's trainer.fit_loop, validate_loop, test_loop, predict_loop)
  self.validate_loop = EvaluationLoop(self, "validation", "val")
  self.test_loop = EvaluationLoop(self, "test", "test")
  self.predict_loop = EvaluationLoop(self, "predict", "predict")
  self.fit_loop = FitLoop(self, self.validate_loop)
  self.active_loop = nil       -- (the loop running now, whose results self:log writes to)
  self.last_batch_size = nil   -- (of the last batch any loop took: what self:log weighs a value with)
end

--- Lightning's trainer.log_dir: the first logger's folder, else default_root_dir.
function Trainer:_resolve_log_dir()
  local lg = self.logger
  if lg then
    local dir = lg.log_dir or lg.save_dir
    if type(dir) == "function" then dir = dir(lg) end
    if dir then return dir end
  end
  return self.default_root_dir
end

--- Lightning's trainer.global_rank, world_size, local_rank and is_global_zero, from the strategy (known
-- after its setup_environment).
function Trainer:_refresh_ranks()
  local s = self.strategy
  self.global_rank, self.local_rank, self.world_size = s:global_rank(), s:local_rank(), s:world_size()
  self.is_global_zero = s:is_global_zero()
end

--- Hooks for the strategy and its precision plugin (Lightning's trainer._call_callback_hooks and
-- _call_lightning_module_hook): callbacks then the module, the module only, the callbacks only.
function Trainer:_call_hook(name, ...) return hooks.call(self, name, ...) end
function Trainer:_call_module_hook(name, ...) return hooks.call_module(self, name, ...) end
function Trainer:_call_callback_hooks(name, ...) return hooks.call_callbacks(self, nil, name, ...) end

--- Writes to every logger (on global rank 0 only); "epoch" is added as Lightning does.
function Trainer:_log_metrics(metrics, step)
  if not next(metrics) or self.sanity_checking then return end
  -- values still on a GPU are read here, in one copy (trainer/lazy_values.lua)
  local names, values = {}, {}
  for name, value in pairs(metrics) do names[#names + 1], values[#values + 1] = name, value end
  for i, v in ipairs(lazy_values.numbers(values)) do metrics[names[i]] = v end
  metrics.epoch = metrics.epoch or self.current_epoch
  for name, value in pairs(metrics) do self.logged_metrics[name] = value end
  if not self.is_global_zero then return end
  for _, lg in ipairs(self.loggers) do lg:log_metrics(metrics, step) end
end

-- The callbacks that configure_callbacks returns replace those of the same class.
function Trainer:_add_module_callbacks()
  local extra = hooks.call_module(self, "configure_callbacks")
  if extra == nil then return end
  if type(extra) ~= "table" then error("configure_callbacks must return a list of callbacks", 0) end
  if extra[1] == nil and next(extra) ~= nil then extra = {extra} end
  for i, cb in ipairs(extra) do
    hooks.check_callback(cb, #self.callbacks + i)
    local replaced = false
    for j, existing in ipairs(self.callbacks) do
      -- (each stage asks again, as Lightning does: the same object, or one of the same class, is replaced)
      if existing == cb or getmetatable(existing) == getmetatable(cb) and getmetatable(cb) ~= nil then
        self.callbacks[j] = cb
        replaced = true
      end
    end
    if not replaced then table.insert(self.callbacks, cb) end
  end
  self:_refresh_callback_views()
end

--- Creates the output folders and writes a probe file of about one checkpoint's size into each, so
-- that a read-only or full disk is an error now rather than after an epoch of training (on global
-- rank 0, the process that writes).
function Trainer:_check_output_folders(module)
  if not self.is_global_zero then return end
  local dirs, sizes = {}, {}
  local function add(dir, bytes)
    if type(dir) ~= "string" then return end
    if not sizes[dir] then dirs[#dirs + 1] = dir end
    sizes[dir] = math.max(sizes[dir] or 0, bytes)
  end
  add(self.default_root_dir, 0)
  -- a checkpoint holds the weights and about two tensors of optimizer state per weight
  local checkpoint_bytes = module and 4 * module:num_parameters() * 3 or 0
  for _, cb in ipairs(self.checkpoint_callbacks) do add(cb.dirpath, checkpoint_bytes) end
  for _, lg in ipairs(self.loggers) do add(lg.log_dir or lg.save_dir, 1 << 16) end
  for _, dir in ipairs(dirs) do
    local ok, err = fs.check_writable(dir, sizes[dir])
    if not ok then
      error(("Trainer: the output folder %s is not writable (%s); choose another with default_root_dir, " ..
        "the logger's save_dir or ModelCheckpoint's dirpath"):format(dir, tostring(err)), 0)
    end
  end
end

--- Saves a checkpoint of the current state (what ModelCheckpoint calls); the strategy writes it.
function Trainer:save_checkpoint(path)
  local ckpt = checkpoint.dump(self)
  hooks.call_callbacks(self, nil, "on_save_checkpoint", ckpt)
  hooks.call_module(self, "on_save_checkpoint", ckpt)
  self.strategy:save_checkpoint(ckpt, path)
  self.strategy:barrier("Trainer.save_checkpoint")
end

-- ckpt_path "last" | "best" | path --> a file, or nil (with a warning) when "last" finds none.
function Trainer:_resolve_ckpt_path(ckpt_path, fn)
  if ckpt_path == nil then return nil end
  if type(ckpt_path) ~= "string" then error(("Trainer:%s: ckpt_path must be a string, got %s"):format(fn, type(ckpt_path)), 0) end
  if ckpt_path == "last" then
    -- each checkpoint callback's folder; one under a logger's version folder stands for the
    -- experiment's every version (the newest version with a checkpoint wins)
    local dirs, searched = {}, {}
    for _, cb in ipairs(self.checkpoint_callbacks) do
      local folders, description = cb:resume_folders()
      searched[#searched + 1] = description
      for _, dir in ipairs(folders) do
        if checkpoint.find_last({dir}) then dirs[#dirs + 1] = dir break end
      end
    end
    local path = checkpoint.find_last(dirs)
    if not path then
      self:print(("Trainer:%s: ckpt_path = \"last\" but there is no last checkpoint in %s; starting from scratch")
        :format(fn, #searched > 0 and table.concat(searched, ", ") or "(no checkpoint folder)"))
    end
    return path
  elseif ckpt_path == "best" then
    local cb = self.checkpoint_callback
    local path = cb and cb.best_model_path
    if not path or path == "" then
      error(("Trainer:%s: ckpt_path = \"best\" but no best checkpoint was saved (is there a ModelCheckpoint with a monitor?)")
        :format(fn), 0)
    end
    return path
  end
  if not fs.exists(ckpt_path) then error(("Trainer:%s: checkpoint %s not found"):format(fn, ckpt_path), 0) end
  return ckpt_path
end

-- Attaches the model and data, runs body(self, ...) and handles errors.
function Trainer:_run(fn, model, source, body, ...)
  if not class.is_instance(model, LightningModule) then
    util_options.fail("Trainer:" .. fn, "argument 1 must be an L.LightningModule, got %s", class.name_of(model))
  end
  hooks.check_module(model)
  self.strategy:setup_environment()
  self:_refresh_ranks()
  self.lightning_module = model
  model.trainer = self
  self.strategy:connect(model)
  self._data_source = source
  self.datamodule = source.datamodule
  if self.datamodule then self.datamodule.trainer = self end
  self.state = {fn = fn, status = "running"}
  self.should_stop, self.interrupted = false, false
  self.callback_metrics, self.logged_metrics, self.progress_bar_metrics = {}, {}, {}
  self.fit_loop:reset()
  self.active_loop = nil
  self._current_fx, self._current_callback = nil, nil
  self.diverged, self.interrupted_by = nil, nil
  -- (lightning.trainer.monitors: the names validation logged, whether the monitors were checked, and
  -- whether a monitor not found ended the run)
  self._validation_names, self._monitors_checked, self._configuration_error = nil, false, false
  -- what hooks log while no loop runs (self:log checks the hook there too)
  self._hook_results = Results.new(fn)
  interrupt.watch()
  local results = table.pack(xpcall(body, faults.capture, self, ...))
  if not results[1] then faults.handle(self, results[2], fn) end
  self.state.status = "finished"
  interrupt.unwatch()
  return table.unpack(results, 2, results.n)
end

--- What LightningModule:log records: the value, in the results of the loop running now (of the run
-- while none does), under the hook that logs it.
function Trainer:record_log(name, value, opts)
  local loop = self.active_loop
  local results = loop and loop.results or self._hook_results
  if results then results:log(self, self._current_fx, self.last_batch_size, name, value, opts) end
end

--- Prints through the library's output (above a progress bar), on global rank 0 only.
function Trainer:print(...)
  if self.is_global_zero then output.print(...) end
end

--- A NaN or infinite value (the training loss, a monitored metric) ends training: one line says which
-- value, the epoch and the step, trainer.diverged records it ({what, value, epoch, global_step,
-- batch}) and training stops (at once for the loss; after the check for a metric).
function Trainer:_signal_divergence(what, value, batch_idx)
  self.should_stop = true
  if self.diverged then return end
  self.diverged = {what = what, value = value, epoch = self.current_epoch, global_step = self.global_step,
    batch = batch_idx}
  self:print(("Training diverged: %s is %s at epoch %d, global step %d%s; training stops"):format(what,
    value ~= value and "NaN" or tostring(value), self.current_epoch, self.global_step,
    batch_idx and (" (batch %d)"):format(batch_idx) or ""))
end

function Trainer:_finalize_loggers(status)
  if not self.is_global_zero then return end
  for _, lg in ipairs(self.loggers) do
    if type(lg.finalize) == "function" then lg:finalize(status) end
  end
end

--- Trains the model. fit(model, datamodule[, opts]) or fit(model, train_loader[, val_loader][, opts]);
-- opts.ckpt_path = "last" or a checkpoint file resumes from it.
function Trainer:fit(model, a, b, c)
  local source, opts = data.parse_args("fit", "train", a, b, c)
  return self:_run("fit", model, source, function(trainer)
    return fit.fit(trainer, trainer:_resolve_ckpt_path_later(opts.ckpt_path))
  end)
end

-- "last" must be resolved after the callbacks' setup (which decides their folders).
function Trainer:_resolve_ckpt_path_later(ckpt_path)
  return function() return self:_resolve_ckpt_path(ckpt_path, self.state.fn) end
end

local function evaluation(fn, stage, kind)
  return function(self, model, a, b)
    model = model or self.lightning_module
    local source, opts = data.parse_args(fn, kind, a, b)
    if a == nil and self._data_source then source = self._data_source end
    return self:_run(fn, model, source, function(trainer)
      return evaluate.run(trainer, stage, trainer:_resolve_ckpt_path_later(opts.ckpt_path), opts)
    end)
  end
end

--- Runs the validation loop once; returns {{metric = value, ...}}.
Trainer.validate = evaluation("validate", "validation", "val")
--- Runs the test loop; returns {{test_metric = value, ...}}.
Trainer.test = evaluation("test", "test", "test")
--- Runs predict_step over the loader; returns the list of its results.
Trainer.predict = evaluation("predict", "predict", "predict")

--- The learning rates of the optimizers (for callbacks and summaries).
function Trainer:learning_rates()
  local rates = {}
  for i, opt in ipairs(self.optimizers) do rates[i] = optimization.learning_rates(opt) end
  return rates
end

return Trainer
