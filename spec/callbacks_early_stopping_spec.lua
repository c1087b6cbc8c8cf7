-- EarlyStopping with PyTorch Lightning's rules: patience, min_delta, mode, strict, check_finite,
-- thresholds, when it checks, its state and its errors.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local EarlyStopping = L.callbacks.EarlyStopping

-- The module logs `score` = scores[epoch + 1] at each validation; returns the callback and trainer.
local function fit(dir, es_opts, scores, trainer_opts)
  local model = S.Regression{methods = {on_validation_epoch_end = function(self)
    if not self.trainer.sanity_checking then self:log("score", scores[self.trainer.current_epoch + 1]) end
  end}}(3)
  local es = EarlyStopping(es_opts)
  local opts = S.quiet(dir, {max_epochs = #scores, callbacks = {es}, num_sanity_val_steps = 0})
  for k, v in pairs(trainer_opts or {}) do opts[k] = v end
  local trainer = L.Trainer(opts)
  local batches = S.regression_batches(2, 4, 3, 1)
  local text = output.capture(trainer.fit, trainer, model, S.Loader({batches[1]}), S.Loader({batches[2]}))
  return es, trainer, text
end

describe("EarlyStopping", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("stops after `patience` checks without improvement (mode min)", function()
    local es, trainer = fit(dir, {monitor = "score", patience = 2}, {5, 4, 4.5, 4.2, 1, 1, 1})
    assert.equal(4, trainer.current_epoch)   -- epochs 0..3 ran; no improvement at 2 and 3
    assert.is_true(trainer.should_stop)
    assert.equal(3, es.stopped_epoch)
    assert.equal(4, es.best_score)
    assert.equal(2, es.wait_count)
  end)

  it("counts only improvements larger than min_delta (mode max)", function()
    local es, trainer = fit(dir, {monitor = "score", mode = "max", patience = 2, min_delta = 0.1},
      {0.5, 0.55, 0.58, 0.9, 0.95, 0.99, 1})
    -- 0.55 and 0.58 do not beat 0.5 by more than 0.1: stop after epoch 2
    assert.equal(3, trainer.current_epoch)
    assert.equal(0.5, es.best_score)
  end)

  it("accepts a negative min_delta as its size", function()
    local es = EarlyStopping{monitor = "score", min_delta = -0.1}
    assert.equal(-0.1, es.min_delta)   -- mode min: improvement means current + 0.1 < best
    assert.equal(0.1, EarlyStopping{monitor = "score", mode = "max", min_delta = -0.1}.min_delta)
  end)

  it("stops on a NaN or infinite metric with check_finite", function()
    local _, trainer, text = fit(dir, {monitor = "score", patience = 10, verbose = true}, {1, 0 / 0, 0.5})
    assert.equal(2, trainer.current_epoch)
    assert.matches("Monitored metric score = [-]?nan is not finite. Previous best value was 1.000. Signaling Trainer to stop.", text)
    local _, t2 = fit(dir, {monitor = "score", patience = 10, check_finite = false}, {1, 0 / 0, 0.5})
    assert.equal(3, t2.current_epoch)
  end)

  it("stops at stopping_threshold and divergence_threshold", function()
    local _, trainer, text = fit(dir, {monitor = "score", stopping_threshold = 0.2, verbose = true}, {1, 0.1, 0.05})
    assert.equal(2, trainer.current_epoch)
    assert.matches("Stopping threshold reached: score = 0.1 < 0.2", text)
    local _, t2, text2 = fit(dir, {monitor = "score", divergence_threshold = 10, verbose = true}, {1, 11, 0.5})
    assert.equal(2, t2.current_epoch)
    assert.matches("Divergence threshold reached: score = 11.0 > 10", text2)
  end)

  it("says what it sees with verbose = true", function()
    local _, _, text = fit(dir, {monitor = "score", patience = 1, verbose = true}, {2, 1.5, 1.6})
    assert.matches("Metric score improved. New best score: 2.000", text)
    assert.matches("Metric score improved by 0.500 >= min_delta = 0.0. New best score: 1.500", text)
    assert.matches("Monitored metric score did not improve in the last 1 records. Best score: 1.500. Signaling Trainer to stop.", text)
  end)

  it("is an error for a metric that was never logged, listing the ones that exist", function()
    local err = H.error_of(fit, dir, {monitor = "val_acc"}, {1})
    assert.matches("EarlyStopping: conditioned on metric \"val_acc\" which is not available; the metrics that exist are: score, train_loss, train_loss_epoch, train_loss_step, val_loss", err)
  end)

  it("only warns about a missing metric with strict = false", function()
    local _, trainer, text = fit(dir, {monitor = "val_acc", strict = false}, {1, 2})
    assert.equal(2, trainer.current_epoch)
    assert.matches("not available", text)
  end)

  it("counts validation checks when validation is not every epoch", function()
    local es, trainer = fit(dir, {monitor = "score", patience = 1}, {9, 5, 9, 6, 9, 7, 9, 8},
      {check_val_every_n_epoch = 2})
    -- checks at epochs 1 (5), 3 (6): one check without improvement stops
    assert.equal(4, trainer.current_epoch)
    assert.equal(5, es.best_score)
  end)

  it("does nothing in fast_dev_run", function()
    local es, trainer = fit(dir, {monitor = "score", patience = 0}, {1, 1, 1}, {fast_dev_run = true})
    assert.is_false(trainer.should_stop)
    assert.equal(math.huge, es.best_score)
  end)

  it("saves and restores its state", function()
    local es = EarlyStopping{monitor = "x"}
    es:load_state_dict({wait_count = 3, stopped_epoch = 7, best_score = 0.25, patience = 9})
    assert.same({wait_count = 3, stopped_epoch = 7, best_score = 0.25, patience = 9}, es:state_dict())
    assert.equal("EarlyStopping{monitor=x,mode=min}", es:state_key())
  end)

  local bad = {
    {{}, "EarlyStopping: monitor must be the name of a logged metric, got nil"},
    {{monitor = "x", mode = "up"}, "mode must be \"min\" or \"max\", got \"up\""},
    {{monitor = "x", patience = -1}, "patience must be an integer >= 0, got %-1"},
    {{monitor = "x", min_delta = "0.1"}, "min_delta must be a number, got \"0%.1\""},
    {{monitor = "x", patiense = 3}, "EarlyStopping: unknown option 'patiense' %(did you mean 'patience'%?%) %(known: .*patience"},
  }
  for i, case in ipairs(bad) do
    it("rejects bad options (" .. i .. ")", function()
      assert.matches(case[2], H.error_of(EarlyStopping, case[1]))
    end)
  end
end)
