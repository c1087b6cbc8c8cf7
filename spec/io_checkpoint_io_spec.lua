-- CheckpointIO (lightning/io/): the strategy writes, reads and removes checkpoint files through
-- strategy.checkpoint_io, by default the safetensors format; another one set on a strategy is used for
-- every save, removal and load of a run.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local fs = require "lightning.util.fs"
local CheckpointIO = require "lightning.io.checkpoint_io"
local SafetensorsCheckpointIO = require "lightning.io.safetensors_checkpoint_io"
local Single = require "lightning.strategies.single"

describe("CheckpointIO", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("is a base class: saving and loading are its subclasses'", function()
    local io = CheckpointIO()
    assert.matches("CheckpointIO:save_checkpoint is not implemented", H.error_of(io.save_checkpoint, io, {}, "x"))
    assert.matches("CheckpointIO:load_checkpoint is not implemented", H.error_of(io.load_checkpoint, io, "x"))
    local path = dir .. "/f"
    H.write_file(path, "x")
    io:remove_checkpoint(nil)
    io:remove_checkpoint("")
    assert.is_true(fs.exists(path))
    io:remove_checkpoint(path)
    assert.is_false(fs.exists(path))
  end)

  it("is a SafetensorsCheckpointIO on every strategy unless one is set", function()
    local s = Single()
    assert.is_true(L.class.is_instance(s.checkpoint_io, SafetensorsCheckpointIO))
    local io = SafetensorsCheckpointIO()
    local ckpt = {format = io.FORMAT, format_version = io.VERSION, epoch = 3, global_step = 7,
      state_dict = {w = L.tensor({1, 2, 3})}, hparams = {lr = 0.5, name = "x"}, optimizer_states = {},
      lr_schedulers = {}, callbacks = {}, loops = {epoch = 3, epoch_finished = true}}
    io:save_checkpoint(ckpt, dir .. "/c.safetensors")
    local back = io:load_checkpoint(dir .. "/c.safetensors")
    assert.same({3, 7, {lr = 0.5, name = "x"}, {epoch = 3, epoch_finished = true}},
      {back.epoch, back.global_step, back.hparams, back.loops})
    H.assert_close(back.state_dict.w, ckpt.state_dict.w, 0)
    assert.equal(io.FORMAT, io.read_metadata(dir .. "/c.safetensors").format)
    L.save_safetensors(dir .. "/w.safetensors", {w = L.tensor({1})})   -- weights alone
    assert.matches("is not a lightning checkpoint", H.error_of(io.load_checkpoint, io, dir .. "/w.safetensors"))
  end)

  it("set on a strategy writes, removes and reads the run's checkpoints", function()
    local Recording = L.class("RecordingIO", SafetensorsCheckpointIO)
    local calls = {}
    for _, m in ipairs {"save_checkpoint", "remove_checkpoint", "load_checkpoint"} do
      Recording[m] = function(self, ...)
        calls[#calls + 1] = m
        return SafetensorsCheckpointIO[m](self, ...)
      end
    end
    local function fit(ckpt_path, max_epochs)
      local strategy = Single()
      strategy.checkpoint_io = Recording()
      L.manual_seed(2)
      local trainer = L.Trainer(S.quiet(dir, {strategy = strategy, max_epochs = max_epochs,
        enable_checkpointing = true,
        callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt"}}}))
      output.capture(trainer.fit, trainer, S.Regression{noise = false}(3), S.Loader(S.regression_batches(2, 4, 3, 1)),
        nil, {ckpt_path = ckpt_path})
      return trainer
    end
    local trainer = fit(nil, 2)
    -- (the second epoch's checkpoint replaces the first's: save_top_k = 1 without a monitor)
    assert.same({"save_checkpoint", "save_checkpoint", "remove_checkpoint"}, calls)
    local best = trainer.checkpoint_callback.best_model_path
    assert.is_true(fs.exists(best))
    calls = {}
    fit(best, 3)
    assert.equal("load_checkpoint", calls[1])
  end)
end)
