-- Trainer{val_check_interval}: validation inside an epoch, with Lightning's meaning (a float is a
-- fraction of the epoch's training batches, an integer a number of them).
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"

-- Fits a Regression on train_n batches; returns the trainer and the list of {epoch, training batches
-- done} at each validation (sanity check excluded), and the callbacks' checks.
local Plain = S.Regression{}

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function fit(dir, opts, train_n, extra_callbacks)
  local seen, trained = {}, 0
  local Model = S.Regression{methods = {
    training_step = function(self, batch, i)
      trained = i
      return Plain.training_step(self, batch, i)
    end,
    on_validation_epoch_end = function(self)
      if not self.trainer.sanity_checking then seen[#seen + 1] = {self.trainer.current_epoch, trained} end
    end,
  }}
  local model = Model(3)
  opts.num_sanity_val_steps = opts.num_sanity_val_steps or 0
  opts.callbacks = extra_callbacks
  local trainer = L.Trainer(S.quiet(dir, opts))
  output.capture(trainer.fit, trainer, model, S.Loader(S.regression_batches(train_n, 4, 3, 1)),
    S.Loader(S.regression_batches(2, 4, 3, 2)))
  return trainer, seen
end

describe("Trainer val_check_interval", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("a float validates after that fraction of the epoch's batches", function()
    local _, seen = fit(dir, {max_epochs = 2, val_check_interval = 0.25}, 8)
    assert.same({{0, 2}, {0, 4}, {0, 6}, {0, 8}, {1, 2}, {1, 4}, {1, 6}, {1, 8}}, seen)
  end)

  it("a fraction that does not divide the epoch leaves its end unvalidated, as Lightning", function()
    local _, seen = fit(dir, {max_epochs = 1, val_check_interval = 0.3}, 10)   -- every 3 batches
    assert.same({{0, 3}, {0, 6}, {0, 9}}, seen)
  end)

  it("an integer validates after every that many batches; 1.0 (the default) once at the end", function()
    local _, seen = fit(dir, {max_epochs = 1, val_check_interval = 2}, 5)
    assert.same({{0, 2}, {0, 4}}, seen)
    _, seen = fit(dir, {max_epochs = 2, val_check_interval = 1.0}, 3)
    assert.same({{0, 3}, {1, 3}}, seen)
    _, seen = fit(dir, {max_epochs = 1}, 3)
    assert.same({{0, 3}}, seen)
  end)

  it("combines with check_val_every_n_epoch", function()
    local _, seen = fit(dir, {max_epochs = 4, val_check_interval = 0.5, check_val_every_n_epoch = 2}, 4)
    assert.same({{1, 2}, {1, 4}, {3, 2}, {3, 4}}, seen)
  end)

  it("a stop requested by a validation inside the epoch ends it without validating again", function()
    local stopper = {on_validation_end = function(_, trainer)
      if not trainer.sanity_checking then trainer.should_stop = true end
    end}
    local trainer, seen = fit(dir, {max_epochs = 3, val_check_interval = 0.5}, 4, {stopper})
    assert.same({{0, 2}}, seen)
    assert.equal(2, trainer.global_step)
  end)

  it("ModelCheckpoint and EarlyStopping then act at each validation, as in Lightning", function()
    local es = L.callbacks.EarlyStopping{monitor = "val_loss", patience = 100}
    local ckpt = L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", monitor = "val_loss", save_top_k = -1,
      filename = "{epoch}-{step}"}
    local checks = 0
    local run_check = es._run_check
    es._run_check = function(...) checks = checks + 1 return run_check(...) end
    fit(dir, {max_epochs = 1, val_check_interval = 0.5, enable_checkpointing = true}, 4, {es, ckpt})
    assert.equal(2, checks)   -- patience counts validation checks
    assert.is_truthy(exists(dir .. "/ckpt/epoch=0-step=2.safetensors"))
    assert.is_truthy(exists(dir .. "/ckpt/epoch=0-step=4.safetensors"))
  end)

  it("rejects values Lightning rejects", function()
    for _, case in ipairs {{0, "val_check_interval must be a fraction"}, {1.5, "got 1.5"}, {0.0, "got 0.0"},
      {-2, "got %-2"}, {"0.5", 'got "0%.5"'}} do
      local ok, err = pcall(L.Trainer, {logger = false, val_check_interval = case[1]})
      assert.is_false(ok)
      assert.matches(case[2], err)
    end
    local ok, err = pcall(fit, dir, {max_epochs = 1, val_check_interval = 5}, 3)
    assert.is_false(ok)
    assert.matches("val_check_interval = 5 must be at most the number of training batches %(3%)", err)
  end)
end)
