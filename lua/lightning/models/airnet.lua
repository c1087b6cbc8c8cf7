--- AirNet: the network of airbench94 (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU",
-- arXiv 2404.00498), as bench/airbench_torch.py's AirNet, as a LightningModule of the model zoo. Its
-- training recipe (data, optimiser, schedule, Lookahead, test-time augmentation) is
-- lightning.recipes.airbench94, which trains a subclass of it.
--   whiten: conv 2x2, 3 -> 24, its weight fixed to whiten the data's 2x2 patches (init_whitening:
--           nn.init.whitening_ of training images); GELU
--   block1..3: conv 3x3 (no bias, the first in_channels filters the identity) -> MaxPool2d(2) ->
--           BatchNorm (weight frozen at 1, eps 1e-12, momentum 0.4) + GELU -> conv 3x3 -> BatchNorm + GELU,
--           widths 64, 256, 256 (each BatchNorm + GELU one nn.BatchNormAct2d: one kernel in bf16 runs)
--   MaxPool2d(3) -> Flatten -> Linear(256, 10, no bias) -> x 1/9
-- Parameter and buffer names are those of bench/airbench_torch.py's AirNet (whiten.weight,
-- block1.conv1.weight, block1.norm1.bias, ..., fc.weight), so weights move both ways.
-- Its steps train the summed (label-smoothed) cross-entropy and log it per example; test and predict
-- take their logits from test_logits (the forward pass here; the recipe's test-time augmentation).
-- Without the recipe it trains with ImageClassifier's optimizers and schedulers.
--   local net = L.models.AirNet{}           -- or {widths = {32, 64, 64}, num_classes = 100, ...}
--   net:init_whitening(images)              -- before training, unless weights are loaded
--   local recipe = require("lightning.recipes").get("airbench94")   -- the whole recipe
local class = require "lightning.class"
local nn = require "lightning.nn"
local util = require "lightning.nn.util"
local options = require "lightning.util.options"
local ImageClassifier = require "lightning.models.image_classifier"

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
  whiten_eps = 5e-4,   -- init_whitening's eps
}

local CHECKS = {
  widths = {test = function(v) return type(v) == "table" and #v == 3 end, expected = "three widths"},
  bn_eps = {kind = "number", min = 0}, bn_momentum = {kind = "number", min = 0, max = 1},
  logit_scale = {kind = "number", finite = true}, whiten_eps = {kind = "number", min = 0},
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
  return hp   -- the checked options, for a subclass's own (the recipe's)
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

--- Weights loaded from elsewhere include the whitening layer's: a recipe does not compute it again.
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

--- The logits that test and predict use: the forward pass (a recipe's subclass may augment them).
function AirNet:test_logits(x)
  return self:forward(x)
end

function AirNet:test_step(batch, batch_idx)
  local logits = self:test_logits(batch.input)
  local loss, n = self:_measure("test", logits, batch)
  self:log("test_loss", loss / n, {batch_size = n})
end

--- {predictions, probabilities, logits} as ImageClassifier's, from test_logits.
function AirNet:predict_step(batch, batch_idx)
  local logits = self:test_logits(batch.input)
  self._softmax = self._softmax or nn.Softmax(2)   -- (called as a module: it follows the logits' device)
  return {predictions = logits:argmax(2), probabilities = self._softmax(logits):clone(), logits = logits:clone()}
end

function AirNet:extra_repr()
  local w = self.hparams.widths
  return ("widths={%d, %d, %d}, num_classes=%d"):format(w[1], w[2], w[3], self.hparams.num_classes)
end

return AirNet
