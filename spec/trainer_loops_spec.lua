-- The Trainer's loops as objects (lightning/trainer/loops/): their progress counters after a run, the
-- loop that is active in each hook, the fit loop's state_dict (a checkpoint's loops section) inside an
-- epoch and in its end, and load_state_dict handing a position inside an epoch to the epoch loop.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local progress = require "lightning.trainer.loops.progress"

describe("loop progress", function()
  it("counts ready, started, processed and completed over the loop's life and its current run", function()
    local p = progress.Progress()
    p:increment_ready(); p:increment_started(); p:increment_processed(); p:increment_completed()
    p:increment_ready()
    assert.same({ready = 2, started = 1, processed = 1, completed = 1}, p.total)
    p:reset_on_run()
    assert.same({ready = 0, started = 0, processed = 0, completed = 0}, p.current)
    assert.same({ready = 2, started = 1, processed = 1, completed = 1}, p.total)
    p:set_completed(3)
    assert.same({ready = 3, started = 3, processed = 3, completed = 3}, p.current)
    assert.same({ready = 3, started = 3, processed = 3, completed = 3}, p.total)
  end)

  it("gives its counters as a table and takes them back", function()
    local b = progress.BatchProgress()
    b:increment_ready(); b:increment_started()
    b.is_last_batch = true
    local back = progress.BatchProgress()
    back:load_state_dict(b:state_dict())
    assert.same(b:state_dict(), back:state_dict())
    assert.is_true(back.is_last_batch)
    back:reset_on_run()
    assert.is_false(back.is_last_batch)
  end)
end)

describe("Trainer loops", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  -- Fits a regression for two epochs of 4 batches with 2 validation batches; `methods` are added to the
  -- module, `callbacks` to the Trainer.
  local function fit(methods, callbacks)
    L.manual_seed(5)
    local Regression = S.Regression{methods = methods}
    local model = Regression(3)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 2, callbacks = callbacks}))
    local batches = S.regression_batches(6, 4, 3, 1)
    trainer:fit(model, S.Loader({batches[1], batches[2], batches[3], batches[4]}), S.Loader({batches[5], batches[6]}))
    return trainer
  end

  it("are the Trainer's: fit_loop with its epoch_loop, validate_loop (also fit's), test_loop, predict_loop", function()
    local trainer = L.Trainer(S.quiet(dir))
    assert.equal(trainer.validate_loop, trainer.fit_loop.epoch_loop.val_loop)
    assert.equal("test", trainer.test_loop.stage)
    assert.equal("predict", trainer.predict_loop.stage)
    assert.is_nil(trainer.active_loop)
  end)

  it("count the epochs and batches a fit ran", function()
    local trainer = fit()
    local fit_loop, epoch_loop = trainer.fit_loop, trainer.fit_loop.epoch_loop
    assert.equal(2, trainer.current_epoch)
    assert.equal(2, fit_loop.epoch_progress.total.completed)
    assert.equal(2, fit_loop.epoch_progress.current.completed)
    assert.equal(4, epoch_loop.batch_progress.current.completed)
    assert.equal(8, epoch_loop.batch_progress.total.completed)
    assert.equal(8, epoch_loop.batch_progress.total.processed)
    assert.is_true(epoch_loop.batch_progress.is_last_batch)
    -- the sanity check's 2 batches, then 2 after each epoch
    assert.equal(6, trainer.validate_loop.batch_progress.total.completed)
    assert.equal(2, trainer.validate_loop.batch_progress.current.completed)
    local other = L.Trainer(S.quiet(dir))
    other.validate_loop:load_state_dict(trainer.validate_loop:state_dict())
    assert.same(trainer.validate_loop.batch_progress:state_dict(), other.validate_loop.batch_progress:state_dict())
    assert.same({}, other.fit_loop.epoch_loop:state_dict())   -- (no epoch ran: no good state)
  end)

  it("make the loop that runs the active one, with the one around it as its outer loop", function()
    local seen = {}
    local function note(where, trainer)
      local loop = trainer.active_loop
      seen[#seen + 1] = {where, loop == trainer.fit_loop.epoch_loop and "epoch" or loop == trainer.validate_loop
        and "val" or tostring(loop), loop ~= nil and loop.outer == trainer.fit_loop.epoch_loop}
    end
    local hook = {
      on_fit_start = function(_, trainer) note("on_fit_start", trainer) end,
      on_validation_start = function(_, trainer) note("on_validation_start", trainer) end,
      on_train_epoch_start = function(_, trainer) note("on_train_epoch_start", trainer) end,
      on_train_epoch_end = function(_, trainer) note("on_train_epoch_end", trainer) end,
    }
    local trainer = fit(nil, {hook})
    assert.same({"on_fit_start", "nil", false}, seen[1])
    assert.same({"on_validation_start", "val", false}, seen[2])     -- (the sanity check)
    assert.same({"on_train_epoch_start", "epoch", false}, seen[3])
    assert.same({"on_validation_start", "val", true}, seen[4])
    assert.same({"on_train_epoch_end", "epoch", false}, seen[5])
    assert.equal(trainer.fit_loop.epoch_loop, trainer.active_loop)
  end)

  it("give the checkpoint's loops section: the good state inside an epoch, the next epoch in its end", function()
    local inside, at_end
    local hook = {
      on_train_batch_end = function(_, trainer, _, _, _, batch_idx)
        if trainer.current_epoch == 1 and batch_idx == 2 then inside = trainer.fit_loop:state_dict() end
      end,
      on_train_epoch_end = function(_, trainer)
        if trainer.current_epoch == 1 then at_end = trainer.fit_loop:state_dict() end
      end,
    }
    fit(nil, {hook})
    assert.same({1, false, 2, false}, {inside.epoch, inside.epoch_finished, inside.batches_done, inside.validated})
    assert.is_string(inside.epoch_start_rng)
    assert.is_table(inside.results.entries)
    assert.same({epoch = 1, epoch_finished = true}, at_end)
  end)

  it("save the state after the epoch between epochs: a checkpoint saved after fit resumes at the next epoch", function()
    local output = require "lightning.util.output"
    local batches = S.regression_batches(4, 4, 3, 1)
    local function run(max_epochs, ckpt_path, save_to)
      L.manual_seed(5)
      local model = S.Regression{scheduler = true}(3)
      local trainer = L.Trainer(S.quiet(dir, {max_epochs = max_epochs}))
      local text = output.capture(trainer.fit, trainer, model, S.Loader(batches), S.Loader({batches[1]}),
        {ckpt_path = ckpt_path})
      if save_to then trainer:save_checkpoint(save_to) end
      return model, text
    end
    local straight = run(3)
    local path = dir .. "/after_fit.safetensors"
    run(2, nil, path)
    local resumed, text = run(3, path)
    assert.matches("continuing at epoch 2 %(global step 8%)", text)
    for name, t in pairs(straight:state_dict()) do
      assert.same(t:totable(), resumed:state_dict()[name]:totable(), name)   -- bit for bit
    end
  end)

  it("take a loops section back: the epoch to run, and the batches done inside it for the epoch loop", function()
    local trainer = L.Trainer(S.quiet(dir))
    local fit_loop = trainer.fit_loop
    local where = fit_loop:load_state_dict({epoch = 1, epoch_finished = false, batches_done = 3, rng = "r",
      validated = true, results = {entries = {}}}, "a.safetensors")
    assert.same({1, 3}, {trainer.current_epoch, where.batches_done})
    assert.same({batches_done = 3, rng = "r", validated = true, results = {entries = {}}}, fit_loop.epoch_loop.resume)
    assert.equal(1, fit_loop.epoch_progress.total.completed)
    fit_loop:load_state_dict({epoch = 1, epoch_finished = true}, "b.safetensors")
    assert.equal(2, trainer.current_epoch)
    assert.is_nil(fit_loop.epoch_loop.resume)
    assert.matches("checkpoint c.safetensors: field loops.batches_done must be an integer >= 0, got %-1",
      H.error_of(fit_loop.load_state_dict, fit_loop, {epoch = 0, batches_done = -1}, "c.safetensors"))
  end)
end)
