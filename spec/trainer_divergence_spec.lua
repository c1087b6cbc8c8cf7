-- Divergence is loud: a NaN or infinite training loss or monitored metric is said in one line (which
-- value, the epoch and the step), training stops, trainer.diverged records it, and ModelCheckpoint
-- never ranks a non-finite score (never "the best").
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"

local BATCHES = S.regression_batches(5, 4, 3, 1)

local function fit(dir, opts)
  opts = opts or {}
  L.manual_seed(4)
  local model = S.Regression{methods = opts.methods}(3)
  local trainer = L.Trainer(S.quiet(dir, {max_epochs = opts.max_epochs or 5, callbacks = opts.callbacks,
    enable_checkpointing = opts.callbacks ~= nil, num_sanity_val_steps = 0}))
  local text = output.capture(trainer.fit, trainer, model, S.Loader({BATCHES[1], BATCHES[2], BATCHES[3], BATCHES[4]}),
    S.Loader({BATCHES[5]}))
  return trainer, text, model
end

local function count_lines(text, pattern)
  local n = 0
  for line in text:gmatch("[^\n]+") do if line:match(pattern) then n = n + 1 end end
  return n
end

describe("Divergence", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("of the training loss stops training at once, says so in one line, and steps nothing on it", function()
    local trainer, text, model = fit(dir, {methods = {training_step = function(self, batch, i)
      local out = S.Regression{}.training_step(self, batch, i)
      if self.trainer.current_epoch == 1 and i == 3 then out.loss = 0 / 0 end
      return out
    end}})
    assert.equal(1, count_lines(text, "^Training diverged: the training loss is NaN at epoch 1, global step 6 %(batch 3%); " ..
      "training stops$"), text)
    assert.same({what = "the training loss", epoch = 1, global_step = 6, batch = 3},
      {what = trainer.diverged.what, epoch = trainer.diverged.epoch, global_step = trainer.diverged.global_step,
        batch = trainer.diverged.batch})
    assert.is_true(trainer.diverged.value ~= trainer.diverged.value)
    assert.equal(6, trainer.global_step)   -- nothing stepped on the NaN batch, nothing after it
    assert.equal(2, trainer.current_epoch)
    for _, p in ipairs(model:parameters()) do assert.equal(0, L.metrics.count_nonfinite(p)) end
  end)

  it("of an infinite loss is the same", function()
    local trainer, text = fit(dir, {methods = {training_step = function(self, batch, i)
      local out = S.Regression{}.training_step(self, batch, i)
      if i == 2 then out.loss = math.huge end
      return out
    end}})
    assert.matches("Training diverged: the training loss is inf at epoch 0, global step 1 %(batch 2%)", text)
    assert.equal(1, trainer.global_step)
  end)

  it("of a monitored metric stops training and is never the best checkpoint", function()
    local scores = {0.5, 0 / 0, 0.1}
    local methods = {on_validation_epoch_end = function(self)
      self:log("score", scores[self.trainer.current_epoch + 1])
    end}
    local ckpt = L.callbacks.ModelCheckpoint{dirpath = dir, monitor = "score", save_top_k = 3, filename = "{epoch}-{score:.3f}"}
    local es = L.callbacks.EarlyStopping{monitor = "score", patience = 10}
    local trainer, text = fit(dir, {methods = methods, callbacks = {es, ckpt}})
    assert.equal(1, count_lines(text, "^Training diverged: score is NaN at epoch 1, global step 8; training stops$"), text)
    assert.equal(2, trainer.current_epoch)
    assert.equal("score", trainer.diverged.what)
    assert.equal(dir .. "/epoch=0-score=0.500.safetensors", ckpt.best_model_path)
    assert.equal(0.5, ckpt.best_model_score)
    local names = L.core.io.listdir(dir)
    assert.same({"epoch=0-score=0.500.safetensors"}, names)
  end)

  it("of ModelCheckpoint's monitor alone: no NaN checkpoint, even the first (no \"best\" of one)", function()
    local methods = {on_validation_epoch_end = function(self) self:log("val_loss", 0 / 0) end}
    local ckpt = L.callbacks.ModelCheckpoint{dirpath = dir, monitor = "val_loss", save_last = true}
    local trainer, text = fit(dir, {methods = methods, callbacks = {ckpt}})
    assert.matches("Training diverged: val_loss is NaN at epoch 0, global step 4; training stops", text)
    assert.equal("", ckpt.best_model_path)
    assert.is_nil(ckpt.best_model_score)
    assert.same({"last.safetensors"}, L.core.io.listdir(dir))
    assert.equal(1, trainer.current_epoch)
  end)

  it("of a metric EarlyStopping watches with check_finite = false goes on (only ModelCheckpoint's counts)", function()
    local scores = {0.5, 0 / 0, 0.4}
    local methods = {on_validation_epoch_end = function(self) self:log("score", scores[self.trainer.current_epoch + 1]) end}
    local trainer, text = fit(dir, {methods = methods, max_epochs = 3, callbacks = {
      L.callbacks.EarlyStopping{monitor = "score", check_finite = false, patience = 10}}})
    assert.is_nil(trainer.diverged)
    assert.is_nil(text:find("diverged", 1, true))
    assert.equal(3, trainer.current_epoch)
  end)
end)
