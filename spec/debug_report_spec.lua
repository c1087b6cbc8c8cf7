-- The original's debugging output as it counts: dead neurons per unit of the batch, the gradient-flow
-- report's treatment of biases before a BatchNorm, and the model summary's output sizes.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local diagnostics = require "lightning.nn.diagnostics"
local nn = L.nn

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
    assert.matches("Gradient flow: [^\n]*conv%d%.bias", text)
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
