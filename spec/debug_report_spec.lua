-- The original's debugging output as it counts: dead neurons per unit of the batch, the gradient-flow
-- report's treatment of biases before a BatchNorm, and the model summary's output sizes.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local diagnostics = require "lightning.nn.diagnostics"
local nn = L.nn
local checkpoint = require "lightning.trainer.checkpoint"

describe("diagnostics.dead_units", function()
  it("counts the units (channel, row, column) that are zero for every image, out of C x H x W", function()
    local x = L.rand(4, 2, 3, 3):add(0.1)   -- nothing dead
    assert.same({0, 18}, {diagnostics.dead_units(x)})
    x:select(2, 1):select(2, 2):select(2, 3):zero()   -- channel 1, row 2, column 3, in every image: dead
    x:select(2, 2):select(2, 1):zero()                -- channel 2, row 1 (3 columns): dead
    x[1][1][1][1] = 0                                 -- zero in one image only: alive
    assert.same({4, 18}, {diagnostics.dead_units(x)})
  end)

  it("counts features for N x F activations, and reads strided tensors (the convolutions' layout)", function()
    local x = L.rand(5, 6):add(0.1)
    x:select(2, 4):zero()
    assert.same({1, 6}, {diagnostics.dead_units(x)})
    local y = L.rand(4, 2, 3, 3):add(0.1)            -- stored channel-major, seen as N x C x H x W
    y:select(1, 3):zero()                             -- channel 3 of both images
    assert.same({9, 36}, {diagnostics.dead_units(y:transpose(1, 2))})
    assert.same({0, 0}, {diagnostics.dead_units(L.zeros(0, 3))})
  end)

  it("is what the forward pass report prints, as the original's 12345 / 1605632 after conv1", function()
    local model = L.models.BasicImageClassifier{num_classes = 3, image_size = 16}
    model:eval()
    local lines = {}
    model:forward(L.randn(3, 3, 16, 16), {debug = true, output = function(l) lines[#lines + 1] = l end})
    local text = table.concat(lines, "\n")
    assert.matches("After BN1%+ReLU[^\n]*\n  Dead neurons: %d+ / 8192\n", text)       -- 32 x 16 x 16
    assert.matches("After BN4%+ReLU[^\n]*\n  Dead neurons: %d+ / 1024\n", text)       -- 256 x 2 x 2
    assert.matches("After BN_FC1%+ReLU[^\n]*\n  Dead neurons: %d+ / 512\n", text)
    -- a count no larger than the units that are zero in the first image
    local n = tonumber(text:match("After BN_FC2%+ReLU[^\n]*\n  Dead neurons: (%d+) / 256"))
    assert.is_true(n <= 256)
  end)
end)

describe("gradient flow and BatchNorm", function()
  it("finds the biases of the layers a BatchNorm follows, in a Sequential and in the reference model", function()
    local net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2),
      nn.Linear(2, 2), nn.BatchNorm1d(2))
    local set = diagnostics.biases_before_batchnorm(net)
    local names = {}
    for name in pairs(set) do names[#names + 1] = name end
    table.sort(names)
    assert.same({"0.bias", "5.bias"}, names)   -- (a Sequential names its children 0, 1, ...)
    local model = L.models.BasicImageClassifier{num_classes = 3, image_size = 16}
    local m = diagnostics.biases_before_batchnorm(model)
    for _, name in ipairs {"conv1.bias", "conv2.bias", "conv3.bias", "conv4.bias", "fc1.bias", "fc2.bias"} do
      assert.is_true(m[name], name)
    end
    assert.is_nil(m["fc3.bias"])   -- dropout follows fc3, not a BatchNorm
  end)

  it("does not flag them in training, where their gradients are zero by construction, and says so once", function()
    L.manual_seed(3)
    local model = L.models.BasicImageClassifier{num_classes = 4, image_size = 16}
    local samples = S.band_images(16, 1, {classes = 4, channels = 3, size = 16, step = 4, band = 4, noise = 0.3})
    local monitor = L.callbacks.GradientFlowMonitor{every_n_steps = 1, log = false}
    local trainer = L.Trainer(S.quiet(H.tmpdir(), {max_steps = 3, callbacks = {monitor}, num_sanity_val_steps = 0}))
    local text = output.capture(trainer.fit, trainer, model, L.data.DataLoader(samples, {batch_size = 8}))
    local rows = monitor.history[1].rows
    local status = {}
    for _, r in ipairs(rows) do status[r.name] = r.status end
    for _, name in ipairs {"conv1.bias", "conv4.bias", "fc1.bias", "fc2.bias"} do
      assert.is_true(status[name] == "before batchnorm" or status[name] == "ok", name .. " " .. status[name])
    end
    assert.is_nil(text:find("vanishing gradients in conv", 1, true), text)
    local _, notes = text:gsub("zero gradient by construction", "")
    assert.equal(1, notes, text)   -- once, not at every step
    -- (the convolutions' bias gradients are a cancelling sum: near 0 in float32 rounding, below the
    -- threshold or just above it as the convolution's kernel sums; fc1's and fc2's are below it)
    assert.matches("Gradient flow: [^\n]*fc%d%.bias", text)
  end)
end)

describe("ModelSummary sizes", function()
  it("gives every layer of the reference model its real output size, BatchNorm and fused layers included", function()
    local model = L.models.BasicImageClassifier{num_classes = 5, image_size = 32}
    model:train()
    local text = L.callbacks.ModelSummary.summarize(model)
    for _, want in ipairs {
      {"bn1", "BatchNorm2d", "[1, 32, 32, 32]"}, {"bn4", "BatchNorm2d", "[1, 256, 4, 4]"},
      {"relu_pool1", "ReLUMaxPool2d", "[1, 32, 16, 16]"}, {"relu_pool4", "ReLUMaxPool2d", "[1, 256, 2, 2]"},
      {"bn_fc1", "BatchNorm1d", "[1, 512]"}, {"flatten", "Flatten", "[1, 1024]"}, {"fc3", "Linear", "[1, 5]"}} do
      assert.matches(want[1] .. "%s+| " .. want[2] .. "%s+|[^\n]*| " .. want[3]:gsub("%p", "%%%0"), text)
    end
    assert.is_nil(text:find("[0]", 1, true), text)
    assert.is_nil(text:find("| ?", 1, true), text)
    assert.is_true(model.training)                    -- left in the mode it was in
    assert.is_nil(rawget(model.bn1, "forward"))       -- and without the recording wrappers
  end)

  it("lists the layers in the order the forward pass runs them, unused ones last", function()
    local text = L.callbacks.ModelSummary.summarize(L.models.BasicImageClassifier{num_classes = 5, image_size = 16})
    local names = {}
    for name in text:gmatch("\n%d+%s+| (%S+)") do names[#names + 1] = name end
    assert.same({"conv1", "bn1", "relu_pool1", "conv2", "bn2", "relu_pool2", "conv3", "bn3", "relu_pool3", "conv4", "bn4",
      "relu_pool4", "flatten", "fc1", "bn_fc1", "relu_fc1", "dropout", "fc2", "bn_fc2", "relu_fc2", "dropout_fc2", "fc3"},
      names)
    local Model = L.class("Backwards", L.LightningModule)
    function Model:__init()
      L.LightningModule.__init(self)
      self:add_module("unused", nn.Linear(3, 4))
      self:add_module("head", nn.Linear(4, 2))
      self:add_module("body", nn.Sequential(nn.Linear(3, 4), nn.ReLU()))
      self.example_input_array = L.randn(2, 3)
    end
    function Model:forward(x) return self.head:forward(self.body:forward(x)) end
    text = L.callbacks.ModelSummary.summarize(Model(), 2)
    names = {}
    for name in text:gmatch("\n%d+%s+| (%S+)") do names[#names + 1] = name end
    assert.same({"body", "body.0", "body.1", "head", "unused"}, names)
  end)

  it("writes ? for a layer the forward pass did not use", function()
    local Model = L.class("TwoPaths", L.LightningModule)
    function Model:__init()
      L.LightningModule.__init(self)
      self:add_module("used", nn.Linear(3, 2))
      self:add_module("unused", nn.Linear(3, 4))
      self.example_input_array = L.randn(2, 3)
    end
    function Model:forward(x) return self.used:forward(x) end
    local text = L.callbacks.ModelSummary.summarize(Model())
    assert.matches("used%s+| Linear[^\n]*| %[2, 2%]", text)
    assert.matches("unused%s+| Linear[^\n]*| %?", text)
  end)
end)

describe("the original's debugging output for any network", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function images(n, seed)
    return S.band_images(n, seed, {classes = 3, channels = 3, size = 8, step = 2, band = 2, noise = 0.3})
  end
  local function user_net()
    return nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
  end
  local function fit(model, extra)
    local trainer = L.Trainer(S.quiet(dir, extra or {max_epochs = 1, num_sanity_val_steps = 0}))
    local train, val = L.data.DataLoader(images(16, 1), {batch_size = 8}), L.data.DataLoader(images(8, 2), {batch_size = 8})
    return output.capture(trainer.fit, trainer, model, train, val), trainer
  end

  it("reports every layer of a network given as net: shape, statistics, dead neurons after a ReLU", function()
    L.manual_seed(1)
    local text = fit(L.models.ImageClassifier{net = user_net(), num_classes = 3, image_size = 8, debug = true})
    local _, blocks = text:gsub("FORWARD PASS DEBUG", "")
    assert.equal(2, blocks, text)   -- the first training batch and the first validation batch
    local block = text:match("TRAINING STEP %- Batch 1.-FORWARD PASS DEBUG(.-)Training loss")
    assert.matches("Input shape: %[8, 3, 8, 8%]\nInput stats %- min: %-?%d", block)
    local order = {}
    for name in block:gmatch("After (%d [^:]+):") do order[#order + 1] = name end
    assert.same({"0 (Conv2d)", "1 (BatchNorm2d)", "2 (ReLU)", "3 (MaxPool2d)", "4 (Flatten)", "5 (Linear)"}, order)
    assert.matches("After 0 %(Conv2d%): %[8, 4, 8, 8%]\n  Stats %- min: %-?%d%.%d+, max: %d%.%d+, mean: %-?%d%.%d+, std: %d", block)
    assert.matches("After 2 %(ReLU%): %[8, 4, 8, 8%]\n  Stats %- min: 0%.0000[^\n]*\n  Dead neurons: %d+ / 256\n", block)
    assert.is_nil(block:find("Dead neurons: %d+ / 64\n"))   -- only after a ReLU
    assert.matches("Final logits: %[8, 3%]", block)
    assert.matches("Predictions %(1%-based classes%): %[%d, %d", block)
  end)

  it("reports the layers of a subclass whose forward knows nothing of debug", function()
    local Net = L.class("MyClassifier", L.models.ImageClassifier)
    function Net:__init(opts)
      L.models.ImageClassifier.__init(self, opts)
      self:add_module("features", nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1}), nn.ReLU()))
      self:add_module("head", nn.Linear(4 * 8 * 8, 3))
      self:add_module("flatten", nn.Flatten())
    end
    function Net:forward(x) return self.head:forward(self.flatten:forward(self.features:forward(x))) end
    function Net:backward(x, g)
      g = self.flatten:backward(self.features.output, self.head:backward(self.flatten.output, g))
      return self.features:backward(x, g)
    end
    L.manual_seed(2)
    local text = fit(Net{num_classes = 3, image_size = 8, debug = true})
    local block = text:match("TRAINING STEP %- Batch 1.-FORWARD PASS DEBUG(.-)Training loss")
    local order = {}
    for name in block:gmatch("After ([^:]+):") do order[#order + 1] = name end
    -- in the order they run, not the order they were registered
    assert.same({"features.0 (Conv2d)", "features.1 (ReLU)", "flatten (Flatten)", "head (Linear)"}, order)
  end)

  it("describes the network it holds in the INITIALIZING MODEL block: layers, parameter counts, dropout if any", function()
    local text = fit(L.models.ImageClassifier{net = user_net(), num_classes = 3, image_size = 8, debug = true})
    local block = text:match("INITIALIZING MODEL\n=+\n(.-)\n=+\n")
    assert.is_nil(block:find("Dropout", 1, true), block)   -- "Dropout rate: 0.5" for a net without dropout
    assert.is_nil(block:find("Conv1:", 1, true), block)     -- nor the built-in model's layers
    assert.matches("\n0: Conv2d%(3, 4, kernel_size=3, padding=1%), 112 parameters\n", block)
    assert.matches("\n1: BatchNorm2d%(4[^\n]*%), 8 parameters\n", block)
    assert.matches("\n2: ReLU%(%)\n", block)
    assert.matches("\n5: Linear%(64, 3%), 195 parameters\n", block)
    assert.matches("\nParameters: 315 %(315 trainable%)\n", block)
    local with_dropout = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(3 * 8 * 8, 3))
    text = fit(L.models.ImageClassifier{net = with_dropout, num_classes = 3, image_size = 8, debug = true})
    assert.matches("Dropout rate: 0.25\n", text)
    -- the built-in model keeps the original's lines, with its own dropout rate
    local model = L.models.BasicImageClassifier{num_classes = 3, image_size = 16, dropout_rate = 0.3, debug = true}
    text = output.capture(model.print_model_info, model)
    assert.matches("Dropout rate: 0.3\nConv1: 3 %-> 32 channels, kernel=3x3\n", text)
    assert.matches("FC3: 256 %-> 3\nParameters: 654,595 %(654,595 trainable%)\n", text)
  end)

  it("prints the gradient-flow table for the first batch of each epoch with report_each_epoch", function()
    L.manual_seed(3)
    local model = L.models.ImageClassifier{net = user_net(), num_classes = 3, image_size = 8}
    local monitor = L.callbacks.GradientFlowMonitor{report_each_epoch = true, log = false}
    local text = fit(model, {max_epochs = 2, num_sanity_val_steps = 0, callbacks = {monitor}})
    for epoch = 0, 1 do
      local table_text = text:match(("GRADIENT FLOW %%- Epoch %d, Batch 1\n=+\n(.-)\n=+\n"):format(epoch))
      assert.is_not_nil(table_text, text)
      assert.matches("^parameter%s+shape%s+grad norm%s+mean |grad|%s+max |grad|%s+weight norm", table_text)
      assert.matches("\nnet%.5%.weight%s+3x64%s+%d%.%d+e[-+]%d+ +%d%.%d+e[-+]%d+ +%d%.%d+e[-+]%d+", table_text)
      assert.matches("%d+ of 6 parameters flagged %(vanishing < 1e%-07, exploding > 1000%)", table_text)
    end
    local _, n = text:gsub("GRADIENT FLOW %- Epoch", "")
    assert.equal(2, n)   -- once per epoch (4 batches)
    -- the table's note on the bias before a BatchNorm is not said again on a line of its own
    assert.matches("net%.0%.bias[^\n]*~0 by construction %(%*%)", text)
    assert.is_nil(text:find("\nGradient flow: ", 1, true), text)
    local rows = diagnostics.gradient_flow(model)
    for _, r in ipairs(rows) do
      if r.grad_norm then assert.is_true(r.grad_max_abs <= r.grad_norm + 1e-12 and r.grad_max_abs >= r.grad_mean_abs) end
    end
  end)
end)

describe("quiet inference", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function samples(n) return S.band_images(n, 4, {classes = 4, channels = 3, size = 16, step = 4, band = 4, noise = 0.3}) end

  it("keeps debug out of the hyper-parameters: a model loaded from a checkpoint predicts without a word", function()
    L.manual_seed(4)
    local model = L.models.BasicImageClassifier{num_classes = 4, image_size = 16, debug = true}
    assert.is_true(model.debug)
    assert.is_nil(model.hparams.debug)   -- a display option: hparams.yaml and checkpoints do not say debug: true
    local trainer = L.Trainer(S.quiet(dir, {max_steps = 1, num_sanity_val_steps = 0, enable_checkpointing = true,
      callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", save_last = true}}}))
    local text = output.capture(trainer.fit, trainer, model, L.data.DataLoader(samples(8), {batch_size = 8}))
    assert.matches("INITIALIZING MODEL", text)
    assert.is_nil(checkpoint.read(dir .. "/ckpt/last.safetensors").hparams.debug)
    -- as a user predicts: the default Trainer (progress bar on), nothing printed but what the caller prints
    local loaded = L.models.BasicImageClassifier.load_from_checkpoint(dir .. "/ckpt/last.safetensors")
    assert.is_false(loaded.debug)
    local predictor = L.Trainer{logger = false, enable_checkpointing = false, default_root_dir = dir}
    local out, predictions = output.capture(predictor.predict, predictor, loaded, L.data.DataLoader(samples(4), {batch_size = 4}))
    assert.equal("", out)
    assert.same({4}, predictions[1].predictions:size())
    -- a model asked to debug (or from a checkpoint of an older version, whose hyper-parameters say
    -- debug = true) prints its training report when it trains, not when it predicts
    local asked = L.models.BasicImageClassifier.load_from_checkpoint(dir .. "/ckpt/last.safetensors", {debug = true})
    assert.is_true(asked.debug)
    out = output.capture(predictor.predict, predictor, asked, L.data.DataLoader(samples(4), {batch_size = 4}))
    assert.equal("", out)
  end)

  it("gives the TEST SUMMARY the test's scores without a learning rate", function()
    L.manual_seed(5)
    local model = L.models.BasicImageClassifier{num_classes = 4, image_size = 16, debug = true}
    local trainer = L.Trainer(S.quiet(dir, {max_steps = 1, num_sanity_val_steps = 0}))
    local loader = L.data.DataLoader(samples(8), {batch_size = 8})
    local text = output.capture(trainer.fit, trainer, model, loader, loader)
    assert.matches("VALIDATION EPOCH 0 SUMMARY\n=+\n[^=]*Learning rate: 0%.001\n", text)
    text = output.capture(trainer.test, trainer, model, loader, {verbose = false})
    local summary = text:match("TEST SUMMARY\n=+\n(.-)=+")
    assert.matches("Accuracy: %d%.%d+\n", summary)
    assert.is_nil(summary:find("Learning rate", 1, true), summary)
  end)
end)

describe("lightning.models.debug_report", function()
  local report = require "lightning.models.debug_report"

  it("prints the original's report for any model, not only ImageClassifier", function()
    L.manual_seed(0)
    local net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Dropout(0.25), nn.Linear(5, 3))
    local info = output.capture(report.print_model_info, net, {num_classes = 3, in_channels = 3, learning_rate = 0.01})
    assert.matches("INITIALIZING MODEL", info)
    assert.matches("Number of classes: 3\nInput channels: 3\nLearning rate: 0.01\nDropout rate: 0.25\n", info)
    assert.matches("1: Linear%(12, 5%), 65 parameters\n2: ReLU%(%)", info)
    assert.matches("Parameters: 83 %(83 trainable%)", info)
    local batch = {input = L.randn(4, 3, 2, 2), target = L.tensor({1, 3, 3, 2})}
    local head = output.capture(report.batch, "VALIDATION STEP", batch, 1, 3)
    assert.matches("VALIDATION STEP %- Batch 1", head)
    assert.matches("Batch shape: %[4, 3, 2, 2%]\nLabels shape: %[4%]\nLabel distribution: %[1, 1, 2%]", head)
    local metrics = L.metrics.EpochMetrics(3)
    local logits = L.tensor({{3, 0, 0}, {0, 0, 3}, {0, 3, 0}, {0, 3, 0}})
    metrics:update(logits, batch.target, 0.5)
    local result = output.capture(report.result, "Validation", logits, batch.target, 0.5, metrics)
    assert.matches("Validation loss: 0%.5000\nPredictions %(first 10%): %[1, 3, 2, 2%]\nGround truth %(first 10%): %[1, 3, 3, 2%]", result)
    assert.matches("Correct predictions: 3 / 4\nMetrics updated: running accuracy 0%.7500 over 4 samples", result)
    local summary = output.capture(report.summary, "TEST SUMMARY", {loss = 0.25, accuracy = 0.75, precision = 0.5,
      recall = 0.5, f1 = 0.5}, 0.001)
    assert.matches("TEST SUMMARY\n=+\nLoss: 0%.2500\nAccuracy: 0%.7500\nPrecision %(macro%): 0%.5000", summary)
    assert.matches("Learning rate: 0%.001\n", summary)
  end)
end)
