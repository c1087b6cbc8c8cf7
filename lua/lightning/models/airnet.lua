--- AirNet: the network and training recipe of airbench94 (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds
-- on a single GPU", arXiv 2404.00498), the same recipe step for step as bench/airbench_torch.py, as a
-- LightningModule of the model zoo.
--   whiten: conv 2x2, 3 -> 24, its weight fixed to whiten the data's 2x2 patches (nn.init.whitening_
--           from the first 5000 training images), its bias trained in the first 3 epochs only; GELU
--   block1..3: conv 3x3 (no bias, the first in_channels filters the identity) -> MaxPool2d(2) ->
--           BatchNorm (weight frozen at 1, eps 1e-12, momentum 0.4) + GELU -> conv 3x3 -> BatchNorm + GELU,
--           widths 64, 256, 256 (each BatchNorm + GELU one nn.BatchNormAct2d: one kernel in bf16 runs)
--   MaxPool2d(3) -> Flatten -> Linear(256, 10, no bias) -> x 1/9
-- Parameter and buffer names are those of bench/airbench_torch.py's AirNet (whiten.weight,
-- block1.conv1.weight, block1.norm1.bias, ..., fc.weight), so weights move both ways.
-- The recipe (configure_optimizers, configure_callbacks, the steps): Nesterov SGD with momentum 0.85 on
-- the summed, label-smoothed (0.2) cross-entropy, in airbench's decoupled form: lr 11.5 and weight decay
-- 0.0153 per 1024 examples, the BatchNorm biases at 64 times the learning rate; a triangular schedule per
-- step (0.2 -> 1 over the first 23 % of the steps, then down to 0.07); Lookahead weight averaging every 5
-- steps (L.callbacks.Lookahead); test-time augmentation in test and predict (tta = 2: mirror, and
-- one-pixel translations up-left and down-right with reflection; 0 or 1 for less).
--   local model = L.models.AirNet{}        -- or {widths = {32, 64, 64}, tta = 0, ...}
--   trainer:fit(model, L.data.ImageDataModule{dataset = "cifar10", batch_size = 1024, val_split = 1,
--     augmentation = "flip_translate", drop_last = true})
local L = require "lightning"
local class = require "lightning.class"
local nn = require "lightning.nn"
local util = require "lightning.nn.util"
local options = require "lightning.util.options"
local optim = require "lightning.optim"
local T = require "lightning.data.transforms"
local DataLoader = require "lightning.data.loader"
local ImageClassifier = require "lightning.models.image_classifier"
local Lookahead = require "lightning.callbacks.lookahead"

local F = T.functional
local BatchNorm = nn.BatchNorm2d.super

--- nn.Sequential with named children (PyTorch's nn.Sequential over an OrderedDict): it runs them in the
-- order they were added, and the state-dict names are their names.
local Chain = class("Chain", nn.Sequential)

function Chain:add(name, m)
  local list = rawget(self, "_list")
  list[#list + 1] = m
  self:add_module(name, m)
  return m
end

Chain.__tostring = nn.Module.__tostring

local AirNet = class("AirNet", ImageClassifier)

AirNet.defaults = {
  num_classes = 10, in_channels = 3, image_size = 32, dropout_rate = 0,
  widths = {64, 256, 256}, bn_eps = 1e-12, bn_momentum = 0.4, logit_scale = 1 / 9,
  -- the optimiser, in airbench's decoupled form (per 1024 examples, for the summed loss)
  optimizer = "sgd", learning_rate = 11.5, weight_decay = 0.0153, momentum = 0.85, bias_lr_scale = 64,
  label_smoothing = 0.2,
  -- the triangular schedule: lr_start -> 1 over the first `warmup` of the steps, then down to lr_end
  warmup = 0.23, lr_start = 0.2, lr_end = 0.07,
  -- the whitening layer: from the first whiten_images training images (0: leave it to init_whitening)
  whiten_images = 5000, whiten_eps = 5e-4, whiten_bias_epochs = 3,
  -- Lookahead every lookahead_every steps (0: none) with decay lookahead_decay * (step/total)^lookahead_power
  lookahead_every = 5, lookahead_decay = 0.95 ^ 5, lookahead_power = 3,
  tta = 2,   -- test-time augmentation in test and predict: 0 none, 1 mirror, 2 mirror and translations
  batch_size = 0,   -- the batch size the weight decay scales with (0: the training loader's)
}

local CHECKS = {
  widths = {test = function(v) return type(v) == "table" and #v == 3 end, expected = "three widths"},
  bn_eps = {kind = "number", min = 0}, bn_momentum = {kind = "number", min = 0, max = 1},
  logit_scale = {kind = "number", finite = true}, bias_lr_scale = {kind = "number", above = 0},
  warmup = {kind = "number", min = 0, below = 1}, lr_start = {kind = "number", min = 0}, lr_end = {kind = "number", min = 0},
  whiten_images = {kind = "integer", min = 0}, whiten_eps = {kind = "number", min = 0},
  whiten_bias_epochs = {kind = "integer", min = 0},
  lookahead_every = {kind = "integer", min = 0}, lookahead_decay = {kind = "number", min = 0, max = 1},
  lookahead_power = {kind = "number", min = 0},
  tta = {kind = "integer", min = 0, max = 2}, batch_size = {kind = "integer", min = 0},
  momentum = {kind = "number", min = 0, below = 1},
}
local function conv3x3(cin, cout)
  local c = nn.Conv2d(cin, cout, 3, {padding = 1, bias = false})
  nn.init.dirac_(c.weight:narrow(1, 1, math.min(cin, cout)))   -- the first cin filters pass their input through
  return c
end

local function norm_gelu(c, hp)
  local bn = nn.BatchNormAct2d(c, {activation = "gelu", eps = hp.bn_eps, momentum = hp.bn_momentum})
  bn.weight.requires_grad = false   -- bias-only affine: the scale stays 1
  return bn
end

local function block(cin, cout, hp)
  local b = Chain()
  b:add("conv1", conv3x3(cin, cout))
  b:add("pool", nn.MaxPool2d(2))
  b:add("norm1", norm_gelu(cout, hp))
  b:add("conv2", conv3x3(cout, cout))
  b:add("norm2", norm_gelu(cout, hp))
  return b
end

function AirNet:__init(opts)
  local hp = ImageClassifier.__init(self, opts)
  for _, name in ipairs(options.sorted_keys(CHECKS)) do options.check_value("AirNet", "", name, CHECKS[name], hp[name]) end
  self.criterion = nn.CrossEntropyLoss{label_smoothing = hp.label_smoothing, reduction = "sum"}
  local c = util.positive_int("AirNet", "in_channels", hp.in_channels)
  local size = util.positive_int("AirNet", "image_size", hp.image_size)
  local widths = hp.widths
  -- the image size through the network: 2x2 convolution, three poolings by 2, the final 3x3 pooling
  local s = size - 1
  for _ = 1, 3 do s = s // 2 end
  s = (s - 3) // 3 + 1
  if s < 1 then options.fail("AirNet", "image_size must be at least 30, got %d", size) end

  rawset(self, "_list", {})                      -- the layers in order, run as an nn.Sequential runs them
  local function step(name, m) return Chain.add(self, name, m) end
  local whiten = step("whiten", nn.Conv2d(c, 2 * c * 4, 2))
  whiten.weight.requires_grad = false            -- fixed by init_whitening
  self.needs_input_grad = false                  -- the images need no gradient
  step("whiten_gelu", nn.GELU())
  step("block1", block(2 * c * 4, widths[1], hp))
  step("block2", block(widths[1], widths[2], hp))
  step("block3", block(widths[2], widths[3], hp))
  step("pool", nn.MaxPool2d(3))
  step("flatten", nn.Flatten())
  step("fc", nn.Linear(widths[3] * s * s, hp.num_classes, {bias = false}))
  step("scale", nn.MulConstant(hp.logit_scale))
  self.whitened = false
  self._tta = {flip = L.empty(0), shift = L.empty(0), logits = L.empty(0)}
end

AirNet.load_from_checkpoint = require("lightning.models.from_checkpoint").bind(AirNet)

function AirNet:forward(x)
  util.check_input("AirNet:forward", x, {4})
  return nn.Sequential.forward(self, x)
end

function AirNet:backward(x, grad_output)
  util.check_grad("AirNet:backward", grad_output)
  return nn.Sequential.backward(self, x, grad_output)
end

--- Weights loaded from elsewhere include the whitening layer's: fit does not compute it again.
function AirNet:load_state_dict(sd, strict)
  local result = ImageClassifier.load_state_dict(self, sd, strict)
  self.whitened = true
  return result
end

--- The whitening layer from images (N, C, H, W), a list of such batches or a loader of them (normalised
-- as in training, without augmentation): nn.init.whitening_ with eps whiten_eps, and a zero bias.
function AirNet:init_whitening(images)
  nn.init.whitening_(self.whiten.weight, images, {eps = self.hparams.whiten_eps})
  self.whiten.bias:zero()
  self.whitened = true
end

-- The first whiten_images training images of the Trainer's data module, normalised, not augmented.
function AirNet:_data_for_whitening()
  local dm = self.trainer and self.trainer.datamodule
  if not (dm and dm.train_set and dm.mean and dm.std) then
    error("AirNet: the whitening layer needs training images: fit on a data module with train_set, mean and std " ..
      "(L.data.ImageDataModule), or call model:init_whitening(images) first (or set whiten_images = 0)", 0)
  end
  local n = math.min(self.hparams.whiten_images, #dm.train_set)
  local first = {}
  for i = 1, n do first[i] = i end
  local plain = dm.train_set:subset(first, {transform = T.Normalize(dm.mean, dm.std)})
  return DataLoader(plain, {batch_size = 500, num_workers = dm.num_workers or 0})
end

function AirNet:setup(stage)
  ImageClassifier.setup(self, stage)
  if stage == "fit" and not self.whitened and self.hparams.whiten_images > 0 then
    self:init_whitening(self:_data_for_whitening())
  end
end

function AirNet:on_train_epoch_start()
  ImageClassifier.on_train_epoch_start(self)
  self.whiten.bias.requires_grad = self.trainer.current_epoch < self.hparams.whiten_bias_epochs
end

--- The schedule's factor at a step (0-based) of a run of `total` steps: lr_start -> 1 over the first
-- floor(total * warmup) steps, then linearly toward lr_end (reached after the last step), as
-- bench/airbench_torch.py's lr_factor.
function AirNet.lr_factor(step, total, hp)
  local warm = math.floor(total * hp.warmup)
  if step < warm then return hp.lr_start + (1 - hp.lr_start) * step / warm end
  return 1 + (hp.lr_end - 1) * (step - warm) / math.max(total - warm, 1)
end

function AirNet:configure_optimizers()
  local hp, trainer = self.hparams, self.trainer
  local loader = trainer and trainer.train_dataloader
  local batch = hp.batch_size > 0 and hp.batch_size or (type(loader) == "table" and loader.batch_size)
  if math.type(batch) ~= "integer" then
    error("AirNet: the batch size is unknown (its weight decay scales with it): set batch_size", 0)
  end
  -- airbench's hyper-parameters, decoupled: per 1024 examples of a summed loss, at momentum m
  local scale = 1024 * (1 + 1 / (1 - hp.momentum))
  local lr, wd = hp.learning_rate / scale, hp.weight_decay * batch / scale
  local lr_bias = lr * hp.bias_lr_scale
  local norm_biases, others, in_norm = {}, {}, {}
  for _, m in ipairs(self:modules()) do
    if class.is_instance(m, BatchNorm) then
      for _, p in ipairs(m:parameters()) do in_norm[p] = true end
    end
  end
  for _, p in ipairs(self:parameters()) do
    if p.requires_grad ~= false then
      local list = in_norm[p] and norm_biases or others
      list[#list + 1] = p
    end
  end
  local opt = optim.SGD({{params = norm_biases, lr = lr_bias, weight_decay = wd / lr_bias},
                         {params = others, lr = lr, weight_decay = wd / lr}},
                        {lr = lr, momentum = hp.momentum, nesterov = true})
  local total = trainer and trainer.estimated_stepping_batches
  if not total or total == math.huge then
    error("AirNet: the schedule needs the run's number of steps (set max_steps or max_epochs)", 0)
  end
  local sched = optim.lr_scheduler.LambdaLR(opt, {lr_lambda = function(step) return AirNet.lr_factor(step, total, hp) end})
  return {optimizer = opt, lr_scheduler = {scheduler = sched, interval = "step"}}
end

function AirNet:configure_callbacks()
  local hp = self.hparams
  if hp.lookahead_every == 0 then return nil end
  return {Lookahead{every_n_steps = hp.lookahead_every, decay = hp.lookahead_decay, decay_power = hp.lookahead_power}}
end

-- ---- steps: the summed loss trains; metrics and logs are per example ----

function AirNet:_measure(stage, logits, batch)
  local y = batch.target
  local loss = self.criterion(logits, y)   -- (recorded in training_step: the Trainer backpropagates it)
  local n = y:size(1)
  self.epoch_metrics[stage]:update(logits, y, loss / n)
  self:_log_scores(stage, stage ~= "test")
  return loss, n
end

function AirNet:training_step(batch, batch_idx)
  local logits = self(batch.input)
  local loss, n = self:_measure("train", logits, batch)
  self:log("train_loss", loss / n, {on_step = true, on_epoch = true, prog_bar = true, batch_size = n})
  return {loss = loss, output = logits, target = batch.target, input = batch.input}
end

function AirNet:validation_step(batch, batch_idx)
  local logits = self(batch.input)
  local loss, n = self:_measure("val", logits, batch)
  self:log("val_loss", loss / n, {prog_bar = true, batch_size = n})
end

--- The logits of x with test-time augmentation at `level` (default hparams.tta), airbench's weights:
-- 1: the mean of x and its mirror image; 2: 1/2 of that, plus 1/4 each of the same for x shifted one
-- pixel down-right and up-left (reflection at the border). The result is reused at the next call.
function AirNet:tta_logits(x, level)
  level = level or self.hparams.tta
  if level == 0 then return self:forward(x) end
  local buf = self._tta
  local acc = buf.logits
  local function mirrored(v, weight)
    acc:add(self:forward(v), weight / 2)
    acc:add(self:forward(F.hflip(v, buf.flip)), weight / 2)
  end
  acc:resize(x:size(1), self.hparams.num_classes):zero()
  if level == 1 then
    mirrored(x, 1)
  else
    mirrored(x, 0.5)
    mirrored(F.shift(x, 1, 1, {padding_mode = "reflect", out = buf.shift}), 0.25)
    mirrored(F.shift(x, -1, -1, {padding_mode = "reflect", out = buf.shift}), 0.25)
  end
  return acc
end

function AirNet:test_step(batch, batch_idx)
  local logits = self:tta_logits(batch.input)
  local loss, n = self:_measure("test", logits, batch)
  self:log("test_loss", loss / n, {batch_size = n})
end

--- {predictions, probabilities, logits} as ImageClassifier's, from the test-time augmented logits.
function AirNet:predict_step(batch, batch_idx)
  local logits = self:tta_logits(batch.input)
  self._softmax = self._softmax or nn.Softmax(2)
  return {predictions = logits:argmax(2), probabilities = self._softmax:forward(logits):clone(), logits = logits:clone()}
end

function AirNet:extra_repr()
  local w = self.hparams.widths
  return ("widths={%d, %d, %d}, num_classes=%d, tta=%d"):format(w[1], w[2], w[3], self.hparams.num_classes,
    self.hparams.tta)
end

return AirNet
