-- What examples/train.lua prints and records, as a user sees it: the original's running report by
-- default and none with --quiet, the data block once, one numbering of epochs (console, checkpoint
-- names, plots), the options users of the original reach for (negative numbers after a space,
-- --limit_val_batches, --val_check_interval, ...), the whole run configuration in hparams.yaml and
-- TensorBoard's HPARAMS, --test on a folder without a test split, and errors without internal paths.
local L = require "lightning"
local H = require "helpers"
local checkpoint = require "lightning.trainer.checkpoint"
local tfevents = require "lightning.loggers.tfevents"

local X = require "script_helpers"

local ROOT = X.ROOT
local function train(dir, args, pty) return X.run("train.lua", args, {cwd = dir, pty = pty}) end
local function run_script(dir, script) return X.run(script, "", {cwd = dir}) end
local image_folder = X.image_folder

local function count(text, plain)
  local n, from = 0, 1
  while true do
    local i = text:find(plain, from, true)
    if not i then return n end
    n, from = n + 1, i + #plain
  end
end

local function listing(dir)
  local p = io.popen(("ls %q 2>/dev/null"):format(dir))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  return names
end

describe("examples/train.lua as a user runs it", function()
  local dir, common
  setup(function()
    dir = H.tmpdir()
    image_folder(dir .. "/images", 6)   -- 18 images: 14 train, 4 validation
  end)
  teardown(function() H.rmdir(dir) end)
  local out
  before_each(function()
    out = dir .. "/out" .. math.random(1, 1e9)
    common = ("--data_dir %s/images --image_size 16 --batch_size 4 --num_workers 0 --output_dir %s --no_progress_bar")
      :format(dir, out)
  end)

  it("prints the original's report without flags: model block, data block once, first batch of each epoch", function()
    local code, text = train(dir, common .. " --max_epochs 2 --test")
    assert.equal(0, code, text)
    assert.equal(1, count(text, "INITIALIZING MODEL"))
    assert.matches("Conv1: 3 %-> 32 channels, kernel=3x3", text)
    assert.equal(1, count(text, "DATA MODULE SETUP (stage: fit)"))   -- once, though both the script and fit set it up
    assert.matches("Train samples: 14", text)
    for epoch = 0, 1 do
      assert.equal(1, count(text, ("STARTING TRAINING EPOCH %d\n"):format(epoch)), text)
      assert.equal(1, count(text, ("TRAINING EPOCH %d SUMMARY"):format(epoch)))
      assert.equal(1, count(text, ("VALIDATION EPOCH %d SUMMARY"):format(epoch)))
      assert.matches(("\nEpoch %d: %%d+/%%d+ batches"):format(epoch), text)
    end
    assert.equal(2, count(text, "TRAINING STEP - Batch 1\n"))     -- the first batch of each epoch
    assert.equal(0, count(text, "TRAINING STEP - Batch 2"))
    assert.matches("FORWARD PASS DEBUG\n=+\nInput shape: %[4, 3, 16, 16%]", text)
    assert.matches("Dead neurons: %d+ / 8192\n", text)           -- 32 channels x 16 x 16 after conv1
    assert.matches("Predictions %(first 10%)", text)
    -- the data block is whole (the model summary comes after it), and its first validation batch is the
    -- one VALIDATION STEP reports, in the same brackets
    local block = text:match("DATA MODULE SETUP %(stage: fit%)\n=+\n(.-)\n=+\n")
    assert.is_nil(block:find("Total params", 1, true), block)
    assert.is_true(text:find("Total params", 1, true) > text:find("INITIALIZING MODEL", 1, true))
    local peeked = block:match("First validation batch:[^\n]*\n[^\n]*\n  label distribution: (%[[%d, ]+%])")
    assert.is_not_nil(peeked, block)
    assert.equal(peeked, text:match("VALIDATION STEP %- Batch 1\n=+\n[^=]-Label distribution: (%[[%d, ]+%])"))
    -- the summary lists the layers as the forward pass runs them
    assert.matches("| bn1 [^\n]*\n%d+%s+| relu_pool1 [^\n]*\n%d+%s+| conv2 ", text)
    -- --test says which checkpoint it tests; its summary has no learning rate
    local best = text:match("\nBest checkpoint: (%S+)")
    assert.matches("\nTesting the best checkpoint: " .. best:gsub("%p", "%%%0") .. "\n", text)
    assert.is_nil(text:match("TEST SUMMARY\n=+\n(.-)=+"):find("Learning rate", 1, true))
    assert.matches("Training finished after 2 epochs %(8 steps%)", text)
    -- one numbering of epochs: the console's Epoch 0 and 1, the checkpoints' epoch=0 and 1, the plots'
    local names = table.concat(listing(out .. "/image_classifier/version_0/checkpoints"), " ")
    assert.matches("epoch=0%-val_loss=", names)
    assert.matches("epoch=1%-val_loss=", names)
    assert.is_nil(names:find("epoch=2", 1, true))
    local ckpt = checkpoint.read(out .. "/image_classifier/version_0/checkpoints/last.safetensors")
    local history
    for _, state in pairs(ckpt.callbacks) do if type(state) == "table" and state.history then history = state.history end end
    assert.same({0, 1}, history.epoch)
  end)

  it("--quiet leaves the report out", function()
    local code, text = train(dir, common .. " --max_epochs 1 --quiet")
    assert.equal(0, code, text)
    for _, absent in ipairs {"INITIALIZING MODEL", "DATA MODULE SETUP", "STARTING TRAINING EPOCH", "FORWARD PASS DEBUG",
      "TRAINING STEP", "SUMMARY"} do
      assert.is_nil(text:find(absent, 1, true), absent)
    end
    assert.matches("DEVICE", text)
    assert.matches("Total params", text)
    assert.matches("\nEpoch 0: ", text)
    assert.matches("Training finished after 1 epoch %(4 steps%)", text)   -- (not "1 epochs")
  end)

  it("--debug prints the gradient-flow table for the first batch of each epoch", function()
    local code, text = train(dir, common .. " --max_epochs 2 --limit_train_batches 2 --limit_val_batches 1 --debug")
    assert.equal(0, code, text)
    for epoch = 0, 1 do
      local report = text:match(("GRADIENT FLOW %%- Epoch %d, Batch 1\n=+\n(.-)\n=+\n"):format(epoch))
      assert.is_not_nil(report, text)
      assert.matches("^parameter%s+shape%s+grad norm%s+mean |grad|%s+max |grad|", report)
      assert.matches("\nconv1%.weight%s+32x3x3x3 ", report)
      assert.matches("\nfc3%.bias%s+3 ", report)
      assert.matches("%d+ of 26 parameters flagged", report)
    end
    assert.equal(2, count(text, "GRADIENT FLOW - Epoch"))
  end)

  it("reads negative numbers after a space, as documented values (--save_top_k -1)", function()
    local code, text = train(dir, common .. " --max_epochs 3 --quiet --save_top_k -1 --min_delta -0.5")
    assert.equal(0, code, text)
    local names = listing(out .. "/image_classifier/version_0/checkpoints")
    assert.equal(4, #names, table.concat(names, " "))   -- every epoch's checkpoint, and last
    assert.matches("min_delta%s+%-0%.5", text)
    code, text = train(dir, common .. " --max_epochs 1 --save_top_k -2")
    assert.equal(1, code)
    assert.matches("Training failed: %-%-save_top_k must be an integer >= %-1, got %-2", text)
  end)

  it("--limit_val_batches and --limit_test_batches limit the batches, as on a terminal's bars", function()
    local code, text = train(dir, common:gsub(" %-%-no_progress_bar", "") .. " --batch_size 2 --max_epochs 1 --quiet "
      .. "--limit_val_batches 1 --limit_test_batches 1 --test", true)
    assert.equal(0, code, text)
    assert.matches("Validation: 100%%|[^|\r\n]*| 1/1", text)
    assert.is_nil(text:find("| 2/2", 1, true))                 -- 4 validation images would be 2 batches
    assert.matches("Testing: 100%%|[^|\r\n]*| 1/1", text)
    assert.matches("has no test split %(a train/ folder beside test/ or val/%): testing on the validation split %(4 images%)",
      text)
  end)

  it("--val_check_interval validates inside the epoch; --check_val_every_n_epoch skips epochs", function()
    local code, text = train(dir, common .. " --max_epochs 1 --quiet --save_top_k -1 --monitor val_acc --val_check_interval 0.5")
    assert.equal(0, code, text)
    local names = listing(out .. "/image_classifier/version_0/checkpoints")   -- 4 batches: validated after 2 and 4, a checkpoint each
    assert.equal(3, #names, table.concat(names, " "))
    local out2 = out .. "-2"
    code, text = train(dir, (common .. " --max_epochs 2 --quiet --save_top_k -1 --check_val_every_n_epoch 2")
      :gsub("%-%-output_dir %S+", "--output_dir " .. out2))
    assert.equal(0, code, text)
    names = table.concat(listing(out2 .. "/image_classifier/version_0/checkpoints"), " ")
    assert.is_nil(names:find("epoch=0", 1, true), names)
    assert.matches("epoch=1%-", names)
  end)

  it("keeps the whole run configuration in hparams.yaml and TensorBoard's HPARAMS", function()
    local code, text = train(dir, common .. " --max_epochs 1 --quiet --optimizer sgd --scheduler cosine --seed 7 " ..
      "--augmentation flip_rotate_jitter --batch_size 3")
    assert.equal(0, code, text)
    local log_dir = out .. "/image_classifier/version_0"
    local yaml = H.read_file(log_dir .. "/hparams.yaml")
    for _, line in ipairs {"dataset: folder", "batch_size: 3", "max_epochs: 1", "optimizer: sgd", "scheduler: cosine",
      "seed: 7", "augmentation: flip_rotate_jitter", 'precision: "32"', "image_size: 16", "num_classes: 3",
      "learning_rate: 0.001", "val_split: 0.8", "class_names:\n  - alpha\n  - beta\n  - gamma", "mean:\n  - 0.485",
      "nproc: 1", "global_batch_size: 3"} do
      assert.is_truthy(yaml:find("\n" .. line .. "\n", 1, true) or yaml:find("^" .. line:gsub("%p", "%%%0") .. "\n"), line)
    end
    assert.is_nil(yaml:find("debug", 1, true), yaml)   -- what is printed is not the run's configuration
    local event_file
    for _, name in ipairs(listing(log_dir)) do if name:match("^events%.out%.tfevents") then event_file = log_dir .. "/" .. name end end
    local keys = {}
    for _, e in ipairs(tfevents.read(event_file)) do
      local v = e.summary and e.summary.value[1]
      if v and v.tag == "_hparams_/session_start_info" then
        local ssi = tfevents.decode(tfevents.schemas.HParamsPluginData, v.metadata.plugin_data.content).session_start_info
        for _, h in ipairs(ssi.hparams) do keys[h.key] = h.value.string_value or h.value.number_value end
      end
    end
    assert.equal("folder", keys.dataset)
    assert.equal(3, keys.batch_size)
    assert.equal("sgd", keys.optimizer)
    assert.equal("cosine", keys.scheduler)
    assert.equal(7, keys.seed)
    assert.equal("flip_rotate_jitter", keys.augmentation)
    assert.equal("32", keys.precision)
    assert.equal("['alpha', 'beta', 'gamma']", keys.class_names)
  end)

  it("diverges loudly: one line saying which value, where, no NaN best checkpoint, a non-zero exit", function()
    local code, text = train(dir, common .. " --max_epochs 3 --quiet --optimizer sgd --learning_rate 1e6")
    assert.equal(1, code, text)
    assert.equal(1, count(text, "\nTraining diverged: "), text)
    assert.matches("\nTraining diverged: the training loss is NaN at epoch 0, global step %d+ %(batch %d+%); training " ..
      "stops\n", text)
    assert.matches("\nTraining failed: training diverged: the training loss is NaN at epoch 0, global step %d+", text)
    assert.is_nil(text:find("Best checkpoint", 1, true))
    local names = table.concat(listing(out .. "/image_classifier/version_0/checkpoints"), " ")
    assert.is_nil(names:find("nan", 1, true), names)
    assert.is_nil(names:find("inf", 1, true), names)
  end)

  it("--resume last continues the experiment named on the command line, in a new version, and says so", function()
    local function run(name, epochs, resume)
      return train(dir, common .. (" --quiet --experiment_name %s --max_epochs %d%s"):format(name, epochs,
        resume and " --resume last" or ""))
    end
    assert.equal(0, (run("small", 1)))
    assert.equal(0, (run("big", 3)))              -- another experiment with more steps: never taken
    local code, text = run("small", 2, true)
    assert.equal(0, code, text)
    assert.matches("\nRestored " .. out:gsub("%p", "%%%0") .. "/small/version_0/checkpoints/last%.safetensors: continuing " ..
      "at epoch 1 %(global step 4%)\n", text)
    assert.matches("Training finished after 2 epochs %(8 steps%)", text)
    assert.same({"version_0", "version_1"}, listing(out .. "/small"))
    assert.same({"version_0"}, listing(out .. "/big"))
    -- nothing left: said, nothing trained, no new version
    code, text = run("small", 2, true)
    assert.equal(0, code, text)
    assert.matches("nothing left to train: " .. out:gsub("%p", "%%%0") .. "/small/version_1/checkpoints/last%.safetensors " ..
      "ends at epoch 2 %(global step 8%) and max_epochs = 2 is reached", text)
    assert.is_nil(text:find("Training finished", 1, true))
    assert.same({"version_0", "version_1"}, listing(out .. "/small"))
  end)

  it("writes command-line errors without internal file positions, with them and a traceback under --debug", function()
    local code, text = train(dir, common .. " --dropout_rate 2")
    assert.equal(1, code)
    assert.matches("\nTraining failed: BasicImageClassifier: dropout_rate must be a number in %[0, 1%), got 2\n$", text)
    assert.is_nil(text:find("%.lua:%d+"), text)
    code, text = train(dir, ("--data_dir %s/nothing --output_dir %s"):format(dir, out))
    assert.equal(1, code)
    assert.matches("\nTraining failed: lightning%.data%.ImageFolder: cannot open folder " .. dir:gsub("%p", "%%%0")
      .. "/nothing", text)
    assert.is_nil(text:find("%.lua:%d+"), text)
    code, text = train(dir, common .. " --dropout_rate 2 --debug")
    assert.equal(1, code)
    assert.matches("Training failed: [^\n]*%.lua:%d+: BasicImageClassifier: dropout_rate", text)
    assert.matches("stack traceback:", text)
  end)
end)

describe("lightning.cli", function()
  local cli = require "lightning.cli"
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("joins negative numbers to the option before them, and nothing else", function()
    assert.same({"--save_top_k=-1", "--min_delta=-1e-3", "-h", "--x", "-y", "--lr=-.5", "--", "-1"},
      cli.join_negative_numbers({"--save_top_k", "-1", "--min_delta", "-1e-3", "-h", "--x", "-y", "--lr", "-.5", "--", "-1"}))
    assert.same({"--a=3", "-1"}, cli.join_negative_numbers({"--a=3", "-1"}))
    assert.same({"--name", "-abc"}, cli.join_negative_numbers({"--name", "-abc"}))
  end)

  it("writes the command again with an option set anew, and tells an interruption from a failure", function()
    local argv = {[-1] = "lua5.4", [0] = "examples/train.lua", "--cifar10", "--resume", "old.safetensors", "--data_root",
      "my data", "--resume=x", "--max_epochs", "3"}
    assert.equal("lua5.4 examples/train.lua --cifar10 --data_root 'my data' --max_epochs 3 --resume last",
      cli.command(argv, {resume = "last"}))
    assert.equal("lua5.4 examples/train.lua --cifar10 --resume old.safetensors --data_root 'my data' --resume=x " ..
      "--max_epochs 3", cli.command(argv))
    assert.is_true(cli.is_interruption("Trainer:fit interrupted by SIGINT (Ctrl-C) at epoch 1 (global step 5)\nThe last"))
    assert.is_true(cli.is_interruption("train.lua:12: interrupted!"))
    assert.is_false(cli.is_interruption("Trainer:fit failed in training_step: the data was interrupted"))
  end)

  it("leaves out the library's positions, keeps the user's", function()
    local lib = ROOT .. "/lua/lightning/data/datasets.lua"
    assert.same({"lightning.data.ImageFolder: cannot open folder /x", false},
      {cli.describe_error(lib .. ":130: lightning.data.ImageFolder: cannot open folder /x")})
    assert.same({"Trainer:fit failed in training_step: boom", false},
      {cli.describe_error("Trainer:fit failed in training_step: ...wt/lua/lightning/models/image_classifier.lua:12: boom")})
    local text, user = cli.describe_error("Trainer:fit failed in training_step: /home/me/my_model.lua:12: boom")
    assert.equal("Trainer:fit failed in training_step: /home/me/my_model.lua:12: boom", text)
    assert.is_true(user)
  end)

  -- A user's script: a LightningModule whose training_step fails, run through cli.main.
  local function user_script(body)
    local path = dir .. "/my_training.lua"
    H.write_file(path, ([[
local L = require "lightning"
local cli = require "lightning.cli"
local trainer
cli.main(function()
%s
end, {}, {title = "My run failed", traceback = function() return trainer and trainer.last_traceback end})
]]):format(body))
    return path
  end

  it("shows an error in the user's own code with its position and traceback", function()
    local path = user_script([[
  local Model = L.class("Broken", L.LightningModule)
  function Model:training_step(batch, i) local t = nil; return t.loss end
  function Model:configure_optimizers() return L.optim.SGD({L.zeros(1)}, {lr = 0.1}) end
  trainer = L.Trainer{max_epochs = 1, logger = false, enable_progress_bar = false, enable_model_summary = false,
    enable_checkpointing = false}
  trainer:fit(Model(), L.data.DataLoader({{input = L.zeros(2), target = 1}}, {batch_size = 1}))]])
    local code, text = run_script(dir, path)
    assert.equal(1, code)
    assert.matches("My run failed: Trainer:fit failed in training_step[^\n]*my_training%.lua:6: attempt to index a nil value", text)
    assert.matches("stack traceback:\n.*my_training%.lua:6: in ", text)
  end)

  it("shows a library error raised for the user's call without positions when none is the user's", function()
    local path = user_script([[  L.data.ImageFolder{root = "/nonexistent/folder"}]])
    local code, text = run_script(dir, path)
    assert.equal(1, code)
    assert.matches("My run failed: [^\n]*lightning%.data%.ImageFolder: cannot open folder /nonexistent/folder", text)
  end)
end)
