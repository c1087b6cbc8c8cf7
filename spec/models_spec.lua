-- BasicImageClassifier: PyTorch's names, the seed model's logits, a whole training step's gradients
-- against PyTorch, its debug output and its options.
local L = require "lightning"
local H = require "helpers"

local SEED = "spec/fixtures/io/seed_model_weights.safetensors"

local function seeded_model(opts)
  local model = L.models.BasicImageClassifier(opts or {})
  model:load_state_dict((L.load_safetensors(SEED)))
  return model
end

describe("BasicImageClassifier", function()
  it("has exactly the parameter and buffer names of the PyTorch model", function()
    local tensors = L.load_safetensors(SEED)
    local expected = {}
    for name in pairs(tensors) do expected[#expected + 1] = name end
    table.sort(expected)
    local keys = L.models.BasicImageClassifier{}:state_dict_keys()
    assert.equal("conv1.weight", keys[1])
    assert.equal("fc3.bias", keys[#keys])
    table.sort(keys)
    assert.same(expected, keys)
  end)

  it("reproduces the seed model's logits in eval mode within 1e-4", function()
    local model = seeded_model()
    model:eval()
    local io = L.load_safetensors("spec/fixtures/io/seed_model_io.safetensors")
    H.assert_close(model:forward(io.input), io.logits, 1e-4, "logits")
  end)

  it("computes a training step's loss, BatchNorm statistics and every gradient as PyTorch does", function()
    local model = seeded_model{dropout_rate = 0}
    model:train()
    local f = L.load_safetensors("spec/fixtures/nn/model_train_step.safetensors")
    local crit = L.nn.CrossEntropyLoss{label_smoothing = 0.1}
    model:zero_grad()
    local logits = model:forward(f.input)
    H.assert_close(logits, f.logits, 1e-4, "logits")
    H.assert_close(crit:forward(logits, f.target), f.loss[1], 1e-5, "loss")
    model:backward(f.input, crit:backward(logits, f.target))
    for name, p in model:named_parameters() do
      H.assert_close(p.grad, f["grad." .. name], 1e-4, "gradient of " .. name)
    end
    for name, b in model:named_buffers() do
      H.assert_close(b, f["after." .. name], 1e-4, name)
    end
  end)

  it("prints the original's FORWARD PASS DEBUG block through a replaceable output", function()
    local model = seeded_model()
    model:eval()
    local lines = {}
    local x = L.randn(2, 3, 32, 32)
    model:forward(x, {debug = true, output = function(line) lines[#lines + 1] = line end})
    local text = table.concat(lines, "\n")
    assert.matches("FORWARD PASS DEBUG", text)
    assert.matches("Input shape: %[2, 3, 32, 32%]", text)
    assert.matches("Input stats %- min: %-?%d+%.%d+, max: %-?%d+%.%d+, mean: %-?%d+%.%d+", text)
    assert.matches("After Conv1: %[2, 32, 32, 32%]\n  Stats %- min: ", text)
    assert.matches("After BN1%+ReLU %- mean: %d+%.%d+, std: %d+%.%d+\n  Dead neurons: %d+ / 32768", text)   -- units: 32 x 32 x 32
    assert.matches("After Pool4: %[2, 256, 2, 2%]", text)
    assert.matches("After Flatten: %[2, 1024%]", text)
    assert.matches("After FC1: %[2, 512%]", text)
    assert.matches("After BN_FC2%+ReLU", text)
    assert.matches("Final logits: %[2, 10%]", text)
    assert.matches("Predictions %(1%-based classes%): %[%d+, %d+%]", text)
    -- the debug pass (separate layers) computes the logits of a quiet one (fused layers), up to rounding
    local quiet = model:forward(x):clone()
    H.assert_close(model:forward(x, {debug = true, output = function() end}), quiet, 1e-5)
  end)

  it("reports gradient flow per parameter and flags vanishing and exploding gradients", function()
    local model = seeded_model()
    model:train()
    local x = L.randn(4, 3, 32, 32)
    local crit = L.nn.CrossEntropyLoss()
    local logits = model:forward(x)
    crit:forward(logits, L.tensor{1, 2, 3, 4})
    model:zero_grad()
    model:backward(x, crit:backward(logits, L.tensor{1, 2, 3, 4}))
    model.fc3.weight.grad:mul(1e6)
    model.bn1.weight.grad:zero()
    model.conv1.bias.grad:zero()   -- a bias before a BatchNorm: zero by construction, not flagged
    local lines = {}
    local rows, flagged = L.nn.print_gradient_flow(model, function(l) lines[#lines + 1] = l end)
    assert.equal(#model:parameters(), #rows)
    local by_name, count = {}, 0
    for _, r in ipairs(rows) do
      by_name[r.name] = r
      if r.status ~= "ok" and r.status ~= "before batchnorm" then count = count + 1 end
    end
    assert.equal(count, flagged)
    assert.equal("exploding", by_name["fc3.weight"].status)
    assert.equal("vanishing", by_name["bn1.weight"].status)
    assert.equal("before batchnorm", by_name["conv1.bias"].status)
    assert.matches("conv1%.bias .* ~0 by construction %(%*%)", table.concat(lines, "\n"))
    assert.matches("%(%*%) the biases of layers that a BatchNorm follows have a zero gradient by construction", lines[#lines])
    assert.equal("ok", by_name["conv2.weight"].status)
    H.assert_close(by_name["conv2.weight"].grad_norm, model.conv2.weight.grad:norm(), 1e-6)
    assert.matches("fc3.weight.*EXPLODING", table.concat(lines, "\n"))
    assert.matches(flagged .. " of %d+ parameters flagged", lines[#lines - 1])
  end)

  it("is configurable and checks its options", function()
    local m = L.models.BasicImageClassifier{num_classes = 3, in_channels = 1, image_size = 48, dropout_rate = 0.2}
    assert.equal("32x1x3x3", tostring(m.conv1.weight:size()))
    assert.equal("512x2304", tostring(m.fc1.weight:size()))
    assert.equal("5x3", tostring(m:forward(L.randn(5, 1, 48, 48)):size()))
    assert.equal(0.2, m.dropout.p)
    assert.matches("image_size must be a multiple of 16", H.error_of(L.models.BasicImageClassifier, {image_size = 30}))
    assert.matches("num_classes must be", H.error_of(L.models.BasicImageClassifier, {num_classes = 0}))
    assert.matches("dropout_rate must be a number in %[0, 1%), got 1", H.error_of(L.models.BasicImageClassifier, {dropout_rate = 1}))
    assert.matches("expected N x 3 x 32 x 32 images, got 2x3x28x28",
      H.error_of(function() L.models.BasicImageClassifier{}:forward(L.randn(2, 3, 28, 28)) end))
  end)
end)
