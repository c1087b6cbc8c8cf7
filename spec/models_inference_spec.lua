-- Inference from a training checkpoint: BasicImageClassifier.load_from_checkpoint (hyper-parameters,
-- class names and normalisation from the checkpoint), L.load_weights on a checkpoint, trainer:predict
-- with the built-in model, and examples/predict.lua on PNG files and folders.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"
local output = require "lightning.util.output"
local checkpoint = require "lightning.trainer.checkpoint"

local X = require "script_helpers"
local ROOT = X.ROOT
local PNG = ROOT .. "/spec/fixtures/data/png"
local PER_FILE = 8

local function predict(args, cwd) return X.run("predict.lua", args, {cwd = cwd}) end

-- Trains a BasicImageClassifier on a tiny CIFAR-10 folder for two steps with a ModelCheckpoint;
-- returns the model, its data module and the checkpoint's path.
local function train_tiny(dir)
  L.manual_seed(7)
  D.make_cifar(dir .. "/data/cifar-10-batches-bin", PER_FILE)
  local dm = L.data.ImageDataModule{dataset = "cifar10", data_root = dir .. "/data", batch_size = 16, num_workers = 0,
    records_per_file = PER_FILE, augment = false, val_split = 0.8}
  local model = L.models.BasicImageClassifier{num_classes = 10, image_size = 32, dropout_rate = 0.25}
  model:save_hyperparameters{batch_size = 16, dataset = "cifar10"}   -- as train.lua saves its run configuration
  local trainer = L.Trainer{max_steps = 2, default_root_dir = dir, logger = false, enable_progress_bar = false,
    enable_model_summary = false, num_sanity_val_steps = 0, callbacks = {
      L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", save_last = true}}}
  output.capture(trainer.fit, trainer, model, dm)
  return model, dm, dir .. "/ckpt/last.safetensors"
end

describe("inference from a checkpoint", function()
  local dir, model, dm, path
  setup(function()
    dir = H.tmpdir()
    model, dm, path = train_tiny(dir)
  end)
  teardown(function() H.rmdir(dir) end)

  it("the checkpoint holds the hyper-parameters, the class names and the normalisation", function()
    local hp = checkpoint.read(path).hparams
    assert.equal(10, hp.num_classes)
    assert.equal(3, hp.in_channels)
    assert.equal(32, hp.image_size)
    assert.equal(0.25, hp.dropout_rate)
    assert.same(D.CLASSES, hp.class_names)
    assert.same(dm.mean, hp.mean)
    assert.same(dm.std, hp.std)
    assert.equal(16, hp.batch_size)
  end)

  it("BasicImageClassifier.load_from_checkpoint builds the same network with its weights", function()
    local loaded = L.models.BasicImageClassifier.load_from_checkpoint(path)
    assert.is_true(L.class.is_instance(loaded, L.models.BasicImageClassifier))
    assert.equal(0.25, loaded.dropout_rate)
    assert.same(D.CLASSES, loaded.hparams.class_names)
    assert.equal("cifar10", loaded.hparams.dataset)          -- the run's configuration too
    assert.equal(2, loaded.checkpoint_info.global_step)
    local want = model:state_dict()
    for name, t in pairs(loaded:state_dict()) do H.assert_close(t, want[name], 0, name) end
    model:eval()
    loaded:eval()
    local x = L.randn(3, 3, 32, 32)
    H.assert_close(loaded:forward(x), model:forward(x):clone(), 0, "logits")
    -- overrides, and the colon form
    assert.equal(0, L.models.BasicImageClassifier.load_from_checkpoint(path, {dropout_rate = 0}).dropout_rate)
    assert.equal(0.25, L.models.BasicImageClassifier:load_from_checkpoint(path).dropout_rate)
  end)

  it("says clearly what is wrong with a file it cannot build a model from", function()
    local f = L.models.BasicImageClassifier.load_from_checkpoint
    assert.matches("BasicImageClassifier%.load_from_checkpoint: checkpoint /nonexistent%.safetensors not found",
      H.error_of(f, "/nonexistent.safetensors"))
    -- an older checkpoint, without hyper-parameters
    local old = checkpoint.read(path)
    old.hparams = {}
    checkpoint.write(old, dir .. "/old.safetensors")
    local msg = H.error_of(f, dir .. "/old.safetensors")
    assert.matches("old%.safetensors holds no hyperparameters num_classes, in_channels, image_size %(a checkpoint "
      .. "from an older version of lightning, or of another model%)", msg)
    assert.matches("L%.load_weights%(model, ", msg)
    -- weights alone
    L.save_weights(model, dir .. "/weights.safetensors")
    assert.matches("not a lightning checkpoint.*L%.models%.BasicImageClassifier{num_classes = %.%.%., %.%.%.}, then "
      .. "L%.load_weights%(model, path%)", H.error_of(f, dir .. "/weights.safetensors"))
    assert.matches("argument 1 must be the path of a checkpoint, got number", H.error_of(f, 3))
    assert.matches("argument 2 %(overrides%) must be a table", H.error_of(f, path, "x"))
  end)

  it("L.load_weights reads a training checkpoint's weights and leaves its other states out", function()
    local fresh = L.models.BasicImageClassifier{num_classes = 10, image_size = 32}
    local result = L.load_weights(fresh, path)   -- strict: no unexpected keys (optimizer, loops, ...)
    assert.same({}, result.unexpected_keys or {})
    assert.same({}, result.missing_keys or {})
    assert.equal(2, result.global_step)
    assert.same(D.CLASSES, result.hparams.class_names)
    local want = model:state_dict()
    for name, t in pairs(fresh:state_dict()) do H.assert_close(t, want[name], 0, name) end
  end)

  it("trainer:predict gives each batch's classes and probabilities", function()
    local loaded = L.models.BasicImageClassifier.load_from_checkpoint(path)
    local images = {}
    for i = 1, 5 do images[i] = {input = L.randn(3, 32, 32), target = 1} end
    local trainer = L.Trainer{logger = false, enable_progress_bar = false, enable_model_summary = false,
      enable_checkpointing = false}
    local batches = trainer:predict(loaded, L.data.DataLoader(images, {batch_size = 4}))
    assert.equal(2, #batches)
    local size = batches[1].probabilities:size()
    assert.same({4, 10}, {size[1], size[2]})
    for _, b in ipairs(batches) do
      local sums = b.probabilities:sum(2):totable()
      for _, s in ipairs(sums) do assert.is_true(math.abs(s - 1) < 1e-5) end
      assert.same(b.probabilities:argmax(2):totable(), b.predictions:totable())
      assert.same(b.logits:argmax(2):totable(), b.predictions:totable())
    end
    assert.is_false(loaded.training)   -- predict ran in eval mode
  end)

  describe("examples/predict.lua", function()
    it("prints the top classes of each image with their probabilities, under the checkpoint's class names", function()
      local code, text = predict(("--checkpoint %s %s/0_cat.png %s/1002_ship.png --top_k 2"):format(path, PNG, PNG))
      assert.equal(0, code, text)
      assert.matches("Checkpoint: " .. path:gsub("%p", "%%%0") .. " %(epoch %d+, step 2%): 10 classes, 3x32x32 images", text)
      local cat = text:match("0_cat%.png\n(.-)\n[^ ]")
      assert.is_truthy(cat, text)
      local lines = {}
      for name, percent in text:gmatch("\n  %d%. (%a+)%s+([%d.]+) %%") do lines[#lines + 1] = {name, tonumber(percent)} end
      assert.equal(4, #lines, text)   -- two images, two classes each
      for _, l in ipairs(lines) do
        assert.is_truthy(({airplane = 1, automobile = 1, bird = 1, cat = 1, deer = 1, dog = 1, frog = 1, horse = 1,
          ship = 1, truck = 1})[l[1]], l[1])
        assert.is_true(l[2] >= 0 and l[2] <= 100)
      end
      assert.is_true(lines[1][2] >= lines[2][2])   -- sorted, most probable first
      -- the same numbers as the model: the first image's top class
      local loaded = L.models.BasicImageClassifier.load_from_checkpoint(path)
      loaded:eval()
      local x = L.data.transforms.Normalize(dm.mean, dm.std)(L.data.read_png(PNG .. "/0_cat.png"))
      local probs = L.nn.Softmax(2):forward(loaded:forward(x:view(1, 3, 32, 32)))
      local _, top = probs:max(2)
      assert.equal(D.CLASSES[top[1]], lines[1][1])
      assert.is_true(math.abs(probs:max() * 100 - lines[1][2]) < 0.006)
    end)

    it("writes a CSV for a folder: path, predicted class, probability and the top k", function()
      local images = dir .. "/to_classify"
      os.execute(("mkdir -p %q/sub && cp %q/0_cat.png %q/1001_airplane.png %q && cp %q/1009_frog.png %q/sub"):format(images,
        PNG, PNG, images, PNG, images))
      local code, text = predict(("--checkpoint %s %s --top_k 3"):format(path, images), dir)
      assert.equal(0, code, text)
      assert.matches("Predicted classes of 3 images: ", text)
      assert.matches("Wrote 3 predictions to predictions%.csv", text)
      local csv = H.read_file(dir .. "/predictions.csv")
      local rows = {}
      for line in csv:gmatch("[^\n]+") do rows[#rows + 1] = line end
      assert.equal("path,predicted_class,probability,top2_class,top2_probability,top3_class,top3_probability", rows[1])
      assert.equal(4, #rows)
      assert.matches("^" .. images:gsub("%p", "%%%0") .. "/0_cat%.png,%a+,0%.%d+,%a+,0%.%d+,%a+,0%.%d+$", rows[2])
      assert.matches("^" .. images:gsub("%p", "%%%0") .. "/sub/1009_frog%.png,", rows[4])
      code, text = predict(("--checkpoint %s %s --output %s/out.csv"):format(path, images, dir), dir)
      assert.equal(0, code, text)
      assert.matches("Wrote 3 predictions to " .. dir:gsub("%p", "%%%0") .. "/out%.csv", text)
    end)

    it("runs where --accelerator says: on the GPU (the specs' stand-in) as on the CPU; gpu refused without one",
      function()
      local args = ("--checkpoint %s %s/0_cat.png %s/1002_ship.png --top_k 3"):format(path, PNG, PNG)
      local code, on_cpu = predict(args .. " --accelerator cpu")
      assert.equal(0, code, on_cpu)
      local F = require "fake_device"
      if F.built() then
        local on_gpu
        code, on_gpu = X.run("predict.lua", args .. " --accelerator gpu", {env = "LIGHTNING_CUDA_MODULE=" .. F.path ..
          " LIGHTNING_FP32_ONEDNN=0"})
        assert.equal(0, code, on_gpu)
        local _, on_cpu_im2col = X.run("predict.lua", args .. " --accelerator cpu", {env = "LIGHTNING_FP32_ONEDNN=0"})
        assert.equal(on_cpu_im2col, on_gpu)
      end
      if not L.cuda.is_available() then
        code, on_cpu = predict(args .. " --accelerator gpu")
        assert.equal(1, code)
        assert.matches("%-%-accelerator gpu: no CUDA device is available", on_cpu)
      end
    end)

    it("fails with a clear message and no internal positions", function()
      local code, text = predict(("--checkpoint %s/nothing.safetensors %s/0_cat.png"):format(dir, PNG))
      assert.equal(1, code)
      assert.matches("Prediction failed: BasicImageClassifier%.load_from_checkpoint: checkpoint .*nothing%.safetensors not found", text)
      code, text = predict(("--checkpoint %s %s/missing.png"):format(path, PNG))
      assert.equal(1, code)
      assert.matches("Prediction failed: .*missing%.png: no such file or folder", text)
      code, text = predict(("--checkpoint %s %s/pil_rgba.png --mean 0.5"):format(path, PNG))
      assert.equal(1, code)
      assert.matches("%-%-mean needs 3 number%(s%), one per channel", text)
      H.write_file(dir .. "/broken.png", "not a png")
      code, text = predict(("--checkpoint %s %s/broken.png"):format(path, dir))
      assert.equal(1, code)
      assert.matches("broken%.png", text)
      assert.is_nil(text:find("%.lua:%d+:"), text)
      code, text = predict(PNG .. "/0_cat.png")
      assert.is_true(code ~= 0)
      assert.matches("missing option '%-%-checkpoint'", text)
    end)
  end)
end)
