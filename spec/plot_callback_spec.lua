-- L.plot.PlotCallback in the Trainer: the history it records from callback_metrics, the PNGs it writes
-- at the end of fit and test, its state in checkpoints, and its options.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"

local CLASSES = {"top", "upper", "lower", "bottom"}

-- Class k: a bright band at rows 4k-3..4k of a 16x16 image.
local function images(n, seed)
  return S.band_images(n, seed, {classes = 4, channels = 3, size = 16, step = 4, band = 4, noise = 0.3})
end

local TRAIN, VAL = images(32, 1), images(16, 2)

local function loaders()
  return L.data.DataLoader(TRAIN, {batch_size = 16, shuffle = true}), L.data.DataLoader(VAL, {batch_size = 8})
end

local function classifier()
  return L.models.BasicImageClassifier{num_classes = 4, in_channels = 3, image_size = 16}
end

local function fit(dir, cb, extra, model)
  L.manual_seed(5)
  model = model or classifier()
  local opts = {max_epochs = 3, num_sanity_val_steps = 1, callbacks = cb and {cb} or nil}
  for k, v in pairs(extra or {}) do opts[k] = v end
  local trainer = L.Trainer(S.quiet(dir, opts))
  local train, val = loaders()
  output.capture(trainer.fit, trainer, model, train, val)
  return trainer, model
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("plot: PlotCallback", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("records each epoch's metrics and writes metrics, confusion matrix and samples PNGs when fit ends", function()
    local cb = L.plot.PlotCallback{dirpath = dir .. "/run/plots", class_names = CLASSES}
    local trainer = fit(dir, cb)
    local h = cb.history
    assert.same({0, 1, 2}, h.epoch)   -- numbered from 0, as the console and checkpoint names
    for _, key in ipairs {"train_loss", "val_loss", "train_acc", "val_acc"} do
      assert.equal(3, #h[key], key)
      for i = 1, 3 do assert.is_true(h[key][i] == h[key][i], ("%s[%d] is NaN"):format(key, i)) end
      assert.equal(trainer.callback_metrics[key], h[key][3], key)  -- the last epoch's epoch values
    end
    for _, name in ipairs {"metrics.png", "confusion_matrix.png", "samples.png"} do
      local img = L.data.read_png(dir .. "/run/plots/" .. name)
      assert.equal(3, img:size(1), name)
      assert.is_true(img:size(2) > 100 and img:size(3) > 100, name)
    end
    assert.equal("3x460x1240", tostring(L.data.read_png(dir .. "/run/plots/metrics.png"):size()))
    assert.is_false(exists(dir .. "/run/plots/confusion_matrix_test.png"))
  end)

  it("draws the validation confusion matrix that the module's metrics hold", function()
    local cb = L.plot.PlotCallback{dirpath = dir, samples = false, metrics = false}
    local _, model = fit(dir, cb)
    local counts = model.epoch_metrics.val.confusion:counts()
    -- neither the options, a data module nor these plain-table data sets name the classes: 1..4
    local want = L.plot.confusion_matrix(counts, nil, nil, {title = "Confusion matrix (validation, epoch 2)"})
    H.assert_close(L.data.read_png(dir .. "/confusion_matrix.png"), want.tensor, 0.5 / 255 + 1e-6, "confusion matrix")
    assert.same({dir .. "/confusion_matrix.png"}, cb.written)
  end)

  it("writes confusion_matrix_test.png when test ends", function()
    local cb = L.plot.PlotCallback{dirpath = dir, class_names = CLASSES}
    L.manual_seed(5)
    local model = classifier()
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, callbacks = {cb}}))
    local _, val = loaders()
    output.capture(trainer.test, trainer, model, val, {verbose = false})
    assert.is_true(exists(dir .. "/confusion_matrix_test.png"))
    assert.is_false(exists(dir .. "/metrics.png"))
    assert.same({}, cb.history.epoch)  -- test metrics are not part of the training history
  end)

  it("leaves NaN where validation did not run and still plots the validation line", function()
    local cb = L.plot.PlotCallback{dirpath = dir, samples = false}
    fit(dir, cb, {check_val_every_n_epoch = 2})
    local v = cb.history.val_loss
    assert.equal(3, #v)
    assert.is_true(v[1] ~= v[1] and v[2] == v[2] and v[3] ~= v[3])
    assert.is_true(exists(dir .. "/metrics.png"))
  end)

  it("defaults to <log_dir>/plots and skips what a module without classification metrics lacks", function()
    local cb = L.plot.PlotCallback{}
    L.manual_seed(1)
    local Regression = S.Regression()
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 2, callbacks = {cb}}))
    local batches = S.regression_batches(4, 8, 3)
    output.capture(trainer.fit, trainer, Regression(3), S.Loader(batches, true), S.Loader(batches))
    assert.equal(dir .. "/plots", cb.dirpath)
    assert.is_true(exists(dir .. "/plots/metrics.png"))   -- loss only
    assert.equal(620, L.data.read_png(dir .. "/plots/metrics.png"):size(3))
    assert.is_false(exists(dir .. "/plots/confusion_matrix.png"))
    assert.is_false(exists(dir .. "/plots/samples.png"))  -- (B, 3) inputs are no images
  end)

  it("leaves the global generator as it was: drawing samples does not change what follows", function()
    local with = fit(dir, L.plot.PlotCallback{dirpath = dir .. "/a"})
    local state_with = L.get_rng_state()
    fit(dir, nil)
    local state_without = L.get_rng_state()
    assert.equal(state_without, state_with)
    assert.is_number(with.callback_metrics.val_acc)
  end)

  it("keeps its history in checkpoints, so a resumed run plots every epoch", function()
    local ckpt_dir = dir .. "/ckpt"
    local first = L.plot.PlotCallback{dirpath = dir .. "/p1", samples = false}
    fit(dir, first, {max_epochs = 2, enable_checkpointing = true, callbacks = {first,
      L.callbacks.ModelCheckpoint{dirpath = ckpt_dir, save_last = true}}})
    assert.same({0, 1}, first.history.epoch)
    local second = L.plot.PlotCallback{dirpath = dir .. "/p2", samples = false}
    L.manual_seed(5)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 4, enable_checkpointing = true, callbacks = {second,
      L.callbacks.ModelCheckpoint{dirpath = ckpt_dir, save_last = true}}}))
    local train, val = loaders()
    output.capture(trainer.fit, trainer, classifier(), train, val, {ckpt_path = ckpt_dir .. "/last.safetensors"})
    assert.same({0, 1, 2, 3}, second.history.epoch)
    for i = 1, 2 do assert.equal(first.history.val_acc[i], second.history.val_acc[i]) end
    local copy = L.plot.PlotCallback{}
    copy:load_state_dict(second:state_dict())
    assert.same(second.history, copy.history)
  end)

  it("checks its options", function()
    local C = L.plot.PlotCallback
    assert.matches("PlotCallback: unknown option 'dir_path' %(did you mean 'dirpath'%?%) %(known: .*dirpath", H.error_of(C, {dir_path = "x"}))
    assert.matches("PlotCallback: dirpath must be a string, got 1", H.error_of(C, {dirpath = 1}))
    assert.matches("PlotCallback: num_samples must be an integer >= 1, got 0", H.error_of(C, {num_samples = 0}))
    assert.matches("PlotCallback: samples must be a boolean, got \"yes\"", H.error_of(C, {samples = "yes"}))
    assert.matches("PlotCallback: class_names must be a list of names, got \"abc\"", H.error_of(C, {class_names = "abc"}))
    assert.is_true(L.class.is_instance(C{}, L.Callback))
  end)
end)
