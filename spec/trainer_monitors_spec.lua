-- Monitored metrics checked before training (lightning.trainer.monitors): a near miss of a logged
-- name at the sanity check, with a "did you mean"; after the first batch, a name nothing left can log;
-- no on_exception checkpoint for such a mistake; no false alarm for a name logged later.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"

local function files(dir)
  local list = {}
  local p = io.popen(("find %q -type f 2>/dev/null | sort"):format(dir))
  for line in p:lines() do list[#list + 1] = line:sub(#dir + 2) end
  p:close()
  return list
end

-- Fits S.Regression (train_loss on step and epoch, val_loss) with these callbacks and Trainer options;
-- returns the error (or nil), the number of training batches that ran and the trainer.
local function fit(dir, callbacks, opts, module_opts)
  local batches = 0
  local counter = {on_train_batch_start = function() batches = batches + 1 end}
  table.insert(callbacks, 1, counter)
  local o = S.quiet(dir, {max_epochs = 2, callbacks = callbacks, enable_checkpointing = true})
  for k, v in pairs(opts or {}) do o[k] = v end
  local trainer = L.Trainer(o)
  local data = S.regression_batches(4, 4, 3, 1)
  local ok, err = pcall(output.capture, trainer.fit, trainer, S.Regression(module_opts)(3),
    S.Loader({data[1], data[2], data[3]}), S.Loader({data[4]}))
  return not ok and tostring(err) or nil, batches, trainer
end

describe("Monitored metrics", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("are checked at the sanity check: a near miss of a validation metric is an error before any training or " ..
    "checkpoint", function()
    local err, batches = fit(dir, {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", monitor = "val_los"}})
    assert.matches('ModelCheckpoint%(monitor = "val_los"%) could not find the monitored metric %(did you mean ' ..
      '"val_loss"%?%); the logged metrics are: val_loss%.', err)
    assert.equal(0, batches)
    assert.same({}, files(dir))
    err, batches = fit(dir, {L.callbacks.EarlyStopping{monitor = "val_lsos"}})
    assert.matches('EarlyStopping: conditioned on metric "val_lsos" which is not available %(did you mean ' ..
      '"val_loss"%?%)', err)
    assert.equal(0, batches)
  end)

  it("include a ReduceLROnPlateau's monitor", function()
    local plateau = {methods = {configure_optimizers = function(self)
      local opt = S.SGD(self:parameters(), 0.05)
      return {optimizer = opt, lr_scheduler = {scheduler = {step = function() end, is_plateau = true},
        monitor = "val_lossy"}}
    end}}
    local err, batches = fit(dir, {}, nil, plateau)
    assert.matches('ReduceLROnPlateau conditioned on metric val_lossy which is not available %(did you mean ' ..
      '"val_loss"%?%); available metrics are: val_loss', err)
    assert.equal(0, batches)
  end)

  it("without a sanity check or validation are checked after the first batch, and leave no on_exception " ..
    "checkpoint", function()
    local err, batches = fit(dir, {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt"},
      L.callbacks.EarlyStopping{monitor = "train_los"}}, {num_sanity_val_steps = 0})
    assert.matches('EarlyStopping: conditioned on metric "train_los" which is not available %(did you mean ' ..
      '"train_loss"%?%); the metrics that exist are: train_loss, train_loss_epoch, train_loss_step$', err)
    assert.equal(1, batches)
    assert.is_nil(err:find("saved", 1, true))
    assert.same({}, files(dir))
  end)

  it("that nothing left to run can log are an error after the first batch, listing what is logged", function()
    local err, batches = fit(dir, {L.callbacks.EarlyStopping{monitor = "accuracy"}})
    assert.matches('EarlyStopping: conditioned on metric "accuracy" which is not available; the metrics that exist ' ..
      'are: train_loss, train_loss_epoch, train_loss_step, val_loss', err)
    assert.equal(1, batches)
  end)

  it("may be logged later: by the user's on_train_epoch_end or validation hooks, or by training beside a validation " ..
    "name", function()
    local late = {methods = {on_train_epoch_end = function(self) self:log("accuracy", 0.5) end}}
    local err, batches, trainer = fit(dir, {L.callbacks.EarlyStopping{monitor = "accuracy", patience = 5}}, nil, late)
    assert.is_nil(err)
    assert.equal(6, batches)
    assert.equal(0.5, trainer.callback_metrics.accuracy)
    -- a validation hook that logs only outside the sanity check
    local guarded = {methods = {on_validation_epoch_end = function(self)
      if not self.trainer.sanity_checking then self:log("score", 1.0) end
    end}}
    err = fit(dir, {L.callbacks.EarlyStopping{monitor = "score"}}, nil, guarded)
    assert.is_nil(err)
    -- "loss" is no misspelt "val_loss": training logs it
    local logs_loss = {methods = {on_train_batch_end = function(self) self:log("loss", 1.0) end}}
    err = fit(dir, {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", monitor = "loss"}}, nil, logs_loss)
    assert.is_nil(err)
  end)

  it("of the image classifier: val_accuracy gets a did-you-mean val_acc at the sanity check", function()
    local model = S.conv_classifier()
    local samples = S.band_images(8, 1, {classes = 3, channels = 1, size = 8, band = 2, step = 3, noise = 0.1})
    local loader = L.data.DataLoader(samples, {batch_size = 4})
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, enable_checkpointing = true,
      callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", monitor = "val_accuracy", mode = "max"}}}))
    local err = H.error_of(output.capture, trainer.fit, trainer, model, loader, loader)
    assert.matches('could not find the monitored metric %(did you mean "val_acc"%?%); the logged metrics are: ' ..
      'val_acc, val_f1, val_loss, val_precision, val_recall', err)
    assert.equal(0, trainer.global_step)
    assert.same({}, files(dir))
  end)
end)
