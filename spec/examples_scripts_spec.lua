-- The example scripts, run as a user runs them (child lua5.4 processes): test_setup.lua,
-- train.lua on a small folder of PNG images (options, outputs, resume, errors) and custom_callback.lua.
local H = require "helpers"

local X = require "script_helpers"

-- Runs an example script with the specs' module paths; returns the exit status and the output.
local function run(script, args, cwd) return X.run(script, args, {cwd = cwd}) end
local image_folder = X.image_folder

describe("examples/test_setup.lua", function()
  it("passes every check on synthetic data", function()
    local code, text = run("test_setup.lua")
    assert.equal(0, code, text)
    local passes = select(2, text:gsub("\nPASS ", ""))
    assert.equal(5, passes, text)
    assert.matches("All 5 checks passed", text)
    assert.matches("PASS  4%. A few steps on one batch lower the loss", text)
  end)

  it("fails with a non-zero status when the data is missing", function()
    local code, text = run("test_setup.lua", "--cifar10 --data_root /nonexistent")
    assert.equal(1, code)
    assert.matches("FAIL  2%. Data module setup and one batch .*no CIFAR%-10 files in /nonexistent", text)
    assert.matches("checks failed", text)
  end)
end)

describe("examples/train.lua", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("has every option of the original train.py", function()
    local code, text = run("train.lua", "--help")
    assert.equal(0, code)
    for _, option in ipairs {"--cifar10", "--use_cifar10", "--fashion_mnist", "--data_dir", "--data_root", "--image_size",
      "--batch_size", "--max_epochs", "--learning_rate", "--weight_decay", "--optimizer", "--momentum", "--scheduler",
      "--dropout_rate", "--val_split", "--num_workers", "--early_stopping_patience", "--min_delta", "--monitor",
      "--save_top_k", "--gradient_clip_val", "--accumulate_grad_batches", "--precision", "--seed", "--output_dir",
      "--experiment_name", "--resume", "--test", "--debug", "--fast_dev_run", "--limit_train_batches", "--num_threads",
      "--no_progress_bar", "--limit_val_batches", "--limit_test_batches", "--val_check_interval",
      "--check_val_every_n_epoch", "--no_download", "--quiet", "--accelerator", "--devices", "--cuda_graph"} do
      assert.is_truthy(text:find(option .. "[%s,]"), option)
    end
    assert.matches("{adam,adamw,sgd}", text)
    assert.matches("{none,step,cosine,plateau,onecycle}", text)
  end)

  it("trains on a folder of images, writes checkpoints and logs, tests, and resumes", function()
    image_folder(dir .. "/images", 10)
    local common = ("--data_dir %s/images --image_size 16 --batch_size 6 --num_workers 0 --output_dir %s/out " ..
      "--save_top_k 2 --no_progress_bar --learning_rate 0.003"):format(dir, dir)
    local code, text = run("train.lua", common .. " --max_epochs 3 --test", dir)
    assert.equal(0, code, text)
    assert.matches("DEVICE", text)
    assert.matches("\nGPU available: [yn][eo]s? %(", text)   -- (yes or no, and why: docs/gpu.md)
    assert.matches("BLAS: .*core", text)
    assert.matches("Total params", text)               -- the model summary
    assert.matches("Epoch 2: %d+/%d+ batches", text)  -- a summary line per epoch
    assert.matches("Best checkpoint: " .. dir:gsub("%p", "%%%0") .. "/out/image_classifier/version_0/checkpoints/epoch=%d%-val_loss=%d+%.%d+%.safetensors", text)
    assert.matches("test_acc", text)
    local listing = io.popen(("find %q -type f | sort"):format(dir .. "/out")):read("a")
    assert.equal(2, select(2, listing:gsub("image_classifier/version_0/checkpoints/epoch=%d%-val_loss=[%d.]+%.safetensors", "")),
      listing)
    assert.matches("image_classifier/version_0/checkpoints/last%.safetensors", listing)
    assert.matches("image_classifier/version_0/events%.out%.tfevents%.", listing)
    assert.matches("image_classifier/version_0/metrics%.csv", listing)
    local csv = H.read_file(dir .. "/out/image_classifier/version_0/metrics.csv")
    assert.matches("^step,epoch,", csv)
    for _, column in ipairs {"val_loss", "val_acc", "val_f1", "train_acc", "lr%-Adam"} do assert.matches(column, csv) end
    -- resume: two more epochs after the three done
    code, text = run("train.lua", common .. " --max_epochs 5 --resume last", dir)
    assert.equal(0, code, text)
    assert.matches("Training finished after 5 epochs", text)
    assert.is_nil(text:find("Epoch 0:", 1, true))
    assert.matches("Epoch 3:", text)
  end)

  it("runs a quick check with --fast_dev_run and prints the debugging output with --debug", function()
    image_folder(dir .. "/images", 4)
    local code, text = run("train.lua", ("--data_dir %s/images --image_size 16 --batch_size 4 --num_workers 0 " ..
      "--output_dir %s/out --fast_dev_run --debug --no_progress_bar"):format(dir, dir), dir)
    assert.equal(0, code, text)
    assert.matches("INITIALIZING MODEL", text)
    assert.matches("TRAINING STEP %- Batch 1", text)
    assert.matches("Training finished after 1 epoch %(1 step%)", text)
  end)

  it("fails with a clear message and a non-zero status", function()
    local code, text = run("train.lua", "", dir)
    assert.equal(1, code)
    assert.matches("Training failed: choose the data: %-%-cifar10, %-%-fashion_mnist or %-%-data_dir <folder>", text)
    image_folder(dir .. "/images", 2)
    code, text = run("train.lua", ("--data_dir %s/images --image_size 16 --precision 16 --output_dir %s/out")
      :format(dir, dir), dir)
    assert.equal(1, code)
    assert.matches("Error: %-%-precision 16: fp16 is not supported on a CPU %(.-%): use %-%-precision bf16%-mixed", text)
    code, text = run("train.lua", ("--data_dir %s/images --image_size 20"):format(dir), dir)
    assert.equal(1, code)
    assert.matches("%-%-image_size must be a multiple of 16", text)
    code, text = run("train.lua", "--cifar10 --optimizer rmsprop", dir)
    assert.is_true(code ~= 0)
    assert.matches("argument for option '%-%-optimizer' must be one of 'adam', 'adamw', 'sgd'", text)
  end)
end)

describe("examples/custom_callback.lua", function()
  it("trains with per-class accuracy and saves the hardest images", function()
    local dir = H.tmpdir()
    local code, text = run("custom_callback.lua", ("--max_epochs 1 --output_dir %s/out"):format(dir), dir)
    local pngs = io.popen(("find %q -name '*.png' | wc -l"):format(dir)):read("n")
    H.rmdir(dir)
    assert.equal(0, code, text)
    assert.matches("Per%-class validation accuracy after epoch 0:", text)
    assert.matches("  red +%d+%.%d%d%%", text)
    if text:find("Hardest validation images", 1, true) then assert.is_true(pngs > 0) end
  end)
end)
