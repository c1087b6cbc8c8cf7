--- ModelCheckpoint: saves checkpoints during fit, keeping the best k by a monitored metric, as
-- PyTorch Lightning's ModelCheckpoint.
--   L.callbacks.ModelCheckpoint{dirpath = "outputs/checkpoints", filename = "{epoch}-{val_acc:.4f}",
--     monitor = "val_acc", mode = "max", save_top_k = 3, save_last = true}
-- Options: dirpath (default <log_dir>/checkpoints), filename (a template of metric names with Python
-- format specs; with auto_insert_metric_name each becomes "name=value": "{epoch}-{val_acc:.4f}" gives
-- "epoch=3-val_acc=0.8123.safetensors"), monitor, mode ("min" | "max"), save_top_k (0: none, -1: all;
-- without a monitor only -1, 0 or 1: the latest), save_last, every_n_epochs, save_on_train_epoch_end,
-- enable_version_counter ("name-v1" when the name is taken), verbose.
-- Its state (the best k and their scores) is saved in checkpoints and restored on resume.
local class = require "lightning.class"
local Callback = require "lightning.callbacks.callback"
local fs = require "lightning.util.fs"
local output = require "lightning.util.output"
local checkpoint = require "lightning.io.safetensors_checkpoint_io"
local monitors = require "lightning.callbacks.monitor_messages"
local options = require "lightning.util.options"
local fsio = require("lightning.core").io

local ModelCheckpoint = class("ModelCheckpoint", Callback)

ModelCheckpoint.CHECKPOINT_NAME_LAST = "last"
ModelCheckpoint.FILE_EXTENSION = checkpoint.EXTENSION
ModelCheckpoint.is_monitoring_callback = true

function ModelCheckpoint:__init(opts)
  local o = options.check(self, opts, {
    dirpath = {kind = "string"}, filename = {kind = "string"}, monitor = {kind = "string"},
    verbose = {kind = "boolean", default = false},
    save_last = {kind = "boolean", default = false},
    save_top_k = {kind = "integer", min = -1, default = 1},
    mode = {kind = "string", one_of = {"min", "max"}, default = "min"},
    auto_insert_metric_name = {kind = "boolean", default = true},
    every_n_epochs = {kind = "integer", min = 0, default = 1},
    save_on_train_epoch_end = {kind = "boolean"},
    enable_version_counter = {kind = "boolean", default = true},
  })
  if o.monitor == nil and o.save_top_k ~= -1 and o.save_top_k ~= 0 and o.save_top_k ~= 1 then
    options.fail(self, "save_top_k = %d needs a monitor: without one there is nothing to rank " ..
      "(use -1, 0 or 1)", o.save_top_k)
  end
  for k, v in pairs(o) do self[k] = v end
  self.best_k_models = {}       -- path -> score
  self.kth_best_model_path = ""
  self.kth_value = self.mode == "min" and math.huge or -math.huge
  self.best_model_path = ""
  self.best_model_score = nil
  self.current_score = nil
  self.last_model_path = ""
  self._last_global_step_saved = -1
end

function ModelCheckpoint:state_key()
  return ("ModelCheckpoint{monitor=%s,mode=%s,every_n_epochs=%d}"):format(tostring(self.monitor), self.mode,
    self.every_n_epochs)
end

local function better(mode, a, b)
  if mode == "min" then return a < b end
  return a > b
end

-- Every process uses global rank 0's folder (its logger's version decides it), as in Lightning.
function ModelCheckpoint:setup(trainer, module, stage)
  if self.dirpath == nil then
    local lg = trainer.logger
    if lg then
      self.dirpath = fs.join(trainer:_resolve_log_dir(), "checkpoints")
      -- <save_dir>/<name>/version_N/checkpoints: the experiment's other versions hold its earlier runs
      self._experiment_dir = math.type(lg.version) == "integer" and lg.root_dir or nil
    else
      self.dirpath = fs.join(trainer.default_root_dir, "checkpoints")
    end
    self.dirpath = trainer.strategy:broadcast(self.dirpath, 0)
  end
end

--- The folders where ckpt_path = "last" looks, in order, and how to name them: the folder, or for one
-- under a logger's version folder every version's, newest first (a resumed run writes a new version).
function ModelCheckpoint:resume_folders()
  local root = self._experiment_dir
  if not root then return {self.dirpath}, self.dirpath end
  local versions = {}
  local ok, names = pcall(fsio.listdir, root)
  for _, name in ipairs(ok and names or {}) do
    local n = name:match("^version_(%d+)$")
    if n then versions[#versions + 1] = tonumber(n) end
  end
  table.sort(versions, function(a, b) return a > b end)
  local folders = {}
  for i, n in ipairs(versions) do folders[i] = fs.join(root, "version_" .. n, "checkpoints") end
  return folders, fs.join(root, "version_*", "checkpoints")
end

function ModelCheckpoint:_should_skip(trainer)
  return trainer.fast_dev_run or trainer.state.fn ~= "fit" or trainer.sanity_checking
    or self._last_global_step_saved == trainer.global_step
end

function ModelCheckpoint:_saves_on_train_epoch_end(trainer)
  if self.save_on_train_epoch_end ~= nil then return self.save_on_train_epoch_end end
  if trainer.check_val_every_n_epoch ~= 1 then return false end
  return trainer.val_check_interval == nil or trainer.val_check_interval == 1.0
end

function ModelCheckpoint:_epoch_due(trainer)
  return self.every_n_epochs >= 1 and (trainer.current_epoch + 1) % self.every_n_epochs == 0
end

function ModelCheckpoint:on_train_epoch_end(trainer, module)
  if not self:_should_skip(trainer) and self:_saves_on_train_epoch_end(trainer) and self:_epoch_due(trainer) then
    self:_save(trainer)
  end
end

function ModelCheckpoint:on_validation_end(trainer, module)
  if not self:_should_skip(trainer) and not self:_saves_on_train_epoch_end(trainer) and self:_epoch_due(trainer) then
    self:_save(trainer)
  end
end

-- The error for a monitor that is not among names (near: the closest of them, or nil).
function ModelCheckpoint:_missing_message(names, near)
  return ("ModelCheckpoint(monitor = %q) could not find the monitored metric%s; the logged metrics are: %s. " ..
    "Did you call self:log(%q, value) in the LightningModule?"):format(self.monitor, monitors.did_you_mean(near),
    monitors.names_text(names), self.monitor)
end

--- What the Trainer checks before training (lightning.trainer.monitors): without validation a monitor
-- that is never logged only means no top-k checkpoint (as in Lightning), unless it is a near miss.
function ModelCheckpoint:monitor_entry(trainer)
  return {monitor = self.monitor, strict = true, required = trainer.validate_loop.enabled == true,
    extra = {epoch = true, step = true}, message = function(names, near) return self:_missing_message(names, near) end}
end

function ModelCheckpoint:_monitor_candidates(trainer)
  local candidates = {}
  for k, v in pairs(trainer.callback_metrics) do candidates[k] = v end
  if candidates.epoch == nil then candidates.epoch = trainer.current_epoch end
  candidates.step = trainer.global_step
  return candidates
end

function ModelCheckpoint:_save(trainer)
  -- global rank 0's metrics decide on every process (each process saves, removes and waits alike)
  local candidates = self:_monitor_candidates(trainer)
  if trainer.strategy then candidates = trainer.strategy:broadcast(candidates, 0) end
  self._last_global_step_saved = trainer.global_step
  self:_save_topk(trainer, candidates)
  self:_save_last(trainer, candidates)
  for _, lg in ipairs(trainer.loggers) do
    if type(lg.after_save_checkpoint) == "function" then lg:after_save_checkpoint(self) end
  end
end

-- Python format spec ("", ".4f", "03d", ".2e", "+.3g", ".1%") applied to a number.
local function format_value(value, spec)
  if spec == "" then
    if math.type(value) == "integer" then return tostring(value) end
    if value == math.floor(value) and math.abs(value) < 2 ^ 53 then return ("%.1f"):format(value) end
    for digits = 1, 17 do  -- the shortest text that reads back as the same number, as Python's repr
      local text = ("%." .. digits .. "g"):format(value)
      if tonumber(text) == value then return text end
    end
  end
  local flags, width, precision, kind = spec:match("^([+ 0]*)(%d*)%.?(%d*)([dfFeEgG%%]?)$")
  if not flags then error(("ModelCheckpoint: unsupported format spec %q"):format(spec), 0) end
  precision = precision ~= "" and ("." .. precision) or ""
  if kind == "d" then
    return ("%" .. flags .. width .. "d"):format(math.floor(value + 0.5))
  elseif kind == "%" then
    return ("%" .. flags .. width .. (precision ~= "" and precision or ".6") .. "f"):format(value * 100) .. "%"
  elseif kind == "" then
    kind = precision ~= "" and "g" or "s"
    if kind == "s" then return format_value(value, "") end
  end
  return ("%" .. flags .. width .. precision .. kind):format(value)
end

--- The file name a template gives for these metrics (no folder, no extension). Metrics that are
-- missing count as 0, as in Lightning.
function ModelCheckpoint.format_name(template, metrics, auto_insert_metric_name)
  return (template:gsub("{([^{}:]+):?([^{}]*)}", function(name, spec)
    local value = metrics[name]
    if value == nil then value = 0 end
    local text = format_value(value, spec)
    if auto_insert_metric_name then return name .. "=" .. text end
    return text
  end))
end

--- The full path of a checkpoint: dirpath/<template filled in>[-v<ver>].safetensors
function ModelCheckpoint:format_checkpoint_name(metrics, filename, ver)
  local template = filename or self.filename or "{epoch}-{step}"
  local auto = self.auto_insert_metric_name
  if filename == ModelCheckpoint.CHECKPOINT_NAME_LAST then auto = false end
  local name = ModelCheckpoint.format_name(template, metrics, auto)
  if ver then name = ("%s-v%d"):format(name, ver) end
  return fs.join(self.dirpath, name .. self.FILE_EXTENSION)
end

-- The path for these metrics, with a version suffix when a file other than `replacing` has the name.
function ModelCheckpoint:_free_path(metrics, filename, replacing)
  local path = self:format_checkpoint_name(metrics, filename)
  if self.enable_version_counter then
    local ver = 1
    while fs.exists(path) and path ~= replacing do
      path = self:format_checkpoint_name(metrics, filename, ver)
      ver = ver + 1
    end
  end
  return path
end

-- The strategy writes and removes the files (on global rank 0); every process keeps the bookkeeping.
function ModelCheckpoint:_write(trainer, path)
  if trainer.is_global_zero then
    local ok, err = fs.mkdirs(self.dirpath)
    if not ok then error(("ModelCheckpoint: cannot create %s: %s"):format(self.dirpath, tostring(err)), 0) end
  end
  trainer:save_checkpoint(path)
end

function ModelCheckpoint:_remove(trainer, path)
  trainer.strategy:remove_checkpoint(path)
end

function ModelCheckpoint:_check_top_k(current)
  if current == nil then return false end
  if self.save_top_k == -1 then return true end
  local count = 0
  for _ in pairs(self.best_k_models) do count = count + 1 end
  if count < self.save_top_k then return true end
  return better(self.mode, current, self.best_k_models[self.kth_best_model_path])
end

function ModelCheckpoint:_save_topk(trainer, candidates)
  if self.save_top_k == 0 then return end
  if self.monitor == nil then
    local previous = self.best_model_path
    local path = self:_free_path(candidates, nil, previous)
    self:_write(trainer, path)
    if self.save_top_k == 1 and previous ~= "" and previous ~= path then self:_remove(trainer, previous) end
    self.best_model_path = path
    return
  end
  local current = candidates[self.monitor]
  if current == nil and not trainer.validate_loop.enabled then
    -- Lightning warns and skips until validation has run (it may log the metric)
    if not self._warned_missing then
      output.print(("ModelCheckpoint: the monitored metric %q is not logged (there is no validation); " ..
        "no top-k checkpoint is saved"):format(self.monitor))
      self._warned_missing = true
    end
    return
  elseif current == nil then
    local names = trainer.callback_metrics
    monitors.fail(trainer, self:_missing_message(names, monitors.suggestion(self.monitor, names)))
  end
  if current ~= current or current == math.huge or current == -math.huge then
    -- never ranked: a NaN would otherwise be "the best" of an empty top k
    trainer:_signal_divergence(self.monitor, current)
    if self.verbose then
      output.print(("Epoch %d, global step %d: %s = %s is not finite: no top-%d checkpoint"):format(trainer.current_epoch,
        trainer.global_step, self.monitor, tostring(current), self.save_top_k))
    end
    return
  end
  if self:_check_top_k(current) then
    self:_update_best_and_save(trainer, current, candidates)
  elseif self.verbose then
    output.print(("Epoch %d, global step %d: %q was not in top %d"):format(trainer.current_epoch, trainer.global_step,
      self.monitor, self.save_top_k))
  end
end

function ModelCheckpoint:_update_best_and_save(trainer, current, candidates)
  local count = 0
  for _ in pairs(self.best_k_models) do count = count + 1 end
  local k = self.save_top_k == -1 and count + 1 or self.save_top_k
  local del_path
  if count == k and k > 0 then
    del_path = self.kth_best_model_path
    self.best_k_models[del_path] = nil
  end
  local path = self:_free_path(candidates, nil, del_path)
  self.current_score = current
  self.best_k_models[path] = current
  count = 0
  for _ in pairs(self.best_k_models) do count = count + 1 end
  if count == k then
    -- the k-th best is the worst of those kept
    local worst_path, worst = nil, nil
    for p, score in pairs(self.best_k_models) do
      if worst == nil or better(self.mode, worst, score) or (score == worst and p > worst_path) then
        worst_path, worst = p, score
      end
    end
    self.kth_best_model_path, self.kth_value = worst_path, worst
  end
  local best_path, best = nil, nil
  for p, score in pairs(self.best_k_models) do
    if best == nil or better(self.mode, score, best) or (score == best and p < best_path) then best_path, best = p, score end
  end
  self.best_model_path, self.best_model_score = best_path, best
  if self.verbose then
    output.print(("Epoch %d, global step %d: %q reached %.5f (best %.5f), saving model to %q as top %d")
      :format(trainer.current_epoch, trainer.global_step, self.monitor, current, best, path, k))
  end
  self:_write(trainer, path)
  if del_path and del_path ~= path then self:_remove(trainer, del_path) end
end

-- last.safetensors is replaced where it is (the writer's temporary file and rename make that atomic),
-- so that it is always the newest: never a last-v1 beside a stale last.
function ModelCheckpoint:_save_last(trainer, candidates)
  if not self.save_last then return end
  local path = self:format_checkpoint_name(candidates, ModelCheckpoint.CHECKPOINT_NAME_LAST)
  self:_write(trainer, path)
  local previous = self.last_model_path
  self.last_model_path = path
  if previous ~= "" and previous ~= path then self:_remove(trainer, previous) end
end

function ModelCheckpoint:state_dict()
  return {monitor = self.monitor, best_model_score = self.best_model_score, best_model_path = self.best_model_path,
    current_score = self.current_score, dirpath = self.dirpath, best_k_models = self.best_k_models,
    kth_best_model_path = self.kth_best_model_path, kth_value = self.kth_value, last_model_path = self.last_model_path}
end

function ModelCheckpoint:load_state_dict(state)
  if state.dirpath == self.dirpath then
    self.best_model_score = state.best_model_score
    self.kth_best_model_path = state.kth_best_model_path or ""
    self.kth_value = state.kth_value or self.kth_value
    self.best_k_models = state.best_k_models or {}
    self.last_model_path = state.last_model_path or ""
    self.current_score = state.current_score
  else
    output.print(("ModelCheckpoint: the folder changed from %s to %s: this run ranks its own top-k there, the " ..
      "checkpoint's stay where they are (only best_model_path is restored)"):format(tostring(state.dirpath),
      tostring(self.dirpath)))
  end
  self.best_model_path = state.best_model_path or ""
end

return ModelCheckpoint
