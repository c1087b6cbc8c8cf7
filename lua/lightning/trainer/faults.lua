--- What the Trainer does when a run fails or is interrupted (Ctrl-C, SIGTERM): the callbacks'
-- on_exception, a checkpoint of the epoch loop's last good state (<checkpoint dir>/on_exception.safetensors,
-- lightning.trainer.loops.good_state), the loggers finalized as "failed", the strategy torn down, and the
-- error raised again saying where it happened:
--   Trainer:fit failed in training_step at epoch 1, batch 3 (global step 7): <message>
--   Trainer:fit failed in on_validation_epoch_end of callback 2 (PerClassAccuracy) at epoch 0, ...
--   Trainer:fit interrupted by SIGINT (Ctrl-C) at epoch 1 after batch 3 (global step 7)
-- followed by where the state was saved and how to resume.
local checkpoint = require "lightning.trainer.checkpoint"
local hooks = require "lightning.trainer.hooks"
local interrupt = require "lightning.trainer.interrupt"
local position = require "lightning.trainer.loops.position"
local fs = require "lightning.util.fs"

local faults = {}

--- The xpcall handler of a run: the message, the traceback where it was raised, the error itself.
function faults.capture(e)
  return {message = type(e) == "table" and e.message or tostring(e), traceback = debug.traceback(tostring(e), 2),
    original = e}
end

-- The fault checkpoint, when there is a good state to save. Returns its path, or nil and why not.
local function save_fault_checkpoint(trainer)
  local epoch_loop = trainer.fit_loop.epoch_loop
  if trainer.state.fn ~= "fit" or not epoch_loop.good_state.record or trainer.fast_dev_run then return nil end
  -- a mistake in the configuration (a monitor not logged): resuming from the state would fail alike
  if trainer._configuration_error then return nil end
  local cb = trainer.checkpoint_callback
  if not (cb and cb.dirpath) then return nil end
  if not trainer.is_global_zero then
    -- only global rank 0 writes checkpoints: say nothing of a file this process cannot know was written
    return nil, ("checkpoints are written by global rank 0 and this is rank %d (rank 0's own error says " ..
      "whether it saved the last good state)"):format(trainer.global_rank)
  end
  if epoch_loop.stepping then
    -- the weights (and optimizer) are part way through a step: no state between two steps is exact
    return nil, "the error came inside the optimizer step, so no exact state can be saved; resume from the last " ..
      "checkpoint instead"
  end
  local path = fs.join(cb.dirpath, "on_exception" .. checkpoint.EXTENSION)
  local ok, err = pcall(function() trainer.strategy:save_checkpoint(checkpoint.dump(trainer, true), path) end)
  if ok then return path end
  return nil, "saving the last good state failed too: " .. tostring(err)
end

-- " in training_step" or " in on_validation_epoch_end of callback 2 (PerClassAccuracy)".
local function where_it_happened(trainer)
  local fx = trainer._current_fx
  if not fx then return "" end
  local index = trainer._current_callback
  local cb = index and trainer.callbacks[index]
  if cb then return (" in %s of %s"):format(fx, hooks.callback_name(cb, index)) end
  return " in " .. fx
end

-- The loop whose batch the run was at: the active loop, or the one around it while the active one has
-- not taken a batch yet (a validation inside an epoch that failed in on_validation_start).
local function batch_loop(trainer)
  local loop = trainer.active_loop
  while loop and loop.batch_idx == nil do loop = loop.outer end
  return loop
end

local function where_in_fit(trainer, signal)
  local good = trainer.fit_loop.epoch_loop.good_state.record
  if trainer.state.fn ~= "fit" or not good then return "" end
  if signal then
    return " at " .. position.describe({epoch = good.epoch, batches_done = good.batches_done}, good.global_step)
  end
  local loop = batch_loop(trainer)
  -- (the training epoch loop's are "batch"; "train batch 0" before any batch)
  local batch = not loop and "train batch" or loop.stage and (loop.stage .. " batch") or "batch"
  return (" at epoch %d, %s %d (global step %d)"):format(trainer.current_epoch, batch, loop and loop.batch_idx or 0,
    trainer.global_step)
end

--- Runs the fault handling for a run `fn` ("fit", ...) that raised `info` (from capture), then raises
-- the error that says what happened.
function faults.handle(trainer, info, fn)
  local signal = interrupt.signal_of(info.original)
  local what = signal and (" interrupted by %s%s"):format(signal, signal == "SIGINT" and " (Ctrl-C)" or "")
    or (" failed" .. where_it_happened(trainer))
  local text = ("Trainer:%s%s%s"):format(fn, what, where_in_fit(trainer, signal))
  if not signal then text = text .. ": " .. info.message end
  trainer.state.status = "interrupted"
  trainer.interrupted = true
  trainer.interrupted_by = signal
  trainer.last_traceback = info.traceback
  for _, cb in ipairs(trainer.callbacks) do
    if cb.on_exception then pcall(cb.on_exception, cb, trainer, trainer.lightning_module, info.message) end
  end
  local saved, why_not = save_fault_checkpoint(trainer)
  pcall(trainer.strategy.teardown, trainer.strategy)
  if trainer.is_global_zero then
    for _, lg in ipairs(trainer.loggers) do
      if type(lg.finalize) == "function" then pcall(lg.finalize, lg, "failed") end
    end
  end
  if trainer.progress_bar_callback then pcall(trainer.progress_bar_callback.abort, trainer.progress_bar_callback) end
  if saved then
    local by = trainer.world_size > 1 and " (by global rank 0)" or ""
    text = text .. ("\nThe last good state was saved to %s%s; resume with ckpt_path = \"last\" or that path.")
      :format(saved, by)
  elseif why_not then
    text = text .. "\nNothing was saved: " .. why_not .. "."
  end
  interrupt.unwatch(signal ~= nil)
  error(text, 0)
end

return faults
