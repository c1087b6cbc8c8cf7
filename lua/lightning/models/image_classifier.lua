--- ImageClassifier: the training side of the original project's model.py as a LightningModule, for
-- any network: one it holds (ImageClassifier{net = nn.Sequential(...)}) or a subclass that defines
-- forward(x[, {debug = true}]) and backward(x, grad_output), as BasicImageClassifier does.
--   local model = L.models.ImageClassifier{net = my_net, num_classes = 10, learning_rate = 1e-3}
-- It brings: the cross-entropy criterion; training/validation/test/predict steps; configure_optimizers
-- (optimizer "adam" (default), "adamw" or "sgd" with momentum, weight_decay; scheduler "none", "step",
-- "cosine", "plateau" or "onecycle"); per-epoch metrics for train, val and test from a C confusion
-- matrix (accuracy, and macro precision, recall and F1), logged as train_loss, train_acc, ...,
-- val_loss, val_acc, val_precision, val_recall, val_f1, test_*; and with debug = true the original's
-- debugging output: the INITIALIZING MODEL block (at the setup of fit: the network's layers and
-- parameter counts), "STARTING TRAINING EPOCH n" banners, the first batch of each epoch in detail
-- (shapes, label distribution, the FORWARD PASS DEBUG report of every layer, loss, predictions against
-- truth, correct count) and epoch summaries (with the learning rate in training), printed by
-- lightning.models.debug_report (which any model can call from its own hooks). debug is a display
-- option, not a hyper-parameter: checkpoints do not keep it, so a model loaded for inference is quiet.
-- predict_step gives classes, probabilities and logits. Hyper-parameters are in self.hparams (saved in
-- checkpoints); fitted on a data module with classes, mean and std (ImageDataModule), it adds them as
-- class_names, mean and std, so that a checkpoint classifies new images alone; load_from_checkpoint
-- builds the model back from one. batch_idx is 1-based.
local L = require "lightning"
local class = require "lightning.class"
local nn = require "lightning.nn"
local LightningModule = require "lightning.lightning_module"
local metrics = require "lightning.metrics"
local output = require "lightning.util.output"
local options = require "lightning.util.options"
local diagnostics = require "lightning.nn.diagnostics"
local optim = require "lightning.optim"
local dist_metrics = require "lightning.distributed.metrics"
local report = require "lightning.models.debug_report"

local ImageClassifier = class("ImageClassifier", LightningModule)

--- The hyper-parameters: their checks and defaults (lightning.util.options specs). A subclass may add
-- its own network options in a `defaults` table of its class (BasicImageClassifier.defaults), which it
-- checks itself.
ImageClassifier.hparam_specs = {
  num_classes = {kind = "integer", min = 1, default = 10},
  in_channels = {kind = "any", default = 3},
  image_size = {kind = "any", default = 32},
  dropout_rate = {kind = "any", default = 0.5},
  learning_rate = {kind = "number", above = 0, default = 1e-3},
  weight_decay = {kind = "number", min = 0, default = 0.0},
  optimizer = {kind = "string", one_of = {"adam", "adamw", "sgd"}, default = "adam"},
  momentum = {kind = "number", min = 0, default = 0.9},
  scheduler = {kind = "string", one_of = {"none", "step", "cosine", "plateau", "onecycle"}, default = "none"},
  step_size = {kind = "integer", min = 1, default = 10},
  gamma = {kind = "number", min = 0, default = 0.1},
  t_max = {kind = "integer", min = 1},
  plateau_patience = {kind = "integer", min = 0, default = 5},
  plateau_factor = {kind = "number", min = 0, max = 1, default = 0.1},
  monitor = {kind = "string", expected = "a metric name", default = "val_loss"},
  label_smoothing = {kind = "any", default = 0.0},
  debug = {kind = "boolean", default = false},
  -- the network itself (an option, not a hyper-parameter)
  net = {test = function(v) return type(v) == "table" and type(v.forward) == "function" and type(v.backward) == "function" end,
    expected = "a network with forward and backward"},
}

-- The specs of a class: the hyper-parameters, with the defaults of its `defaults` table (cached per class).
local specs_of = setmetatable({}, {__mode = "k"})
local function class_specs(cls)
  local specs = specs_of[cls]
  if specs then return specs end
  specs = {}
  for k, spec in pairs(ImageClassifier.hparam_specs) do specs[k] = spec end
  for k, v in pairs(type(cls.defaults) == "table" and cls.defaults or {}) do
    local spec = {}
    for field, x in pairs(specs[k] or {kind = "any"}) do spec[field] = x end
    spec.default = v
    specs[k] = spec
  end
  specs_of[cls] = specs
  return specs
end

--- The names a class's constructor takes (a set): the hyper-parameters, the class's own defaults, net.
function ImageClassifier.option_names(cls)
  local known = {}
  for k in pairs(class_specs(cls)) do known[k] = true end
  return known
end

function ImageClassifier:__init(opts)
  local hp = options.check(self, opts, class_specs(getmetatable(self)))   -- (errors name the class called)
  local net = hp.net
  hp.net = nil
  LightningModule.__init(self)
  -- what is printed, not how the model trains: kept out of the hyper-parameters (and checkpoints)
  self.debug = hp.debug
  hp.debug = nil
  self:save_hyperparameters(hp)
  self.num_classes = hp.num_classes
  self.criterion = nn.CrossEntropyLoss{label_smoothing = hp.label_smoothing}
  self.epoch_metrics = {train = metrics.EpochMetrics(hp.num_classes), val = metrics.EpochMetrics(hp.num_classes),
    test = metrics.EpochMetrics(hp.num_classes)}
  if net ~= nil then self:add_module("net", net) end
  -- the network's debugging report goes where the Trainer prints
  self.debug_output = function(line) output.print(line) end
  if math.type(hp.in_channels) == "integer" and math.type(hp.image_size) == "integer" then
    self.example_input_array = L.zeros(1, hp.in_channels, hp.image_size, hp.image_size)
  end
  hp.debug = self.debug
  return hp  -- the checked options, for a subclass's own (BasicImageClassifier's network options)
end

--- ImageClassifier.load_from_checkpoint(path[, overrides]): the model a training checkpoint holds,
-- built from the hyper-parameters in its metadata (overrides replace some) with its weights loaded
-- (Lightning's name; see lightning.models.from_checkpoint). Subclasses have their own
-- (BasicImageClassifier.load_from_checkpoint); Class:load_from_checkpoint(path) works for any.
ImageClassifier.load_from_checkpoint = require("lightning.models.from_checkpoint").bind(ImageClassifier)

--- The logits for x. opts.debug prints the FORWARD PASS DEBUG report of the network's layers through
-- opts.output or self.debug_output; other options go to the network's forward.
function ImageClassifier:forward(x, opts)
  if not self.net then
    error(("%s:forward: no network: pass net = ... or define forward and backward in the subclass")
      :format(class.name_of(self)), 2)
  end
  if opts and opts.debug and not self.net.reports_forward_debug then
    local rest = {}
    for k, v in pairs(opts) do if k ~= "debug" and k ~= "output" then rest[k] = v end end
    return diagnostics.forward_report(self.net, x, opts.output or self.debug_output, function()
      return self.net:forward(x, next(rest) and rest or nil)
    end)
  end
  return self.net:forward(x, opts)
end

-- The forward pass of a debugged batch, with the FORWARD PASS DEBUG report: the model's own forward
-- when it makes the report (ImageClassifier's, BasicImageClassifier's), otherwise (a subclass's forward
-- that knows nothing of debug) the report of the model's layers around it.
function ImageClassifier:_forward_debug(x)
  local cls = getmetatable(self)
  if cls.forward == ImageClassifier.forward or cls.reports_forward_debug then return self:forward(x, {debug = true}) end
  return diagnostics.forward_report(self, x, self.debug_output, function() return self:forward(x) end)
end

function ImageClassifier:backward(x, grad_output)
  if not self.net then
    error(("%s:backward: no network: pass net = ... or define forward and backward in the subclass")
      :format(class.name_of(self)), 2)
  end
  return self.net:backward(x, grad_output)
end

-- ---- debugging output (the original's: lightning.models.debug_report prints it) ----

--- Counts of each class 1..K among the targets.
function ImageClassifier:label_distribution(target) return report.label_distribution(target, self.num_classes) end

--- The layer lines of the INITIALIZING MODEL block (debug_report.model_info_lines).
function ImageClassifier:model_info_lines() return report.model_info_lines(self) end

--- The original's INITIALIZING MODEL block, of the network the model holds.
function ImageClassifier:print_model_info() report.print_model_info(self, self.hparams) end

--- The learning rate of the first optimizer's first group, or nil.
function ImageClassifier:current_lr()
  local trainer = self.trainer
  local opt = trainer and trainer.optimizers and trainer.optimizers[1]
  if not opt then return nil end
  return optim.learning_rates(opt)[1]
end

-- ---- steps ----

-- What a data module says about its images, kept in the hyper-parameters so that a checkpoint can
-- classify new images by itself (examples/predict.lua): the class names and the normalisation.
local function data_hparams(dm)
  local hp = {}
  if type(dm) ~= "table" then return hp end
  if type(dm.classes) == "table" then hp.class_names = dm.classes end
  if type(dm.mean) == "table" and type(dm.std) == "table" then hp.mean, hp.std = dm.mean, dm.std end
  return hp
end

function ImageClassifier:setup(stage)
  if stage == "fit" and self.trainer then self:save_hyperparameters(data_hparams(self.trainer.datamodule)) end
  -- (once, when training begins, as the original prints it when the model is built for training)
  if self.debug and stage == "fit" and not self._model_info_printed then
    self:print_model_info()
    self._model_info_printed = true
  end
end

-- Forward, loss and metric update of one batch; with debug the first batch is reported in detail.
function ImageClassifier:_shared_step(stage, batch, batch_idx)
  local x, y = batch.input, batch.target
  local debug = self.debug and batch_idx == 1 and stage ~= "test"
  local title = stage == "train" and "TRAINING STEP" or "VALIDATION STEP"
  if debug then report.batch(title, batch, batch_idx, self.num_classes) end
  -- called, not :forward: in training_step autograd records the model and the loss, and the Trainer
  -- backpropagates the loss (docs/autograd.md); the loss is a one-element tensor where the logits are
  local logits
  if debug then logits = self:call_with(self._forward_debug, x) else logits = self(x) end
  local loss = self.criterion(logits, y)
  self.epoch_metrics[stage]:update(logits, y, loss)
  if debug then
    report.result(stage == "train" and "Training" or "Validation", logits, y, L.is_tensor(loss) and loss:item() or loss,
      self.epoch_metrics[stage])
  end
  return logits, loss
end

-- The epoch's scores are metric objects (views of the stage's EpochMetrics): logged in every step,
-- computed over the whole epoch before the epoch-end hooks, so that callbacks read this epoch's
-- values there (as torchmetrics objects logged in Lightning's steps).
function ImageClassifier:_log_scores(stage, prog_bar)
  local m = self.epoch_metrics[stage]
  self:log(stage .. "_acc", m:view("accuracy"), {prog_bar = prog_bar})
  self:log(stage .. "_precision", m:view("precision"))
  self:log(stage .. "_recall", m:view("recall"))
  self:log(stage .. "_f1", m:view("f1"))
end

--- Its training_step is device work and logging only, so the Trainer may run it as a CUDA graph's replay
-- (Trainer{cuda_graph}), but for the batch whose debugging report reads its values.
function ImageClassifier:capturable_training_step(batch, batch_idx)
  return not (self.debug and batch_idx == 1)
end

function ImageClassifier:training_step(batch, batch_idx)
  local logits, loss = self:_shared_step("train", batch, batch_idx)
  self:log("train_loss", loss, {on_step = true, on_epoch = true, prog_bar = true})
  self:_log_scores("train", true)
  return {loss = loss, output = logits, target = batch.target, input = batch.input}
end

function ImageClassifier:validation_step(batch, batch_idx)
  local logits, loss = self:_shared_step("val", batch, batch_idx)
  self:log("val_loss", loss, {prog_bar = true, sync_dist = true})
  self:_log_scores("val", true)
  return {loss = loss, output = logits, target = batch.target}
end

function ImageClassifier:test_step(batch, batch_idx)
  local logits, loss = self:_shared_step("test", batch, batch_idx)
  self:log("test_loss", loss, {sync_dist = true})
  self:_log_scores("test", false)
  return {loss = loss, output = logits, target = batch.target}
end

--- {predictions = (B) classes 1..K, probabilities = (B, K) softmax of the logits, logits = (B, K)}
-- (copies: the network reuses its buffers). batch.target is not needed.
function ImageClassifier:predict_step(batch, batch_idx)
  local logits = self:forward(batch.input)
  self._softmax = self._softmax or nn.Softmax(2)   -- (called as a module: it follows the logits' device)
  return {predictions = logits:argmax(2), probabilities = self._softmax(logits):clone(), logits = logits:clone()}
end

-- ---- epoch hooks: the original's epoch output ----

-- The scores a stage's summary prints: those of all the data, in a data-parallel run the metrics'
-- states added over the processes (as the logged metric objects' values; every process calls it), or
-- nil without samples.
function ImageClassifier:_epoch_scores(stage)
  local m = self.epoch_metrics[stage]
  return dist_metrics.synced(m, self.trainer and self.trainer.strategy, function()
    return m.samples > 0 and m:compute() or nil
  end)
end

function ImageClassifier:on_train_epoch_start()
  self.epoch_metrics.train:reset()
  if self.debug then report.epoch_banner(self.trainer.current_epoch) end
end

function ImageClassifier:on_train_epoch_end()
  if self.debug then
    local scores = self:_epoch_scores("train")
    if scores then report.summary(("TRAINING EPOCH %d SUMMARY"):format(self.trainer.current_epoch), scores, self:current_lr()) end
  end
end

function ImageClassifier:on_validation_epoch_start()
  self.epoch_metrics.val:reset()
end

function ImageClassifier:on_validation_epoch_end()
  if self.debug and not self.trainer.sanity_checking then
    local scores = self:_epoch_scores("val")
    if scores then report.summary(("VALIDATION EPOCH %d SUMMARY"):format(self.trainer.current_epoch), scores, self:current_lr()) end
  end
end

function ImageClassifier:on_test_epoch_start()
  self.epoch_metrics.test:reset()
end

function ImageClassifier:on_test_epoch_end()
  if self.debug then
    local scores = self:_epoch_scores("test")
    if scores then report.summary("TEST SUMMARY", scores) end
  end
end

-- ---- optimizers ----

local function mode_of(metric)
  if metric:find("loss") then return "min" end
  return "max"
end

function ImageClassifier:configure_optimizers()
  local hp = self.hparams
  local params = self:parameters()
  local opt
  if hp.optimizer == "adam" then
    opt = optim.Adam(params, {lr = hp.learning_rate, weight_decay = hp.weight_decay})
  elseif hp.optimizer == "adamw" then
    opt = optim.AdamW(params, {lr = hp.learning_rate, weight_decay = hp.weight_decay})
  else
    opt = optim.SGD(params, {lr = hp.learning_rate, momentum = hp.momentum, weight_decay = hp.weight_decay})
  end
  local S = optim.lr_scheduler
  local trainer = self.trainer
  if hp.scheduler == "none" then
    return opt
  elseif hp.scheduler == "step" then
    return {optimizer = opt, lr_scheduler = S.StepLR(opt, {step_size = hp.step_size, gamma = hp.gamma})}
  elseif hp.scheduler == "cosine" then
    local t_max = hp.t_max or (trainer and trainer.max_epochs ~= -1 and trainer.max_epochs) or 50
    return {optimizer = opt, lr_scheduler = S.CosineAnnealingLR(opt, {T_max = t_max})}
  elseif hp.scheduler == "plateau" then
    local scheduler = S.ReduceLROnPlateau(opt, {mode = mode_of(hp.monitor), factor = hp.plateau_factor,
      patience = hp.plateau_patience})
    return {optimizer = opt, lr_scheduler = {scheduler = scheduler, monitor = hp.monitor, interval = "epoch"}}
  end
  local total = trainer and trainer.estimated_stepping_batches
  if not total or total == math.huge then
    error("ImageClassifier: scheduler \"onecycle\" needs a known number of steps (set max_epochs or max_steps)", 0)
  end
  local scheduler = S.OneCycleLR(opt, {max_lr = hp.learning_rate, total_steps = math.tointeger(total)})
  return {optimizer = opt, lr_scheduler = {scheduler = scheduler, interval = "step"}}
end

return ImageClassifier
