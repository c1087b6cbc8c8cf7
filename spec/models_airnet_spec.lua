-- L.models.AirNet (the network) and the airbench94 recipe that trains it (lightning.recipes.airbench94)
-- against bench/airbench_torch.py (fixtures by tools/make_airnet_fixtures.py): the state-dict names,
-- one training step's logits, loss and gradients, ten steps of the whole recipe through the Trainer
-- (parameter groups, Nesterov SGD, the triangular schedule, Lookahead, the whitening bias frozen after 3
-- epochs) and the eval logits with and without test-time augmentation; bf16 keeps the activations
-- channels-last bf16 through the network; the whitening layer from a data module; the hyper-parameters'
-- checks. The recipe's model (recipe.Model) is AirNet with the recipe's hooks.
local L = require "lightning"
local H = require "helpers"
local B = require "bf16_helpers"
local D = require "data_helpers"
local nn = L.nn
local output = require "lightning.util.output"
local recipe = require("lightning.recipes").get("airbench94")

local needs_bf16 = B.needs_bf16(it, pending)
local FIX, META = L.load_safetensors("spec/fixtures/nn/airnet_train_steps.safetensors")
local BATCH, TOTAL = tonumber(META.batch), tonumber(META.total_steps)

-- The fixture's small AirNet (widths 8, 16, 16) with PyTorch's initial weights, with the recipe's hooks.
local function small_airnet(extra)
  local opts = {widths = {8, 16, 16}, batch_size = BATCH, whiten_bias_epochs = tonumber(META.whiten_bias_epochs)}
  for k, v in pairs(extra or {}) do opts[k] = v end
  local model = recipe.Model(opts)
  local init = {}
  for name, t in pairs(FIX) do
    local key = name:match("^init%.(.*)$")
    if key then init[key] = t end
  end
  model:load_state_dict(init)
  return model
end

local function sorted(t) table.sort(t) return t end

describe("L.models.AirNet", function()
  it("has the PyTorch AirNet's parameter and buffer names, frozen where it freezes them", function()
    local model = L.models.AirNet{}
    local keys, want = model:state_dict_keys(), {}
    for name in pairs(FIX) do
      local key = name:match("^init%.(.*)$")
      if key then want[#want + 1] = key end
    end
    assert.same(sorted(want), sorted(model:state_dict_keys()))
    assert.equal("whiten.weight", keys[1])
    assert.is_false(model.whiten.weight.requires_grad)
    assert.is_false(model.block2.norm1.weight.requires_grad)
    assert.is_true(model.block2.norm1.bias.requires_grad)   -- (a parameter trains unless frozen)
    assert.is_nil(model.fc.bias)
    assert.equal(1972792, model:num_parameters())   -- airbench94's network
    -- the 3x3 convolutions start as the identity on their first in_channels filters
    assert.equal(1, model.block2.conv1.weight[5][5][2][2])
    assert.equal(0, model.block2.conv1.weight[5][6][2][2])
  end)

  it("one training step: logits, summed label-smoothed loss and every gradient as PyTorch's", function()
    local model = small_airnet()
    model:train()
    model:zero_grad()
    local x, y = FIX.input, FIX.target
    local logits = model:forward(x)
    H.assert_close(logits, FIX["step1.logits"], 1e-4, "logits")
    local loss = model.criterion:forward(logits, y)
    assert.near(FIX["step1.loss"][1], loss, 1e-4 * math.abs(loss))
    model:backward(x, model.criterion:backward(logits, y))
    for name, p in model:named_parameters() do
      local want = FIX["step1.grad." .. name]
      if want then
        H.assert_close(p.grad, want:view(p:size()), 2e-4, name)
      else
        assert.is_false(p.requires_grad, name .. " has no PyTorch gradient: it must be frozen")
        H.assert_close(p.grad, L.zeros(p:size()), 0, name .. " (frozen)")
      end
    end
  end)

  it("ten steps of the recipe through the Trainer end where PyTorch's end, and so do the TTA logits", function()
    local model = small_airnet()
    local lrs = {}
    local probe = L.Callback()
    function probe:on_before_optimizer_step(trainer, module, optimizer) lrs[#lrs + 1] = optimizer.param_groups[2].lr end
    local S = require "trainer_standins"
    local batch = {input = FIX.input, target = FIX.target}
    local trainer = L.Trainer{max_steps = TOTAL, logger = false, enable_checkpointing = false,
      enable_progress_bar = false, enable_model_summary = false, callbacks = {probe}, default_root_dir = H.tmpdir()}
    output.capture(trainer.fit, trainer, model, S.Loader({batch, batch}))   -- 2 steps per "epoch", as the fixture's
    assert.equal(TOTAL, trainer.global_step)
    H.assert_close(L.tensor(lrs), FIX.lrs, 1e-6, "learning rates")
    for name, t in pairs(model:state_dict()) do
      H.assert_close(t, FIX["final." .. name]:view(t:size()), 2e-3, name)
    end
    assert.is_false(model.whiten.bias.requires_grad)   -- frozen after 3 epochs
    model:eval()
    H.assert_close(model:forward(FIX.input), FIX["eval.logits"], 2e-3, "eval logits")
    H.assert_close(model:tta_logits(FIX.input), FIX["eval.tta_logits"], 2e-3, "TTA logits")
    -- test and predict use the augmented logits; the metrics come from them
    local test = output.capture(function() return trainer:test(model, S.Loader({batch}), {verbose = false}) end)
    local preds = trainer:predict(model, S.Loader({batch}))
    H.assert_close(preds[1].logits, FIX["eval.tta_logits"], 2e-3, "predict logits")
    assert.same(FIX["eval.tta_logits"]:argmax(2):totable(), preds[1].predictions:totable())
    assert.is_not_nil(test)
  end)

  it("the recipe's steps give the same bits through autograd as by the Torch7 path", function()
    local S = require "trainer_standins"
    local batch = {input = FIX.input, target = FIX.target}
    local function run(legacy)
      local model = small_airnet()
      if legacy then   -- training_step as before autograd: a number, backpropagated by backward_step
        model.training_step = function(self, b)
          local logits = self:forward(b.input)
          return {loss = self.criterion:forward(logits, b.target), output = logits, target = b.target, input = b.input}
        end
      end
      local trainer = L.Trainer{max_steps = 4, logger = false, enable_checkpointing = false, enable_progress_bar = false,
        enable_model_summary = false, default_root_dir = H.tmpdir()}
      output.capture(trainer.fit, trainer, model, S.Loader({batch, batch}))
      return model
    end
    local auto, legacy = run(false), run(true)
    for name, t in pairs(auto:state_dict()) do H.assert_close(t, legacy:state_dict()[name], 0, name) end
  end)

  it("tta levels: 0 the plain logits, 1 the mean with the mirror image", function()
    local model = small_airnet()
    model:eval()
    local x = FIX.input
    local plain = model:forward(x):clone()
    H.assert_close(model:tta_logits(x, 0), plain, 0)
    local mirror = model:forward(L.data.transforms.functional.hflip(x)):clone()
    H.assert_close(model:tta_logits(x, 1), (plain + mirror) * 0.5, 1e-6)
  end)

  needs_bf16("bf16: every convolution through oneDNN, bf16 channels-last activations between them, a step close to float32's", function()
    local model = small_airnet()
    model:train()
    model:set_precision("bf16")
    model:zero_grad()
    local x, y = FIX.input, FIX.target
    local logits = model:forward(x)
    B.assert_close(logits, FIX["step1.logits"], "logits", 0.05)
    local loss = model.criterion:forward(logits, y)
    assert(math.abs(loss - FIX["step1.loss"][1]) < 0.02 * loss, ("loss %.5g, PyTorch's %.5g"):format(loss, FIX["step1.loss"][1]))
    for _, m in ipairs(model:modules()) do
      local name = tostring(m)
      if name:match("^Conv2d") then
        assert.equal("dnnl", m._kernel:info().implementation)
        assert.equal("bfloat16", m.output:scalar_type())
      elseif name:match("^BatchNormAct2d") then
        assert.is_true(m._fused)
        assert.equal("bfloat16", m.output:scalar_type())
        assert.equal(1, m.output:stride(2))   -- channels-last
      elseif name:match("^MaxPool2d") or name:match("^GELU") then
        assert.equal("bfloat16", m.output:scalar_type())
        assert.equal(1, m.output:stride(2))
      end
    end
    model:backward(x, model.criterion:backward(logits, y))
    for name, p in model:named_parameters() do
      local want = FIX["step1.grad." .. name]
      if want and p:dim() == 4 then
        local a, b = p.grad:view(-1), want:view(-1)
        local cos = (a * b):sum() / math.sqrt((a * a):sum() * (b * b):sum())
        assert(cos > 0.95, ("%s: cosine %.3f between bf16 and PyTorch's float32 gradient"):format(name, cos))
      end
    end
    model:set_precision("fp32")
  end)

  it("computes its whitening layer from the data module's first training images, unaugmented", function()
    local dir = D.make_cifar(H.tmpdir() .. "/cifar", 20)
    local dm = L.data.ImageDataModule{dataset = "cifar10", data_root = dir, records_per_file = 20, batch_size = 16,
      val_split = 1, augmentation = "flip_translate", drop_last = true, num_workers = 0}
    dm:setup("fit")
    assert.equal(100, #dm.train_set)
    assert.is_nil(dm.val_dataloader(dm))
    L.manual_seed(3)
    local model = recipe.Model{widths = {8, 16, 16}, whiten_images = 40, lookahead_every = 0}
    local trainer = L.Trainer{max_steps = 2, logger = false, enable_checkpointing = false, enable_progress_bar = false,
      enable_model_summary = false, default_root_dir = H.tmpdir()}
    output.capture(trainer.fit, trainer, model, dm)
    assert.is_true(model.whitened)
    -- the same filters as nn.init.whitening_ of the first 40 images, normalised
    local T = L.data.transforms
    local norm = T.Normalize(dm.mean, dm.std)
    local images = L.empty(40, 3, 32, 32)
    local raw = L.data.CIFAR10{root = dir, records_per_file = 20}
    for i = 1, 40 do images[i]:copy(norm(raw[i].input)) end
    local want = nn.init.whitening_(L.empty(24, 3, 2, 2), images)
    H.assert_close(model.whiten.weight, want, 1e-5)
    assert.equal(2, trainer.global_step)
    H.rmdir(dir:match("^(.*)/cifar$"))
  end)

  it("asks for training images when fit has no data module", function()
    local model = recipe.Model{widths = {8, 16, 16}, batch_size = 8}
    local S = require "trainer_standins"
    local trainer = L.Trainer{max_steps = 1, logger = false, enable_checkpointing = false, enable_progress_bar = false,
      enable_model_summary = false, default_root_dir = H.tmpdir()}
    local msg = H.error_of(output.capture, trainer.fit, trainer, model, S.Loader({{input = FIX.input, target = FIX.target}}))
    assert.matches("the whitening layer needs training images", msg)
  end)

  it("follows bench/airbench_torch.py's schedule and checks its options", function()
    local hp = recipe.Model{}.hparams
    -- 476 steps (ceil(48 * 9.9)): warm-up over int(476 * 0.23) = 109 steps
    assert.near(0.2, recipe.lr_factor(0, 476, hp), 1e-15)
    assert.near(0.2 + 0.8 * 50 / 109, recipe.lr_factor(50, 476, hp), 1e-15)
    assert.near(1, recipe.lr_factor(109, 476, hp), 1e-15)
    assert.near(1 - 0.93 * 366 / 367, recipe.lr_factor(475, 476, hp), 1e-12)
    assert.matches("AirNet: widths must be three widths", H.error_of(L.models.AirNet, {widths = {64, 256}}))
    assert.matches("AirNet: tta must be an integer in %[0, 2%], got 3", H.error_of(recipe.Model, {tta = 3}))
    assert.matches("AirNet: warmup must be", H.error_of(recipe.Model, {warmup = 1}))
    assert.matches("AirNet: image_size must be at least 30, got 24", H.error_of(L.models.AirNet, {image_size = 24}))
    assert.matches("unknown option 'widht'", H.error_of(L.models.AirNet, {widht = {1, 2, 3}}))
    -- the recipe's options are not the network's
    assert.matches("unknown option 'tta'", H.error_of(L.models.AirNet, {tta = 2}))
  end)

  it("is a network without the recipe: ImageClassifier's optimizer, no callbacks, plain logits in test", function()
    local net = L.models.AirNet{widths = {8, 16, 16}}
    assert.is_nil(net.hparams.tta)
    assert.equal("adam", net.hparams.optimizer)
    assert.is_nil(net.configure_callbacks)
    assert.is_false(net.whitened)
    net:eval()
    H.assert_close(net:test_logits(FIX.input), net:forward(FIX.input):clone(), 0)
    -- the recipe's model is an AirNet with the same state dict
    local model = recipe.Model{widths = {8, 16, 16}}
    assert.is_true(L.class.is_instance(model, L.models.AirNet))
    assert.same(sorted(net:state_dict_keys()), sorted(model:state_dict_keys()))
    assert.matches("tta=2", model:extra_repr())
  end)
end)
