-- L.models.ImageClassifier: the training side of the original model.py, with the reference network
-- (BasicImageClassifier, its subclass) and with a network it holds.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local nn = L.nn
local output = require "lightning.util.output"

-- Class k: a bright band at rows 4k-3..4k of a 16x16 image.
local function images(n, seed, channels)
  return S.band_images(n, seed, {classes = 4, channels = channels or 3, size = 16, step = 4, band = 4, noise = 0.3})
end

local TRAIN, VAL = images(32, 1), images(16, 2)

local function loaders()
  return L.data.DataLoader(TRAIN, {batch_size = 16, shuffle = true}), L.data.DataLoader(VAL, {batch_size = 8})
end

local function basic(opts)
  local o = {num_classes = 4, in_channels = 3, image_size = 16}
  for k, v in pairs(opts or {}) do o[k] = v end
  return L.models.BasicImageClassifier(o)
end

describe("ImageClassifier", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("is the parent of BasicImageClassifier and a LightningModule", function()
    local model = basic()
    assert.is_true(L.class.is_instance(model, L.models.ImageClassifier))
    assert.is_true(L.class.is_instance(model, L.LightningModule))
    assert.equal(4, model.hparams.num_classes)
    assert.equal(1e-3, model.hparams.learning_rate)
    assert.equal("adam", model.hparams.optimizer)
  end)

  it("logs loss, accuracy, precision, recall and F1 for train, val and test, from its confusion matrices", function()
    L.manual_seed(3)
    local model = basic()
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 2, num_sanity_val_steps = 0}))
    local train_loader, val_loader = loaders()
    output.capture(trainer.fit, trainer, model, train_loader, val_loader)
    local m = trainer.callback_metrics
    for _, name in ipairs {"train_loss", "train_acc", "train_precision", "train_recall", "train_f1", "val_loss", "val_acc",
      "val_precision", "val_recall", "val_f1"} do
      assert.is_number(m[name], name)
    end
    -- the last validation's scores are those of the final weights: recompute them by hand
    model:eval()
    local correct, total, loss_sum = 0, 0, 0
    local confusion = require("lightning.metrics").ConfusionMatrix(4)
    for _, batch in val_loader:iter() do
      local logits = model:forward(batch.input)
      loss_sum = loss_sum + model.criterion:forward(logits, batch.target) * batch.target:size(1)
      confusion:update(logits, batch.target)
      local preds = logits:argmax(2):totable()
      for i, t in ipairs(batch.target:totable()) do
        if preds[i] == t then correct = correct + 1 end
        total = total + 1
      end
    end
    assert.near(correct / total, m.val_acc, 1e-12)
    assert.near(loss_sum / total, m.val_loss, 1e-5)
    assert.near(confusion:compute().f1, m.val_f1, 1e-12)
    local results = trainer:test(model, val_loader, {verbose = false})
    assert.near(correct / total, results[1].test_acc, 1e-12)
    for _, name in ipairs {"test_loss", "test_precision", "test_recall", "test_f1"} do assert.is_number(results[1][name]) end
  end)

  it("learns the synthetic problem", function()
    L.manual_seed(4)
    local model = basic({learning_rate = 3e-3})
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 4, num_sanity_val_steps = 0}))
    local train_loader, val_loader = loaders()
    output.capture(trainer.fit, trainer, model, train_loader, val_loader)
    assert.is_true(trainer.callback_metrics.train_acc > 0.5, "train_acc " .. trainer.callback_metrics.train_acc)
  end)

  it("prints the original's debugging output with debug = true", function()
    L.manual_seed(5)
    local model = basic({debug = true})
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, num_sanity_val_steps = 0}))
    local train_loader, val_loader = loaders()
    local text = output.capture(trainer.fit, trainer, model, train_loader, val_loader)
    local expected = {"INITIALIZING MODEL", "Number of classes: 4", "Input channels: 3", "Learning rate: 0.001",
      "Dropout rate: 0.5", "Conv1: 3 %-> 32 channels, kernel=3x3", "Conv4: 128 %-> 256 channels, kernel=3x3",
      "FC1: 256 %-> 512", "FC3: 256 %-> 4", "Metrics initialized for 4 classes",
      "STARTING TRAINING EPOCH 0", "TRAINING STEP %- Batch 1", "Batch shape: %[16, 3, 16, 16%]", "Labels shape: %[16%]",
      "Label distribution: %[%d+, %d+, %d+, %d+%]", "FORWARD PASS DEBUG", "Training loss: %d%.%d%d%d%d",
      "Predictions %(first 10%): %[", "Ground truth %(first 10%): %[", "Correct predictions: %d+ / 16",
      "TRAINING EPOCH 0 SUMMARY", "Accuracy: %d%.%d%d%d%d", "Precision %(macro%)", "F1 %(macro%)",
      "Learning rate: 0.001", "VALIDATION STEP %- Batch 1", "VALIDATION EPOCH 0 SUMMARY"}
    local position = 1
    for _, pattern in ipairs(expected) do
      local s, e = text:find(pattern, 1)
      assert.is_not_nil(s, "missing: " .. pattern)
      position = math.max(position, e)
    end
    assert.is_nil(text:find("TRAINING STEP %- Batch 2"))   -- only the first batch of an epoch
    -- the banners come in the original's order
    assert.is_true(text:find("INITIALIZING MODEL") < text:find("STARTING TRAINING EPOCH 0"))
    assert.is_true(text:find("STARTING TRAINING EPOCH 0") < text:find("TRAINING STEP %- Batch 1"))
  end)

  it("holds any network given as net", function()
    local net = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 4))
    L.manual_seed(6)
    local model = L.models.ImageClassifier{net = net, num_classes = 4, in_channels = 1, image_size = 16}
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1}))
    local train = L.data.DataLoader(images(16, 7, 1), {batch_size = 8})
    output.capture(trainer.fit, trainer, model, train)
    assert.is_number(trainer.callback_metrics.train_acc)
    local predictions = trainer:predict(model, train)
    assert.equal(2, #predictions)
    local p = predictions[1].predictions:totable()
    for _, c in ipairs(p) do assert.is_true(c >= 1 and c <= 4) end
    assert.same({8, 4}, predictions[1].logits:size())
  end)

  it("configures Adam, AdamW or SGD with weight decay and momentum", function()
    local function optimizer(opts)
      local model = basic(opts)
      model.trainer = {max_epochs = 10, estimated_stepping_batches = 100}
      return model:configure_optimizers()
    end
    local adam = optimizer({learning_rate = 0.01, weight_decay = 1e-4})
    assert.equal("Adam", L.class.name_of(adam))
    assert.equal(0.01, adam.param_groups[1].lr)
    assert.equal(1e-4, adam.param_groups[1].weight_decay)
    assert.equal("AdamW", L.class.name_of(optimizer({optimizer = "adamw"})))
    local sgd = optimizer({optimizer = "sgd", momentum = 0.8})
    assert.equal("SGD", L.class.name_of(sgd))
    assert.equal(0.8, sgd.param_groups[1].momentum)
  end)

  it("configures the schedulers step, cosine, plateau and onecycle", function()
    local function config(opts)
      local model = basic(opts)
      model.trainer = {max_epochs = 10, estimated_stepping_batches = 100}
      return model:configure_optimizers()
    end
    local step = config({scheduler = "step", step_size = 3, gamma = 0.5})
    assert.equal("StepLR", L.class.name_of(step.lr_scheduler))
    local cosine = config({scheduler = "cosine"})
    assert.equal("CosineAnnealingLR", L.class.name_of(cosine.lr_scheduler))
    assert.equal(10, cosine.lr_scheduler.T_max)
    local plateau = config({scheduler = "plateau", monitor = "val_acc"})
    assert.equal("ReduceLROnPlateau", L.class.name_of(plateau.lr_scheduler.scheduler))
    assert.equal("val_acc", plateau.lr_scheduler.monitor)
    assert.equal("max", plateau.lr_scheduler.scheduler.mode)
    local onecycle = config({scheduler = "onecycle"})
    assert.equal("OneCycleLR", L.class.name_of(onecycle.lr_scheduler.scheduler))
    assert.equal("step", onecycle.lr_scheduler.interval)
    assert.equal(100, onecycle.lr_scheduler.scheduler.total_steps)
  end)

  it("trains with a plateau scheduler on val_loss", function()
    L.manual_seed(8)
    local model = basic({scheduler = "plateau", plateau_patience = 0, plateau_factor = 0.5, optimizer = "sgd",
      learning_rate = 1e-6})
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 3, num_sanity_val_steps = 0}))
    local train_loader, val_loader = loaders()
    output.capture(trainer.fit, trainer, model, train_loader, val_loader)
    assert.is_true(trainer.optimizers[1].param_groups[1].lr < 1e-6)
  end)

  local bad = {
    {{optimizer = "rmsprop"}, "ImageClassifier: optimizer must be \"adam\", \"adamw\" or \"sgd\", got \"rmsprop\""},
    {{scheduler = "linear"}, "scheduler must be \"none\", \"step\", \"cosine\", \"plateau\" or \"onecycle\", got \"linear\""},
    {{learning_rate = 0}, "learning_rate must be a number > 0, got 0"},
    {{weight_decay = -1}, "weight_decay must be a number >= 0, got %-1"},
    {{num_classes = 0}, "num_classes must be an integer >= 1, got 0"},
    {{debug = "yes"}, "debug must be a boolean, got \"yes\""},
    {{learning_rat = 1}, "ImageClassifier: unknown option 'learning_rat' %(did you mean 'learning_rate'%?%) %(known: .*learning_rate"},
    {{net = {}}, "net must be a network with forward and backward, got table"},
  }
  for _, case in ipairs(bad) do
    it("rejects " .. next(case[1]), function()
      assert.matches(case[2], H.error_of(L.models.ImageClassifier, case[1]))
    end)
  end

  it("without a network says how to give one", function()
    local model = L.models.ImageClassifier{}
    assert.matches("ImageClassifier:forward: no network: pass net = ... or define forward and backward in the subclass",
      H.error_of(model.forward, model, L.zeros(1, 3, 32, 32)))
  end)
end)
