--- The airbench94 recipe (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", arXiv
-- 2404.00498): how L.models.AirNet trains, step for step as bench/airbench_torch.py.
--   data: all 50,000 CIFAR-10 training images (no validation), batches of 1024 (the last partial one
--         dropped), flip + translate augmentation; the whitening layer from the first 5000 training
--         images, normalised, not augmented (at the setup of fit, unless weights were loaded)
--   optimiser: Nesterov SGD with momentum 0.85 on the summed, label-smoothed (0.2) cross-entropy, in
--         airbench's decoupled form: lr 11.5 and weight decay 0.0153 per 1024 examples, the BatchNorm
--         biases at 64 times the learning rate; the whitening bias trains in the first 3 epochs only
--   schedule: triangular per step (0.2 -> 1 over the first 23 % of the steps, then down to 0.07)
--   Lookahead weight averaging every 5 steps (L.callbacks.Lookahead)
--   test-time augmentation in test and predict (tta = 2: mirror, and one-pixel translations up-left
--         and down-right with reflection; 0 or 1 for less)
-- recipe.Model is AirNet with these hyper-parameters and hooks (its state dict is AirNet's):
--   local recipe = require("lightning.recipes").get("airbench94")
--   local model = recipe.Model{}        -- or {widths = {32, 64, 64}, tta = 0, lookahead_every = 0, ...}
--   trainer:fit(model, L.data.ImageDataModule{dataset = "cifar10", batch_size = 1024, val_split = 1,
--     augmentation = "flip_translate", drop_last = true})
-- examples/train.lua --recipe airbench94 reads the rest: the data set, the command line's defaults and
-- recipe.model(args, dm, image_size).
local L = require "lightning"
local class = require "lightning.class"
local nn = require "lightning.nn"
local options = require "lightning.util.options"
local optim = require "lightning.optim"
local T = require "lightning.data.transforms"
local DataLoader = require "lightning.data.loader"
local AirNet = require "lightning.models.airnet"
local Lookahead = require "lightning.callbacks.lookahead"

local F = T.functional
local BatchNorm = nn.BatchNorm2d.super

local recipe = {
  name = "airbench94",
  dataset = "cifar10", dataset_title = "CIFAR-10",   -- (train.lua's --cifar10)
  -- train.lua's --help
  help = "airbench94 (L.models.AirNet, Keller Jordan's airbench: --batch_size 1024, --max_epochs 9.9 (a fraction "
    .. "of an epoch allowed), every training image trains (no validation), flip + translate augmentation, Nesterov "
    .. "SGD with its schedule and weight averaging, the test set with test-time augmentation at the end)",
  -- train.lua's options when the command line leaves them out
  defaults = {batch_size = 1024, max_epochs = 9.9, num_workers = 2, learning_rate = 11.5, weight_decay = 0.0153,
    momentum = 0.85, label_smoothing = 0.2, experiment_name = "airbench94", save_top_k = 0, val_split = 1,
    augmentation = "flip_translate"},
  drop_last = true,   -- (every batch of the schedule is a full one)
}

local Model = class("Airbench94", AirNet)
recipe.Model = Model

-- the recipe's hyper-parameters beside the network's
local HPARAMS = {
  -- the optimiser, in airbench's decoupled form (per 1024 examples, for the summed loss)
  optimizer = "sgd", learning_rate = 11.5, weight_decay = 0.0153, momentum = 0.85, bias_lr_scale = 64,
  label_smoothing = 0.2,
  -- the triangular schedule: lr_start -> 1 over the first `warmup` of the steps, then down to lr_end
  warmup = 0.23, lr_start = 0.2, lr_end = 0.07,
  -- the whitening layer: from the first whiten_images training images (0: leave it to init_whitening)
  whiten_images = 5000, whiten_bias_epochs = 3,
  -- Lookahead every lookahead_every steps (0: none) with decay lookahead_decay * (step/total)^lookahead_power
  lookahead_every = 5, lookahead_decay = 0.95 ^ 5, lookahead_power = 3,
  tta = 2,   -- test-time augmentation in test and predict: 0 none, 1 mirror, 2 mirror and translations
  batch_size = 0,   -- the batch size the weight decay scales with (0: the training loader's)
}
Model.defaults = {}
for k, v in pairs(AirNet.defaults) do Model.defaults[k] = v end
for k, v in pairs(HPARAMS) do Model.defaults[k] = v end

local CHECKS = {
  bias_lr_scale = {kind = "number", above = 0},
  warmup = {kind = "number", min = 0, below = 1}, lr_start = {kind = "number", min = 0}, lr_end = {kind = "number", min = 0},
  whiten_images = {kind = "integer", min = 0}, whiten_bias_epochs = {kind = "integer", min = 0},
  lookahead_every = {kind = "integer", min = 0}, lookahead_decay = {kind = "number", min = 0, max = 1},
  lookahead_power = {kind = "number", min = 0},
  tta = {kind = "integer", min = 0, max = 2}, batch_size = {kind = "integer", min = 0},
  momentum = {kind = "number", min = 0, below = 1},
}

function Model:__init(opts)
  local hp = AirNet.__init(self, opts)
  for _, name in ipairs(options.sorted_keys(CHECKS)) do options.check_value("AirNet", "", name, CHECKS[name], hp[name]) end
  self._tta = {flip = L.empty(0), shift = L.empty(0), logits = L.empty(0)}
end

Model.load_from_checkpoint = require("lightning.models.from_checkpoint").bind(Model)

--- The model train.lua trains, from its options (args), the data module and the image size.
function recipe.model(args, dm, size)
  return Model{num_classes = dm.num_classes, in_channels = dm.in_channels, image_size = size,
    learning_rate = args.learning_rate, weight_decay = args.weight_decay, momentum = args.momentum,
    label_smoothing = args.label_smoothing, batch_size = args.batch_size}
end

-- ---- data: the whitening layer at the setup of fit, the whitening bias in the first epochs ----

-- The first whiten_images training images of the Trainer's data module, normalised, not augmented.
function Model:_data_for_whitening()
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

function Model:setup(stage)
  AirNet.setup(self, stage)
  if stage == "fit" and not self.whitened and self.hparams.whiten_images > 0 then
    self:init_whitening(self:_data_for_whitening())
  end
end

function Model:on_train_epoch_start()
  AirNet.on_train_epoch_start(self)
  self.whiten.bias.requires_grad = self.trainer.current_epoch < self.hparams.whiten_bias_epochs
end

-- ---- the optimiser, its schedule and Lookahead ----

--- The schedule's factor at a step (0-based) of a run of `total` steps: lr_start -> 1 over the first
-- floor(total * warmup) steps, then linearly toward lr_end (reached after the last step), as
-- bench/airbench_torch.py's lr_factor.
function recipe.lr_factor(step, total, hp)
  local warm = math.floor(total * hp.warmup)
  if step < warm then return hp.lr_start + (1 - hp.lr_start) * step / warm end
  return 1 + (hp.lr_end - 1) * (step - warm) / math.max(total - warm, 1)
end

function Model:configure_optimizers()
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
  local sched = optim.lr_scheduler.LambdaLR(opt, {lr_lambda = function(step) return recipe.lr_factor(step, total, hp) end})
  return {optimizer = opt, lr_scheduler = {scheduler = sched, interval = "step"}}
end

function Model:configure_callbacks()
  local hp = self.hparams
  if hp.lookahead_every == 0 then return nil end
  return {Lookahead{every_n_steps = hp.lookahead_every, decay = hp.lookahead_decay, decay_power = hp.lookahead_power}}
end

-- ---- test-time augmentation ----

--- The logits of x with test-time augmentation at `level` (default hparams.tta), airbench's weights:
-- 1: the mean of x and its mirror image; 2: 1/2 of that, plus 1/4 each of the same for x shifted one
-- pixel down-right and up-left (reflection at the border). The result is reused at the next call.
function Model:tta_logits(x, level)
  level = level or self.hparams.tta
  if level == 0 then return self:forward(x) end
  local buf = self._tta
  if buf.logits:device() ~= x:device() then
    -- the scratch follows the input (Module:to moves the module's own tensors, not this table's)
    for name, t in pairs(buf) do buf[name] = t:to(x:device()) end
  end
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

--- test_step and predict_step (AirNet's) take the augmented logits.
function Model:test_logits(x) return self:tta_logits(x) end

function Model:extra_repr()
  return AirNet.extra_repr(self) .. (", tta=%d"):format(self.hparams.tta)
end

return recipe
