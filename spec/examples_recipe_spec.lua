-- examples/train.lua --recipe airbench94 as a user runs it (a smoke run on full-size CIFAR-10 files of
-- repeated records): the recipe's defaults and its step count, no validation, every epoch's time, the
-- test with test-time augmentation, the checkpoint under the PyTorch AirNet's names, and its errors.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"
local X = require "script_helpers"

describe("train.lua --recipe airbench94", function()
  local dir
  setup(function()
    dir = H.tmpdir()
    -- train.lua reads CIFAR-10's own file sizes (10,000 records each): 100 records repeated
    local folder = dir .. "/data/cifar-10-batches-bin"
    os.execute(("mkdir -p %q"):format(folder))
    local file = D.cifar_batch(100, 0):rep(100)
    for b = 1, 5 do H.write_file(folder .. "/data_batch_" .. b .. ".bin", file) end
    H.write_file(folder .. "/test_batch.bin", file)
    H.write_file(folder .. "/batches.meta.txt", table.concat(D.CLASSES, "\n") .. "\n\n")
  end)
  teardown(function() H.rmdir(dir) end)

  it("trains AirNet on every training image for a fraction of epochs, then tests with TTA", function()
    local code, text = X.run("train.lua", "--cifar10 --data_root data --no_download --recipe airbench94 --batch_size 16 "
      .. "--max_epochs 1.5 --limit_train_batches 3 --limit_test_batches 2 --num_workers 1 --quiet --no_progress_bar "
      .. "--output_dir out", {cwd = dir})
    assert.equal(0, code, text)
    -- 3 batches per epoch x 1.5 epochs = 5 steps; all 50,000 images train
    assert.matches("airbench94: 5 steps %(3 per epoch x 1%.5 epochs%) of batch 16 on all 50000 training images; "
      .. "no validation", text)
    assert.matches("epoch 0: [%d.]+ s, [%d.]+ s since the start, step 3, train_loss [%d.]+, train_acc [%d.]+", text)
    assert.matches("epoch 1: [%d.]+ s, [%d.]+ s since the start, step 5,", text)
    assert.matches("Training: 5 steps in [%d.]+ s; test with test%-time augmentation %(tta=2%): [%d.]+ s; total [%d.]+ s", text)
    assert.matches("Final test accuracy with TTA: [01]%.%d%d%d%d", text)
    assert.matches("test_acc", text)
    local csv = H.read_file(dir .. "/out/airbench94/version_0/metrics.csv")
    assert.matches("train_loss_epoch", csv)
    assert.is_nil(csv:find("val_", 1, true))   -- nothing validated
    -- the recipe's defaults, and the configuration it ran with
    assert.matches("augmentation%s+flip_translate", text)
    assert.matches("val_split%s+1", text)
    assert.matches("weight_decay%s+0%.0153", text)
    local tensors, meta = L.load_safetensors(dir .. "/out/airbench94/version_0/checkpoints/last.safetensors")
    assert.is_not_nil(tensors["whiten.weight"])
    assert.is_not_nil(tensors["block3.norm2.bias"])
    assert.is_not_nil(tensors["fc.weight"])
    assert.is_not_nil(tensors["callbacks.Lookahead.average.fc.weight"])
    assert.equal(5, tonumber(meta.global_step))
    assert.matches('"recipe":"airbench94"', meta.hparams)
    assert.matches('"batch_size":16', meta.hparams)
    -- the run's plots
    assert.is_not_nil(io.open(dir .. "/out/airbench94/version_0/plots/metrics.png"))
  end)

  it("with nothing left to train, --resume last makes no version and tests nothing", function()
    local common = "--cifar10 --data_root data --no_download --recipe airbench94 --batch_size 16 --max_epochs 1 " ..
      "--limit_train_batches 1 --limit_test_batches 1 --num_workers 1 --quiet --no_progress_bar --output_dir out_resume"
    local code, text = X.run("train.lua", common, {cwd = dir})
    assert.equal(0, code, text)
    code, text = X.run("train.lua", common .. " --resume last", {cwd = dir})
    assert.equal(0, code, text)
    assert.matches("nothing left to train: out_resume/airbench94/version_0/checkpoints/last%.safetensors", text)
    assert.is_nil(text:find("Final test accuracy", 1, true), text)
    assert.equal("version_0", table.concat(L.core.io.listdir(dir .. "/out_resume/airbench94"), " "))
  end)

  it("refuses --limit_train_batches 0 by its name, not Lookahead's", function()
    local code, text = X.run("train.lua", "--cifar10 --data_root data --no_download --recipe airbench94 --batch_size 16 "
      .. "--limit_train_batches 0 --num_workers 1 --quiet --output_dir out_zero", {cwd = dir})
    assert.equal(1, code)
    assert.matches("Training failed: %-%-limit_train_batches 0 leaves the recipe no training batch per epoch %(of 50000 " ..
      "images at batch 16%): give it at least 1", text)
    assert.is_nil(text:find("Lookahead", 1, true), text)
  end)

  it("needs CIFAR-10 and a positive number of epochs", function()
    local code, text = X.run("train.lua", "--fashion_mnist --recipe airbench94", {cwd = dir})
    assert.equal(1, code)
    assert.matches("Training failed: %-%-recipe airbench94 trains on CIFAR%-10: add %-%-cifar10", text)
    code, text = X.run("train.lua", "--cifar10 --data_root data --recipe airbench94 --max_epochs 0", {cwd = dir})
    assert.equal(1, code)
    assert.matches("%-%-max_epochs must be positive, got 0", text)
    code, text = X.run("train.lua", "--cifar10 --recipe airbench95", {cwd = dir})
    assert.equal(1, code)
    assert.matches("argument for option '%-%-recipe' must be one of 'airbench94'", text)
  end)
end)
