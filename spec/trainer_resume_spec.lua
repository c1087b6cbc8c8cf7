-- Resuming reproduces the uninterrupted run bit for bit: after an error (also one after the forward
-- pass, which moved BatchNorm's statistics), after Ctrl-C (SIGINT, held back to the end of the batch),
-- from a checkpoint a validation inside the epoch saved; the interrupted epoch's train metrics cover
-- the whole epoch. Resuming says what it restored; with nothing left to train it says so and makes no
-- new version folder; ckpt_path = "last" takes the experiment's newest version.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local cjson = require "cjson"

local function classifier()
  return S.conv_classifier{batchnorm1d = true, scheduler = "step", step_size = 1, gamma = 0.8}
end

local TRAIN = S.band_images(48, 300, {classes = 3, channels = 1, size = 8, step = 2, band = 3, noise = 0.8})
local VAL = S.band_images(16, 301, {classes = 3, channels = 1, size = 8, step = 2, band = 3, noise = 0.8})
local EPOCHS = 3

-- Fits; opts: fail = function(trainer, epoch, batch_idx, where) called in training_step ("step") and in
-- backward_step ("backward"), ckpt_path, trainer (more Trainer options), callbacks.
local function fit(dir, opts)
  opts = opts or {}
  L.manual_seed(77)
  local model = classifier()
  if opts.fail then
    local step, backward = model.training_step, model.backward_step
    model.training_step = function(self, batch, i)
      opts.fail(self.trainer, self.trainer.current_epoch, i, "step")
      return step(self, batch, i)
    end
    model.backward_step = function(self, batch, outputs)
      opts.fail(self.trainer, self.trainer.current_epoch, self.trainer.fit_loop.epoch_loop.batch_idx, "backward")
      return backward(self, batch, outputs)
    end
  end
  local logger = opts.logger or S.MemoryLogger()
  local callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true}}
  for _, cb in ipairs(opts.callbacks or {}) do callbacks[#callbacks + 1] = cb end
  local o = S.quiet(dir, {max_epochs = EPOCHS, enable_checkpointing = true, logger = logger, callbacks = callbacks})
  for k, v in pairs(opts.trainer or {}) do o[k] = v end
  local trainer = L.Trainer(o)
  local text = output.capture(trainer.fit, trainer, model, L.data.DataLoader(TRAIN, {batch_size = 8, shuffle = true}),
    L.data.DataLoader(VAL, {batch_size = 8}), {ckpt_path = opts.ckpt_path})
  return model, trainer, logger, text
end

-- The epoch values the logger got, by epoch: {[epoch] = {train_acc = ..., ...}} (the last record wins).
local function epoch_values(logger)
  local by_epoch = {}
  for _, r in ipairs(logger.records) do
    if r.metrics.train_acc or r.metrics.train_loss_epoch then
      by_epoch[r.metrics.epoch] = by_epoch[r.metrics.epoch] or {}
      for k, v in pairs(r.metrics) do by_epoch[r.metrics.epoch][k] = v end
    end
  end
  return by_epoch
end

local function same_state(a, b)
  local sa, sb = a:state_dict(), b:state_dict()
  local names = 0
  for name, t in pairs(sa) do
    names = names + 1
    assert.same(t:totable(), sb[name]:totable(), name)   -- bit for bit
  end
  assert.is_true(names > 10)
end

describe("Resuming", function()
  local dir, straight, straight_logger
  setup(function()
    local d = H.tmpdir()
    straight, _, straight_logger = fit(d)
    H.rmdir(d)
  end)
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function assert_like_straight(model, logger_before, logger_after)
    same_state(straight, model)
    local want = epoch_values(straight_logger)
    local got = epoch_values(logger_before)
    for e, values in pairs(epoch_values(logger_after)) do got[e] = values end
    for epoch = 0, EPOCHS - 1 do
      for _, name in ipairs {"train_acc", "train_f1", "train_loss_epoch", "val_acc", "val_loss"} do
        assert.equal(want[epoch][name], got[epoch][name], ("%s at epoch %d"):format(name, epoch))
      end
    end
  end

  it("after an error in the backward pass: BatchNorm's statistics and num_batches_tracked as uninterrupted", function()
    local failed = false
    local function fail(trainer, epoch, i, where)
      if not failed and epoch == 1 and i == 3 and where == "backward" then failed = true error("boom after the forward pass") end
    end
    local before = S.MemoryLogger()
    local err = H.error_of(fit, dir, {fail = fail, logger = before})
    assert.matches("Trainer:fit failed in backward_step at epoch 1, batch 3 %(global step 8%): .*boom after the forward", err)
    local _, meta = L.load_safetensors(dir .. "/on_exception.safetensors")
    local loops = cjson.decode(meta.loops)
    assert.same({1, 2, false}, {loops.epoch, loops.batches_done, loops.epoch_finished})
    assert.equal("8", meta.global_step)
    local model, trainer, after, text = fit(dir, {ckpt_path = "last"})
    assert.matches("Restored " .. dir .. "/on_exception.safetensors: continuing at epoch 1 after batch 2 %(global step 8%)", text)
    assert.equal(EPOCHS, trainer.current_epoch)
    assert_like_straight(model, before, after)
  end)

  it("after an error in the epoch's end (its batches and validation done): the end runs again", function()
    local failed = false
    local breaker = {on_train_epoch_end = function(_, trainer)
      if not failed and trainer.current_epoch == 1 then failed = true error("end of epoch broke") end
    end}
    local before = S.MemoryLogger()
    local err = H.error_of(fit, dir, {logger = before, callbacks = {breaker}})
    assert.matches("failed in on_train_epoch_end of callback 1 at epoch 1", err)
    local loops = cjson.decode(select(2, L.load_safetensors(dir .. "/on_exception.safetensors")).loops)
    assert.same({1, 6, false, true}, {loops.epoch, loops.batches_done, loops.epoch_finished, loops.validated})
    local model, _, after, text = fit(dir, {ckpt_path = "last"})
    assert.matches("continuing at epoch 1 after batch 6", text)
    assert_like_straight(model, before, after)
  end)

  it("after an error inside an accumulation group: the group's batches run again, counted once", function()
    local acc = {trainer = {accumulate_grad_batches = 2}}
    local d = H.tmpdir()
    local reference, _, reference_logger = fit(d, acc)
    H.rmdir(d)
    local failed = false
    local before = S.MemoryLogger()
    H.error_of(fit, dir, {trainer = acc.trainer, logger = before, fail = function(_, epoch, i, where)
      if not failed and epoch == 1 and i == 4 and where == "backward" then failed = true error("boom") end
    end})
    local loops = cjson.decode(select(2, L.load_safetensors(dir .. "/on_exception.safetensors")).loops)
    assert.equal(2, loops.batches_done)          -- the last optimizer step; batch 3 is replayed
    local model, _, after = fit(dir, {ckpt_path = "last", trainer = acc.trainer})
    same_state(reference, model)
    local want, got = epoch_values(reference_logger), epoch_values(after)
    assert.equal(want[1].train_acc, got[1].train_acc)
    assert.equal(want[1].train_loss_epoch, got[1].train_loss_epoch)
  end)

  it("after an error inside the optimizer step: no state between two steps is saved, and the message says so", function()
    local model = S.Regression{scheduler = true, methods = {lr_scheduler_step = function(self)
      if self.trainer.global_step == 3 then error("scheduler broke") end
    end}}(3)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 2, enable_checkpointing = true,
      callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true}}}))
    local batches = S.regression_batches(3, 4, 3, 1)
    local err = H.error_of(output.capture, trainer.fit, trainer, model, S.Loader(batches))
    assert.matches("failed in lr_scheduler_step at epoch 0, batch 3 %(global step 3%): .*scheduler broke\n" ..
      "Nothing was saved: the error came inside the optimizer step, so no exact state can be saved; resume from the " ..
      "last checkpoint instead%.$", err)
    assert.is_nil(io.open(dir .. "/on_exception.safetensors"))
  end)

  it("after Ctrl-C: the batch ends, the state is saved, and the resumed run ends as the uninterrupted one", function()
    local pid = io.open("/proc/self/stat"):read("n")
    local sent = false
    local ctrl_c = {on_train_batch_end = function(_, trainer, _, _, _, batch_idx)
      if not sent and trainer.current_epoch == 1 and batch_idx == 3 then
        sent = true
        io.popen("kill -INT " .. pid):close()   -- (os.execute would ignore SIGINT while it waits)
      end
    end}
    local before = S.MemoryLogger()
    local trainer_of
    local err = H.error_of(function()
      local ok, e = pcall(fit, dir, {logger = before, callbacks = {ctrl_c, {setup = function(_, t) trainer_of = t end}}})
      if not ok then error(e, 0) end
    end)
    assert.matches("^Trainer:fit interrupted by SIGINT %(Ctrl%-C%) at epoch 1 after batch 3 %(global step 9%)\n" ..
      "The last good state was saved to " .. dir .. "/on_exception.safetensors; resume with ckpt_path = \"last\"", err)
    assert.equal("SIGINT", trainer_of.interrupted_by)
    assert.equal(3, cjson.decode(select(2, L.load_safetensors(dir .. "/on_exception.safetensors")).loops).batches_done)
    local model, _, after = fit(dir, {ckpt_path = "last"})
    assert_like_straight(model, before, after)
  end)

  it("from the checkpoint of a validation inside the epoch, at the batch after it", function()
    local every_half = {val_check_interval = 0.5}
    local d = H.tmpdir()
    local reference, ref_trainer, reference_logger = fit(d, {trainer = every_half})
    H.rmdir(d)
    -- a run that dies right after epoch 1's first validation; its last.safetensors is that validation's
    local before = S.MemoryLogger()
    H.error_of(fit, dir, {trainer = every_half, logger = before, fail = function(_, epoch, i, where)
      if epoch == 1 and i == 4 then error("killed") end
    end})
    os.remove(dir .. "/on_exception.safetensors")
    local loops = cjson.decode(select(2, L.load_safetensors(dir .. "/last.safetensors")).loops)
    assert.same({1, 3, false, true}, {loops.epoch, loops.batches_done, loops.epoch_finished, loops.validated})
    local model, trainer, after, text = fit(dir, {ckpt_path = "last", trainer = every_half})
    assert.matches("continuing at epoch 1 after batch 3", text)
    same_state(reference, model)
    assert.equal(ref_trainer.global_step, trainer.global_step)
    assert.equal(ref_trainer.checkpoint_callback.best_model_score, trainer.checkpoint_callback.best_model_score)
    local want, got = epoch_values(reference_logger), epoch_values(after)
    assert.equal(want[1].train_acc, got[1].train_acc)
    assert.equal(want[2].val_acc, got[2].val_acc)
  end)

  it("after an error during a validation inside the epoch: that validation runs again", function()
    local every_half = {val_check_interval = 0.5}
    local d = H.tmpdir()
    local reference, ref_trainer = fit(d, {trainer = every_half})
    H.rmdir(d)
    local failed = false
    local breaker = {on_validation_batch_end = function(_, trainer, _, _, _, batch_idx)
      if not failed and not trainer.sanity_checking and trainer.current_epoch == 1 and batch_idx == 2 then
        failed = true
        error("validation broke")
      end
    end}
    local err = H.error_of(fit, dir, {trainer = every_half, callbacks = {breaker}})
    assert.matches("failed in on_validation_batch_end of callback 1 at epoch 1, validation batch 2", err)
    local loops = cjson.decode(select(2, L.load_safetensors(dir .. "/on_exception.safetensors")).loops)
    assert.same({3, false}, {loops.batches_done, loops.validated})
    local model, trainer = fit(dir, {ckpt_path = "last", trainer = every_half})
    same_state(reference, model)
    assert.equal(ref_trainer.checkpoint_callback.best_model_score, trainer.checkpoint_callback.best_model_score)
  end)
end)

describe("Resuming at the next epoch", function()
  it("with a ReduceLROnPlateau scheduler takes the step the checkpoint was saved before (2 + 2 epochs as 4)", function()
    local function run(dir, epochs, ckpt)
      L.manual_seed(7)
      local model = S.conv_classifier{scheduler = "plateau", plateau_patience = 0, plateau_factor = 0.5, monitor = "val_acc"}
      local trainer = L.Trainer(S.quiet(dir, {max_epochs = epochs, enable_checkpointing = true,
        callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true}}}))
      output.capture(trainer.fit, trainer, model, L.data.DataLoader(TRAIN, {batch_size = 8, shuffle = true}),
        L.data.DataLoader(VAL, {batch_size = 8}), {ckpt_path = ckpt})
      return model, trainer
    end
    local a, b = H.tmpdir(), H.tmpdir()
    local straight, t1 = run(a, 4)
    run(b, 2)
    local loops = cjson.decode(select(2, L.load_safetensors(b .. "/last.safetensors")).loops)
    assert.is_true(loops.plateau_pending)
    assert.is_number(loops.callback_metrics.val_acc)
    local resumed, t2 = run(b, 4, "last")
    H.rmdir(a)
    H.rmdir(b)
    assert.equal(t1.optimizers[1].param_groups[1].lr, t2.optimizers[1].param_groups[1].lr)
    assert.is_true(t1.optimizers[1].param_groups[1].lr < 0.01)   -- the scheduler did reduce it
    same_state(straight, resumed)
  end)
end)

describe("Resuming from an experiment's versions", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function run(max_epochs, ckpt_path)
    L.manual_seed(5)
    local model = S.Regression{}(3)
    local logger = L.loggers.CSVLogger{save_dir = dir, name = "exp"}
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = max_epochs, logger = logger, enable_checkpointing = true,
      callbacks = {L.callbacks.ModelCheckpoint{save_last = true}}}))
    local batches = S.regression_batches(3, 4, 3, 1)
    local text = output.capture(trainer.fit, trainer, model, S.Loader({batches[1], batches[2]}), S.Loader({batches[3]}),
      {ckpt_path = ckpt_path})
    return trainer, text
  end
  local function versions()
    local names = {}
    for _, name in ipairs(L.core.io.listdir(dir .. "/exp")) do names[#names + 1] = name end
    return table.concat(names, " ")
  end

  it("take the newest version's last checkpoint, write a new version, and with nothing left make none", function()
    local t0 = run(2)
    assert.equal(dir .. "/exp/version_0/checkpoints", t0.checkpoint_callback.dirpath)
    local t1, text = run(3, "last")
    assert.equal(dir .. "/exp/version_0/checkpoints/last.safetensors", t1.ckpt_path)
    assert.matches("Restored " .. dir .. "/exp/version_0/checkpoints/last.safetensors: continuing at epoch 2 " ..
      "%(global step 4%)", text)
    assert.equal("version_0 version_1", versions())
    assert.equal(6, t1.global_step)
    -- nothing left: said, no version_2, nothing trained
    local t2, text2 = run(3, "last")
    assert.equal(dir .. "/exp/version_1/checkpoints/last.safetensors", t2.ckpt_path)
    assert.matches("Trainer:fit: nothing left to train: " .. dir .. "/exp/version_1/checkpoints/last.safetensors ends " ..
      "at epoch 3 %(global step 6%) and max_epochs = 3 is reached", text2)
    assert.is_true(t2.nothing_to_train)
    assert.equal(3, t2.current_epoch)
    assert.equal("version_0 version_1", versions())
    -- a newer version that holds no checkpoint yet does not hide the older ones
    L.core.io.mkdirs(dir .. "/exp/version_2")
    local t3 = run(4, "last")
    assert.equal(dir .. "/exp/version_1/checkpoints/last.safetensors", t3.ckpt_path)
    assert.equal(8, t3.global_step)
  end)

  it("take on_exception.safetensors over last.safetensors at the same step (it came after it)", function()
    local t = run(1)
    local folder = t.checkpoint_callback.dirpath
    local bytes = H.read_file(folder .. "/last.safetensors")
    H.write_file(folder .. "/on_exception.safetensors", bytes)
    assert.equal(folder .. "/on_exception.safetensors", require("lightning.trainer.checkpoint").find_last({folder}))
  end)

  it("say where they looked when there is none", function()
    local _, text = run(1, "last")
    assert.matches("ckpt_path = \"last\" but there is no last checkpoint in " .. dir .. "/exp/version_%*/checkpoints; " ..
      "starting from scratch", text)
  end)
end)
