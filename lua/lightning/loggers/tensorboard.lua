--- TensorBoardLogger: Lightning's, writing save_dir/name/version_N/events.out.tfevents.<time>.<host>.<pid>.<n>
-- that `tensorboard --logdir save_dir` reads (scalars, and the HPARAMS tab), plus hparams.yaml.
--   local tb = L.loggers.TensorBoardLogger{save_dir = "outputs/logs", name = "my_model"}
--   tb:log_hyperparams({lr = 1e-3, batch_size = 64})      -- also logs hp_metric = -1 (default_hp_metric)
--   tb:log_metrics({train_loss = 0.5}, 10)
--   tb:finalize("success")
-- Options: save_dir ("outputs/logs"), name ("lightning_logs", as Lightning and CSVLogger; "" for none), version (next free version_N; an
-- integer or a folder name), default_hp_metric (true), prefix (""), max_queue (10 records) and
-- flush_secs (120): the event file is appended in whole records when either is reached, and on
-- flush() / finalize().
local L = require "lightning"
local class = require "lightning.class"
local Logger = require "lightning.loggers.logger"
local options = require "lightning.util.options"
local fsio = L.core.io

local TensorBoardLogger = class("TensorBoardLogger", Logger)

local OPTIONS = Logger.common_options{name = "lightning_logs"}
OPTIONS.default_hp_metric = {kind = "boolean", default = true}
OPTIONS.max_queue = {kind = "integer", min = 1, default = 10}
OPTIONS.flush_secs = {kind = "number", min = 0, default = 120}

local file_counter = 0  -- the <n> of the file names, as PyTorch's global counter

function TensorBoardLogger:__init(opts, more)
  if type(opts) == "string" then  -- TensorBoardLogger("outputs/logs", {...}), Lightning's positional save_dir
    more = Logger.merge({}, more or {})
    more.save_dir = opts
    opts = more
  end
  local o = options.check("TensorBoardLogger", opts, OPTIONS)
  self:_init_dirs(o.save_dir, o.name, o.version)
  self.default_hp_metric = o.default_hp_metric
  self.prefix = o.prefix
  self.max_queue, self.flush_secs = math.tointeger(o.max_queue), o.flush_secs
  self.hparams = {}
  self._writer = nil
end

--- The event writer (lightning.core.io.EventWriter), created with its folder on first use.
function TensorBoardLogger:experiment()
  if self._writer and self._writer:is_open() then return self._writer end
  fsio.mkdir(self.log_dir)
  local name = ("events.out.tfevents.%010d.%s.%d.%d"):format(math.floor(fsio.wall_time()), fsio.hostname(),
    fsio.pid(), file_counter)
  file_counter = file_counter + 1
  self.event_file = Logger.join(self.log_dir, name)
  self._writer = fsio.EventWriter(self.event_file, {max_queue = self.max_queue, flush_secs = self.flush_secs})
  return self._writer
end

--- One scalar event per metric, in name order (as add_scalar per metric does).
function TensorBoardLogger:log_metrics(metrics, step)
  local fname = "TensorBoardLogger:log_metrics"
  local values, names = Logger.clean_metrics(fname, metrics, self.prefix)
  step = Logger.check_step(fname, step, 0)
  local writer = self:experiment()
  for _, name in ipairs(names) do writer:add_scalar(name, values[name], step) end
end

--- Records the hyperparameters (for hparams.yaml) and writes TensorBoard's HPARAMS summaries with the
-- metrics that the HPARAMS tab shows: `metrics` (a table, or a number for hp_metric), or hp_metric = -1
-- when default_hp_metric is on. As in Lightning, the metrics are also logged at step 0.
function TensorBoardLogger:log_hyperparams(params, metrics)
  local fname = "TensorBoardLogger:log_hyperparams"
  if type(params) ~= "table" or L.is_tensor(params) then
    error(("%s: params must be a table, got %s"):format(fname, L.is_tensor(params) and "tensor" or type(params)), 2)
  end
  params = Logger.sanitize_params(params)
  Logger.merge(self.hparams, params)
  if metrics == nil and self.default_hp_metric then metrics = {hp_metric = -1} end
  if type(metrics) == "number" or L.is_tensor(metrics) then metrics = {hp_metric = metrics} end
  if metrics == nil or next(metrics) == nil then return end
  local _, tags = Logger.clean_metrics(fname, metrics, self.prefix)
  self:log_metrics(metrics, 0)
  self:experiment():add_hparams(Logger.flatten_params(params), tags)
end

function TensorBoardLogger:flush()
  if self._writer and self._writer:is_open() then self._writer:flush() end
end

--- Writes hparams.yaml into log_dir (when the folder exists, as Lightning does).
function TensorBoardLogger:save()
  self:flush()
  if fsio.file_type(self.log_dir) == "directory" then Logger.save_hparams_yaml(self.log_dir, self.hparams) end
end

--- Flushes and closes the event file; on success also saves hparams.yaml. Logging again opens a new file.
function TensorBoardLogger:finalize(status)
  if self._writer then
    self._writer:close()
    self._writer = nil
  end
  if status == "success" then self:save() end
end

function TensorBoardLogger:__tostring()
  return ("TensorBoardLogger(%s)"):format(self.log_dir)
end

return TensorBoardLogger
