-- Faults: an error inside a step (on_exception hooks, a checkpoint of the last good state, the error
-- reported with where it happened, resuming from that checkpoint), a run killed with SIGKILL resumed
-- from its last checkpoint, and output folders that cannot be written.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local fs = require "lightning.util.fs"

local small_classifier = S.conv_classifier

local function image_data(n, seed)
  return S.band_images(n, seed, {classes = 3, channels = 1, size = 8, step = 2, band = 3, noise = 0.5})
end

local TRAIN, VAL = image_data(40, 200), image_data(16, 201)

-- Fits for max_epochs; fail_at = {epoch, batch} raises an error inside training_step there.
local function fit(dir, max_epochs, opts)
  opts = opts or {}
  L.manual_seed(99)
  local model = small_classifier()
  if opts.fail_at then
    local inner = model.training_step
    model.training_step = function(self, batch, i)
      if self.trainer.current_epoch == opts.fail_at[1] and i == opts.fail_at[2] then error("boom in the step") end
      return inner(self, batch, i)
    end
  end
  local trainer = L.Trainer(S.quiet(dir, {max_epochs = max_epochs, enable_checkpointing = true, logger = opts.logger,
    callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true}, opts.callback}}))
  local train_loader = L.data.DataLoader(TRAIN, {batch_size = 8, shuffle = true})
  local val_loader = L.data.DataLoader(VAL, {batch_size = 8})
  output.capture(trainer.fit, trainer, model, train_loader, val_loader, {ckpt_path = opts.ckpt_path})
  return model, trainer
end

describe("An error inside a step", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("runs on_exception, saves the last good state, finalizes loggers and reports where it happened", function()
    local seen
    local cb = {on_exception = function(_, trainer, module, err) seen = err end}
    local lg = S.MemoryLogger()
    local err = H.error_of(fit, dir, 3, {fail_at = {1, 3}, callback = cb, logger = lg})
    assert.matches("boom in the step", seen)
    assert.matches("^Trainer:fit failed in training_step at epoch 1, batch 3 %(global step 7%): .*boom in the step", err)
    assert.matches("The last good state was saved to " .. dir .. "/on_exception.safetensors; resume with ckpt_path = \"last\"", err)
    assert.equal("failed", lg.finalized)
    local _, meta = L.load_safetensors(dir .. "/on_exception.safetensors")
    local loops = require("cjson").decode(meta.loops)
    assert.same({1, 2, false}, {loops.epoch, loops.batches_done, loops.epoch_finished})
    assert.equal("7", meta.global_step)
  end)

  it("resumes from the last good state and finishes as the uninterrupted run", function()
    local straight = fit(dir .. "/straight", 3)
    pcall(fit, dir .. "/faulty", 3, {fail_at = {1, 3}})
    local resumed, trainer = fit(dir .. "/faulty", 3, {ckpt_path = "last"})
    assert.equal(dir .. "/faulty/on_exception.safetensors", trainer.ckpt_path)
    local a, b = straight:state_dict(), resumed:state_dict()
    for name, t in pairs(a) do H.assert_close(b[name], t, 1e-6, name) end
  end)

  it("names the validation batch when validation fails", function()
    local model = S.Regression{methods = {validation_step = function(self, batch, i)
      if not self.trainer.sanity_checking and i == 2 then error("bad validation") end
    end}}(3)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 2}))
    local batches = S.regression_batches(4, 4, 3, 1)
    local err = H.error_of(trainer.fit, trainer, model, S.Loader({batches[1], batches[2]}), S.Loader({batches[3], batches[4]}))
    assert.matches("^Trainer:fit failed in validation_step at epoch 0, validation batch 2 %(global step 2%): .*bad validation", err)
  end)

  it("keeps the error when no checkpoint can be saved", function()
    local model = S.Regression{methods = {training_step = function() error("early failure") end}}(3)
    local trainer = L.Trainer(S.quiet(dir))
    local err = H.error_of(trainer.fit, trainer, model, S.Loader(S.regression_batches(1, 4, 3, 1)))
    assert.matches("^Trainer:fit failed in training_step at epoch 0, batch 1 %(global step 0%): .*early failure$", err)
    assert.matches("early failure", trainer.last_traceback)
    assert.equal("interrupted", trainer.state.status)
  end)
end)

describe("A run killed with SIGKILL", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  -- The child: trains the regression stand-in, each batch slowed down when `slow` is set, saving
  -- last.safetensors every epoch; at the end it writes the weights.
  local CHILD = [[
local dir, epochs, ckpt, slow = arg[1], tonumber(arg[2]), arg[3], arg[4] == "slow"
local L = require "lightning"
local S = require "trainer_standins"
local batches = S.regression_batches(5, 8, 3, 1)
L.manual_seed(5)
local model = S.Regression{scheduler = true}(3)
local sleeper = {on_train_batch_end = function()
  if slow then local t = L.now() while L.now() - t < 0.02 do end end
end}
local trainer = L.Trainer{default_root_dir = dir, max_epochs = epochs, logger = false, enable_progress_bar = false,
  enable_model_summary = false, callbacks = {sleeper, L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", save_last = true}}}
trainer:fit(model, S.Loader(batches, true), {ckpt_path = ckpt ~= "none" and ckpt or nil})
L.save_weights(model, dir .. "/final.safetensors")
]]

  local function env()
    return ("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q"):format(package.path, package.cpath)
  end

  it("resumes from its last checkpoint and ends where an uninterrupted run ends", function()
    local script = dir .. "/child.lua"
    H.write_file(script, CHILD)
    -- an uninterrupted run
    os.execute("mkdir -p " .. dir .. "/straight " .. dir .. "/killed")
    assert.is_true(os.execute(("%s lua5.4 %s %s/straight 40 none fast"):format(env(), script, dir)))
    -- a run killed during training, after its first checkpoint
    local pid = io.popen(("%s lua5.4 %s %s/killed 40 none slow >/dev/null 2>&1 & echo $!"):format(env(), script, dir))
      :read("l")
    local last = dir .. "/killed/ckpt/last.safetensors"
    local deadline = L.now() + 60
    while not fs.exists(last) and L.now() < deadline do os.execute("sleep 0.05") end
    assert.is_true(fs.exists(last), "the child wrote no checkpoint")
    os.execute("sleep 0.1")
    assert.is_true(os.execute("kill -9 " .. pid))
    os.execute("sleep 0.1")
    assert.is_nil(io.open(dir .. "/killed/final.safetensors"), "the child finished before it was killed")
    -- resumed
    assert.is_true(os.execute(("%s lua5.4 %s %s/killed 40 last fast >/dev/null"):format(env(), script, dir)))
    local a = L.load_safetensors(dir .. "/straight/final.safetensors")
    local b = L.load_safetensors(dir .. "/killed/final.safetensors")
    for name, t in pairs(a) do H.assert_close(b[name], t, 1e-6, name) end
  end)
end)

describe("Output folders", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function fit_into(root, opts)
    local steps = 0
    local model = S.Regression{methods = {training_step = function(self, batch, i)
      steps = steps + 1
      return S.Regression{}.training_step(self, batch, i)
    end}}(3)
    local o = S.quiet(root, {max_epochs = 1, enable_checkpointing = true})
    for k, v in pairs(opts or {}) do o[k] = v end
    local trainer = L.Trainer(o)
    local ok, err = pcall(trainer.fit, trainer, model, S.Loader(S.regression_batches(1, 4, 3, 1)))
    return ok, err, steps
  end

  it("that cannot be created are an error before training", function()
    H.write_file(dir .. "/file", "not a folder")
    local ok, err, steps = fit_into(dir .. "/file/run")
    assert.is_false(ok)
    assert.matches("Trainer: the output folder " .. dir .. "/file/run is not writable %(.*%); choose another", err)
    assert.equal(0, steps)
  end)

  it("that are read-only are an error before training", function()
    local ro = dir .. "/ro"
    os.execute("mkdir -p " .. ro .. " && chmod 555 " .. ro)
    local probe = io.open(ro .. "/probe", "w")
    if probe then
      -- running as root, permissions do not stop writes; a read-only file system (/proc) does
      probe:close()
      os.remove(ro .. "/probe")
      ro = "/proc/lightning-read-only"
    end
    local ok, err, steps = fit_into(dir, {callbacks = {L.callbacks.ModelCheckpoint{dirpath = ro}}})
    assert.is_false(ok)
    assert.matches("the output folder " .. ro:gsub("%-", "%%-") .. " is not writable", err)
    assert.equal(0, steps)
  end)

  it("on a full disk are an error (the probe writes about a checkpoint's size)", function()
    local ok, err = fs.check_writable(dir, 1 << 20, "/dev/full")
    assert.is_nil(ok)
    assert.matches("No space left on device", err)
  end)
end)
