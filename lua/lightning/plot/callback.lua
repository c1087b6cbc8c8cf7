--- L.plot.PlotCallback: records the epoch metrics during fit and, when fit ends, draws into dirpath:
--   metrics.png           loss and accuracy per epoch, training against validation
--   confusion_matrix.png  the last validation epoch's confusion matrix
--   samples.png           the first batch of the training loader (augmented), with class names
-- and when test ends, confusion_matrix_test.png (the test set's).
--   L.Trainer{callbacks = {L.plot.PlotCallback{dirpath = "outputs/run1/plots"}}}
-- Options: dirpath (default <trainer.log_dir>/plots), metrics / confusion_matrix / samples (true: which
-- charts to draw), num_samples (32), nrow (8), class_names (default: the data module's classes),
-- normalize (for the confusion matrix, false), mean / std (to undo Normalize in the samples; default:
-- the data module's), verbose (print the files written).
-- Metrics are read from trainer.callback_metrics: train_loss and train_acc at the end of each
-- training epoch, val_loss and val_acc at the end of each validation run (NaN where one did not run).
-- The confusion matrices come from the module's per-stage metrics, module.epoch_metrics.<stage>
-- .confusion:counts() (lightning.metrics' EpochMetrics, which ImageClassifier keeps); a module without
-- them gets no confusion matrix. The history is saved in checkpoints, so a resumed run plots every epoch.
local L = require "lightning"
local class = require "lightning.class"
local Callback = require "lightning.callbacks.callback"
local fs = require "lightning.util.fs"
local output = require "lightning.util.output"
local options = require "lightning.util.options"

local PlotCallback = class("PlotCallback", Callback)

-- Run on_train_epoch_end after the module's own hook, which logs the epoch's training metrics
-- (the Trainer orders such "monitoring" callbacks after the module).
PlotCallback.is_monitoring_callback = true

PlotCallback.SERIES = {"train_loss", "val_loss", "train_acc", "val_acc"}

function PlotCallback:__init(opts)
  local o = options.check("PlotCallback", opts, {
    dirpath = {kind = "string"},
    metrics = {kind = "boolean", default = true},
    confusion_matrix = {kind = "boolean", default = true},
    samples = {kind = "boolean", default = true},
    num_samples = {kind = "integer", min = 1, default = 32},
    nrow = {kind = "integer", min = 1, default = 8},
    class_names = {kind = "table", expected = "a list of names"},
    normalize = {kind = "boolean", default = false},
    mean = {kind = {"number", "table"}},
    std = {kind = {"number", "table"}},
    verbose = {kind = "boolean", default = false},
  })
  for k, v in pairs(o) do self[k] = v end
  self.history = {epoch = {}}
  for _, key in ipairs(PlotCallback.SERIES) do self.history[key] = {} end
  self.written = {}  -- paths of the files written, in order
end

function PlotCallback:state_dict()
  return {history = self.history}
end

function PlotCallback:load_state_dict(state)
  if type(state) == "table" and type(state.history) == "table" then self.history = state.history end
end

function PlotCallback:setup(trainer, module, stage)
  if self.dirpath == nil then self.dirpath = fs.join(trainer.log_dir or trainer.default_root_dir or ".", "plots") end
end

-- The row of the history for the current epoch (a new row of NaN when it has none yet). Epochs are
-- numbered as everywhere else (the console, checkpoint names): from 0, trainer.current_epoch.
function PlotCallback:_row(trainer)
  local h, epoch = self.history, trainer.current_epoch
  local n = #h.epoch
  if n > 0 and h.epoch[n] == epoch then return n end
  n = n + 1
  h.epoch[n] = epoch
  for _, key in ipairs(PlotCallback.SERIES) do h[key][n] = 0 / 0 end
  return n
end

function PlotCallback:_record(trainer, keys)
  local row = self:_row(trainer)
  for _, key in ipairs(keys) do
    local v = trainer.callback_metrics[key]
    if L.is_tensor(v) then v = v:item() end
    if type(v) == "number" then self.history[key][row] = v end
  end
end

local function fitting(trainer)
  return trainer.state and trainer.state.fn == "fit" and not trainer.sanity_checking
end

-- The counts of the module's confusion matrix for a stage ("val", "test"), or nil.
local function confusion_counts(module, stage)
  local per_stage = type(module) == "table" and module.epoch_metrics or nil
  local m = type(per_stage) == "table" and per_stage[stage] or nil
  local cm = type(m) == "table" and m.confusion or nil
  if cm == nil or type(cm.counts) ~= "function" or type(cm.total) ~= "function" or cm:total() == 0 then return nil end
  return cm:counts()
end

function PlotCallback:on_validation_end(trainer, module)
  if not fitting(trainer) then return end
  self:_record(trainer, {"val_loss", "val_acc"})
  self._val_counts = confusion_counts(module, "val")
  self._val_epoch = trainer.current_epoch
end

function PlotCallback:on_train_epoch_end(trainer, module)
  if not fitting(trainer) then return end
  self:_record(trainer, {"train_loss", "train_acc"})
end

function PlotCallback:_class_names(trainer)
  if self.class_names then return self.class_names end
  local dm = trainer.datamodule
  if type(dm) == "table" and type(dm.classes) == "table" then return dm.classes end
  local loader = trainer.train_dataloader
  local ds = type(loader) == "table" and loader.dataset or nil
  if type(ds) == "table" and type(ds.classes) == "table" then return ds.classes end
  return nil
end

-- The first batch of a fresh loader over the training data (shuffled with a fixed seed, so neither
-- the global generator nor the training loader's state changes), or nil.
function PlotCallback:_sample_batch(trainer)
  local loader = trainer.train_dataloader
  if type(loader) ~= "table" then return nil end
  local DataLoader = L.data.DataLoader
  if getmetatable(loader) == DataLoader then
    loader = DataLoader(loader.dataset, {batch_size = self.num_samples, shuffle = true, seed = 0})
  elseif type(loader.iter) ~= "function" then
    return nil
  end
  local rng = L.get_rng_state()
  local batch
  for _, b in loader:iter() do
    batch = {input = b.input:clone(), target = b.target:clone()}
    break
  end
  L.set_rng_state(rng)
  return batch
end

function PlotCallback:_path(name)
  local ok, err = fs.mkdirs(self.dirpath)
  if not ok then error(("PlotCallback: cannot create %s: %s"):format(self.dirpath, tostring(err)), 0) end
  local path = fs.join(self.dirpath, name)
  self.written[#self.written + 1] = path
  return path
end

local function has_values(history)
  for _, key in ipairs(PlotCallback.SERIES) do
    for _, v in ipairs(history[key] or {}) do if v == v then return true end end
  end
  return false
end

-- Charts are files: drawn on global rank 0 only (trainer.is_global_zero).
function PlotCallback:on_fit_end(trainer, module)
  if not trainer.is_global_zero then return end
  local first = #self.written + 1
  if self.metrics and #self.history.epoch > 0 and has_values(self.history) then
    L.plot.metrics(self.history, self:_path("metrics.png"))
  end
  if self.confusion_matrix and self._val_counts then
    L.plot.confusion_matrix(self._val_counts, self:_class_names(trainer), self:_path("confusion_matrix.png"),
      {normalize = self.normalize, title = ("Confusion matrix (validation, epoch %d)"):format(self._val_epoch)})
  end
  if self.samples then
    local batch = self:_sample_batch(trainer)
    local dm = trainer.datamodule
    local mean = self.mean or (type(dm) == "table" and dm.mean) or nil
    local std = self.std or (type(dm) == "table" and dm.std) or nil
    if batch and batch.input:dim() == 4 then
      L.plot.samples(batch.input, batch.target, self:_class_names(trainer), self:_path("samples.png"),
        {nrow = self.nrow, max_images = self.num_samples, mean = mean and std and mean or nil,
         std = mean and std and std or nil, title = "Training samples (augmented)"})
    end
  end
  self:_report(first)
end

function PlotCallback:on_test_end(trainer, module)
  if not trainer.is_global_zero then return end
  local first = #self.written + 1
  local counts = self.confusion_matrix and confusion_counts(module, "test")
  if counts then
    L.plot.confusion_matrix(counts, self:_class_names(trainer), self:_path("confusion_matrix_test.png"),
      {normalize = self.normalize, title = "Confusion matrix (test)"})
  end
  self:_report(first)
end

function PlotCallback:_report(first)
  if self.verbose and #self.written >= first then
    output.print(("PlotCallback: wrote %s"):format(table.concat(self.written, ", ", first)))
  end
end

return PlotCallback
