-- Checkpoints: what they hold, that resuming reproduces an uninterrupted run, ckpt_path = "last" and
-- "best", and the errors for files that are not checkpoints.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local nn = L.nn
local output = require "lightning.util.output"
local checkpoint = require "lightning.trainer.checkpoint"

-- A small image classifier with the real pieces (S.conv_classifier) and a step scheduler; a shuffled
-- DataLoader (its order drawn from the global generator).
local function small_classifier(opts)
  local o = {scheduler = "step", step_size = 1, gamma = 0.7}
  for k, v in pairs(opts or {}) do o[k] = v end
  return S.conv_classifier(o)
end

local function image_data(n, seed)
  return S.band_images(n, seed, {classes = 3, channels = 1, size = 8, step = 2, band = 3, noise = 0.5})
end

local TRAIN, VAL = image_data(48, 100), image_data(24, 101)

local function loaders()
  return L.data.DataLoader(TRAIN, {batch_size = 8, shuffle = true}), L.data.DataLoader(VAL, {batch_size = 8})
end

-- Trains for max_epochs (from ckpt_path when given) with checkpoints in dir; returns model, trainer.
-- model_opts: small_classifier's.
local function train(dir, max_epochs, ckpt_path, extra_callbacks, model_opts)
  L.manual_seed(1234)
  local model = small_classifier(model_opts)
  local callbacks = {
    L.callbacks.ModelCheckpoint{dirpath = dir, monitor = "val_acc", mode = "max", save_top_k = 2, save_last = true,
      filename = "{epoch}-{val_acc:.3f}"},
    L.callbacks.EarlyStopping{monitor = "val_loss", patience = 20},
  }
  for _, cb in ipairs(extra_callbacks or {}) do callbacks[#callbacks + 1] = cb end
  local trainer = L.Trainer(S.quiet(dir, {max_epochs = max_epochs, enable_checkpointing = true, callbacks = callbacks}))
  local train_loader, val_loader = loaders()
  output.capture(trainer.fit, trainer, model, train_loader, val_loader, {ckpt_path = ckpt_path})
  return model, trainer
end

local function same_weights(a, b, tol)
  local sa, sb = a:state_dict(), b:state_dict()
  for name, t in pairs(sa) do H.assert_close(t, sb[name], tol, name) end
end

describe("Checkpoints", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("resume at the next epoch and reproduce the uninterrupted run (4 epochs vs 2 + 2)", function()
    local straight, t1 = train(dir .. "/straight", 4)
    local _, half = train(dir .. "/resumed", 2)
    assert.equal(2, half.current_epoch)
    local resumed, t2 = train(dir .. "/resumed", 4, "last")
    assert.equal(dir .. "/resumed/last.safetensors", t2.ckpt_path)
    assert.equal(4, t2.current_epoch)
    assert.equal(t1.global_step, t2.global_step)
    same_weights(straight, resumed, 1e-6)
    -- optimizer, scheduler and callback states came back too
    assert.equal(t1.optimizers[1].param_groups[1].lr, t2.optimizers[1].param_groups[1].lr)
    assert.equal(t1.early_stopping_callback.best_score, t2.early_stopping_callback.best_score)
    assert.equal(t1.early_stopping_callback.wait_count, t2.early_stopping_callback.wait_count)
    assert.equal(t1.checkpoint_callback.best_model_score, t2.checkpoint_callback.best_model_score)
    local names1, names2 = {}, {}
    for p in pairs(t1.checkpoint_callback.best_k_models) do names1[#names1 + 1] = p:match("[^/]+$") end
    for p in pairs(t2.checkpoint_callback.best_k_models) do names2[#names2 + 1] = p:match("[^/]+$") end
    table.sort(names1)
    table.sort(names2)
    assert.same(names1, names2)
  end)

  it("refuse at once to stretch a one-cycle schedule over a longer run, saying why; the same length resumes",
    function()
      local onecycle = {scheduler = "onecycle"}
      train(dir, 2, nil, nil, onecycle)
      local ok, err = pcall(train, dir, 3, "last", nil, onecycle)
      assert.is_false(ok)
      assert.matches("last%.safetensors: its OneCycleLR schedule ends after 12 steps, but this run goes on to step 18 " ..
        "%(max_epochs or max_steps grew since it was saved%); a schedule with an end cannot be stretched once begun", err)
      local straight = train(dir .. "/straight", 2, nil, nil, onecycle)
      os.rename(dir .. "/last.safetensors", dir .. "/half.safetensors")
      local _, t = train(dir, 2, dir .. "/half.safetensors", nil, onecycle)   -- (nothing left: it says so)
      assert.equal(12, t.global_step)
      same_weights(straight, t.lightning_module, 0)
    end)

  it("hold the weights under their names, optimizer state, and JSON metadata", function()
    local model, trainer = train(dir, 1)
    local tensors, meta = L.load_safetensors(dir .. "/last.safetensors")
    for name, t in pairs(model:state_dict()) do H.assert_close(tensors[name], t, 0, name) end
    assert.is_not_nil(tensors["net.0.weight"])
    local optimizer_tensors = 0
    for name in pairs(tensors) do if name:match("^optimizer%.") then optimizer_tensors = optimizer_tensors + 1 end end
    assert.equal(2 * #model:parameters(), optimizer_tensors)   -- Adam's two moments per parameter
    assert.equal("lightning.checkpoint", meta.format)
    assert.equal("1", meta.format_version)
    assert.equal("0", meta.epoch)
    assert.equal(tostring(trainer.global_step), meta.global_step)
    assert.matches("^xoshiro256ss:", meta.rng_state)
    local cjson = require "cjson"
    local hparams = cjson.decode(meta.hparams)
    assert.equal(0.01, hparams.learning_rate)
    assert.equal("step", hparams.scheduler)
    local callbacks = cjson.decode(meta.callbacks)
    assert.is_not_nil(callbacks["EarlyStopping{monitor=val_loss,mode=min}"].wait_count)
    assert.is_true(cjson.decode(meta.loops).epoch_finished)
    assert.is_not_nil(cjson.decode(meta.lr_schedulers)[1].last_epoch)
  end)

  it("keep values that on_save_checkpoint adds and hand them to on_load_checkpoint", function()
    local loaded
    local cb = {
      on_save_checkpoint = function(_, trainer, module, ckpt) ckpt.my_note = {text = "hello", values = {1.5, 2}} end,
      on_load_checkpoint = function(_, trainer, module, ckpt) loaded = ckpt.my_note end,
    }
    train(dir, 1, nil, {cb})
    train(dir, 2, "last", {cb})
    assert.same({text = "hello", values = {1.5, 2}}, loaded)
  end)

  it("round-trip doubles exactly, infinities, NaN and sparse tables", function()
    local state = {lr = 0.1 + 0.2, tiny = 1e-300, big = -math.huge, bad = 0 / 0, sparse = {[1] = 1, [5] = 5},
      mixed = {[2] = "two", name = "x"}, list = {L.ones(2), L.zeros(3)}}
    local Keeper = L.class("Keeper", L.Callback)
    function Keeper:state_dict() return state end
    function Keeper:load_state_dict(s) self.loaded = s end
    train(dir, 1, nil, {Keeper()})
    local keeper = Keeper()
    train(dir, 2, "last", {keeper})
    local s = keeper.loaded
    assert.equal(0.1 + 0.2, s.lr)
    assert.equal(1e-300, s.tiny)
    assert.equal(-math.huge, s.big)
    assert.is_true(s.bad ~= s.bad)
    assert.same({[1] = 1, [5] = 5}, s.sparse)
    assert.same({[2] = "two", name = "x"}, s.mixed)
    assert.same({1, 1}, s.list[1]:totable())
  end)

  it("ckpt_path = \"last\" without a checkpoint starts from scratch and says so", function()
    L.manual_seed(1)
    local model = small_classifier()
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, enable_checkpointing = true}))
    local train_loader = loaders()
    local text = output.capture(trainer.fit, trainer, model, train_loader, {ckpt_path = "last"})
    assert.matches("ckpt_path = \"last\" but there is no last checkpoint in " .. dir .. "/checkpoints; starting from scratch", text)
    assert.equal(1, trainer.current_epoch)
  end)

  it("ckpt_path = \"best\" tests the best model; a path loads that file", function()
    local model, trainer = train(dir, 3)
    local best = trainer.checkpoint_callback.best_model_path
    assert.matches("epoch=%d%-val_acc=%d%.%d%d%d%.safetensors$", best)
    local _, val_loader = loaders()
    local _, results = output.capture(trainer.test, trainer, model, val_loader, {ckpt_path = "best", verbose = false})
    local other = small_classifier()
    local t2 = L.Trainer(S.quiet(dir))
    local again = t2:test(other, val_loader, {ckpt_path = best, verbose = false})
    assert.near(trainer.checkpoint_callback.best_model_score, again[1].test_acc, 1e-9)
    assert.near(trainer.checkpoint_callback.best_model_score, results[1].test_acc, 1e-9)
  end)

  it("ckpt_path = \"best\" without a best checkpoint is an error", function()
    local model = small_classifier()
    local trainer = L.Trainer(S.quiet(dir))
    local _, val_loader = loaders()
    assert.matches("ckpt_path = \"best\" but no best checkpoint was saved",
      H.error_of(trainer.test, trainer, model, val_loader, {ckpt_path = "best"}))
  end)

  it("rejects files that are not checkpoints", function()
    local model = small_classifier()
    L.save_weights(model, dir .. "/weights.safetensors")
    local train_loader = loaders()
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1}))
    assert.matches("weights.safetensors is not a lightning checkpoint %(its metadata has no format = \"lightning.checkpoint\"%); load weights alone with L.load_weights",
      H.error_of(trainer.fit, trainer, model, train_loader, {ckpt_path = dir .. "/weights.safetensors"}))
    H.write_file(dir .. "/broken.safetensors", "\8\0\0\0\0\0\0\0{}")
    assert.matches("cannot read checkpoint .*broken.safetensors",
      H.error_of(trainer.fit, trainer, model, train_loader, {ckpt_path = dir .. "/broken.safetensors"}))
  end)

  it("rejects a checkpoint of a different model, naming the keys", function()
    train(dir, 1)
    local other = L.models.ImageClassifier{net = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), num_classes = 3,
      in_channels = 1, image_size = 8}
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 2}))
    local train_loader = loaders()
    local err = H.error_of(trainer.fit, trainer, other, train_loader, {ckpt_path = dir .. "/last.safetensors"})
    assert.matches("load_state_dict: size mismatch for net.1.weight", err)
  end)

  it("find the newest last checkpoint by global step", function()
    train(dir, 2)
    os.rename(dir .. "/last.safetensors", dir .. "/last-v1.safetensors")
    train(dir .. "/other", 1)
    os.rename(dir .. "/other/last.safetensors", dir .. "/last.safetensors")
    assert.equal(dir .. "/last-v1.safetensors", checkpoint.find_last({dir}))
    assert.is_nil(checkpoint.find_last({dir .. "/none"}))
  end)
end)

describe("Checkpoints saved after validation", function()
  it("resume at the next epoch when validation runs every n epochs", function()
    local dir = H.tmpdir()
    local function run(epochs, ckpt)
      L.manual_seed(1)
      local model = S.Regression{}(3)
      local batches = S.regression_batches(3, 4, 3, 1)
      local trainer = L.Trainer(S.quiet(dir, {max_epochs = epochs, check_val_every_n_epoch = 2,
        enable_checkpointing = true, callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true}}}))
      output.capture(trainer.fit, trainer, model, S.Loader({batches[1], batches[2]}, true), S.Loader({batches[3]}),
        {ckpt_path = ckpt})
      return model, trainer
    end
    local straight = run(4)
    H.rmdir(dir)
    dir = H.tmpdir()
    run(2)
    local resumed, trainer = run(4, "last")
    H.rmdir(dir)
    assert.equal(4, trainer.current_epoch)
    assert.equal(8, trainer.global_step)
    H.assert_close(resumed.weight, straight.weight, 1e-6, "weights")
  end)
end)
