--- Where the fit loop is, for checkpoints (the `loops` section) and for resuming from them.
-- At the start of each epoch and after each optimizer step the loop marks a good state: the epoch,
-- the batches done, the generator's state at the epoch's start and now, the global step, the
-- epoch's running sums (the training Results: logged means and metric objects' states) and a copy
-- of the module's buffers (BatchNorm's running statistics and num_batches_tracked, which each
-- training forward pass moves, also of a batch that then fails). A checkpoint saved inside an epoch
-- (after an error or an interruption, or by a validation inside the epoch) holds that state, so that
-- resuming from it replays no batch twice, the epoch's train metrics cover all of its batches, and
-- the run ends bit for bit where the uninterrupted one ends. A checkpoint saved once the epoch's
-- batches are done (validation at its end, on_train_epoch_end) resumes at the next epoch.
--   loops = {epoch, epoch_finished[, plateau_pending, callback_metrics]}  the epoch's batches are done
-- plateau_pending: saved in the epoch's end before its ReduceLROnPlateau step, which the resumed run
-- takes first, on the callback_metrics saved with it.
--   loops = {epoch, epoch_finished = false, batches_done, epoch_start_rng, rng, validated, results}
-- validated: the validation due after batches_done already ran (its checkpoint came from it).
local L = require "lightning"

local loop_state = {}

-- The buffers to keep a copy of: {name, tensor, copy} for each of the module's buffers.
local function buffer_copies(module, previous)
  local list, old = {}, {}
  for _, b in ipairs(previous or {}) do old[b.name] = b end
  for name, t in module:named_buffers() do
    local b = old[name]
    if not (b and b.tensor == t and b.copy:size() == t:size()) then b = {name = name, tensor = t, copy = t:clone()} end
    list[#list + 1] = b
  end
  return list
end

-- Two records used in turn, so that the good state is replaced in one assignment.
local function fill(record, trainer, batches_done, epoch_start_rng)
  record.epoch, record.batches_done, record.epoch_start_rng = trainer.current_epoch, batches_done, epoch_start_rng
  record.rng, record.global_step, record.validated = L.get_rng_state(), trainer.global_step, false
  record.results = trainer._results:state_dict()
  for _, b in ipairs(record.buffers) do b.copy:copy(b.tensor) end
  return record
end

--- At the start of an epoch (after skipping what a checkpoint had done): the first good state.
function loop_state.start_epoch(trainer, batches_done, epoch_start_rng)
  local module = trainer.lightning_module
  local spare = trainer._spare_state or {}
  spare.buffers = buffer_copies(module, spare.buffers)
  local good = trainer._good_state or {}
  good.buffers = buffer_copies(module, good.buffers)
  trainer._spare_state = good
  trainer._good_state = fill(spare, trainer, batches_done, epoch_start_rng)
end

--- After an optimizer step: batches_done batches of the epoch are done.
function loop_state.mark(trainer, batches_done)
  local good = trainer._good_state
  trainer._good_state = fill(trainer._spare_state, trainer, batches_done, good.epoch_start_rng)
  trainer._spare_state = good
end

--- After a validation inside the epoch that followed batch batches_done: when nothing was trained since
-- the good state, that validation is part of it (with the generator as the validation left it).
function loop_state.validated(trainer, batches_done)
  local good = trainer._good_state
  if good and good.batches_done == batches_done then
    good.validated, good.rng = true, L.get_rng_state()
  end
end

--- What a checkpoint saved now records: the loops section, the buffers to save instead of the
-- module's (a state inside an epoch), and the global step. after_fault: the checkpoint of a failure or
-- an interruption, which is always the good state (also in the epoch's end, whose hooks, logging and
-- plateau scheduler step the resumed run then does again).
function loop_state.dump(trainer, after_fault)
  local good = trainer._good_state
  if not good or (trainer._epoch_finished and not after_fault) then
    local loops = {epoch = trainer.current_epoch, epoch_finished = trainer._epoch_finished == true}
    if trainer._epoch_finished and trainer._plateau_pending then
      -- saved before the epoch's ReduceLROnPlateau step: the resumed run takes it, on these metrics
      loops.plateau_pending, loops.callback_metrics = true, {}
      for name, v in pairs(trainer.callback_metrics) do
        if type(v) == "number" then loops.callback_metrics[name] = v end
      end
    end
    return loops, nil, trainer.global_step
  end
  local loops = {epoch = good.epoch, epoch_finished = false, batches_done = good.batches_done,
    epoch_start_rng = good.epoch_start_rng, rng = good.rng, validated = good.validated, results = good.results}
  if trainer._validation_complete and trainer._validating_after == good.batches_done then
    -- saved by the validation that follows the good state, once it is done (ModelCheckpoint at
    -- on_validation_end): resuming goes on after it
    loops.validated, loops.rng = true, L.get_rng_state()
  end
  local buffers = {}
  for _, b in ipairs(good.buffers) do buffers[b.name] = b.copy end
  return loops, buffers, good.global_step
end

-- ---- reading it back ----

local function field_error(path, field, expected, value)
  local shown = type(value) == "string" and ("%q"):format(value) or tostring(value)
  error(("checkpoint %s: field loops.%s must be %s, got %s"):format(path, field, expected, shown), 0)
end

local function check_integer(path, loops, field, optional)
  local v = loops[field]
  if v == nil and optional then return end
  if math.type(v) ~= "integer" or v < 0 then field_error(path, field, "an integer >= 0", v) end
end

local function check_kind(path, loops, field, kind)
  local v = loops[field]
  if v ~= nil and type(v) ~= kind then field_error(path, field, "a " .. kind .. " or absent", v) end
end

--- Where a checkpoint's loops section resumes: {epoch = the epoch to run (the number of finished
-- ones), batches_done, epoch_start_rng, rng, validated, results} (batches_done nil: at the epoch's
-- start). Fields of the wrong type are errors naming the file and the field.
function loop_state.position(loops, path)
  check_integer(path, loops, "epoch")
  check_kind(path, loops, "epoch_finished", "boolean")
  check_integer(path, loops, "batches_done", true)
  check_kind(path, loops, "epoch_start_rng", "string")
  check_kind(path, loops, "rng", "string")
  check_kind(path, loops, "validated", "boolean")
  check_kind(path, loops, "results", "table")
  check_kind(path, loops, "plateau_pending", "boolean")
  check_kind(path, loops, "callback_metrics", "table")
  if loops.batches_done == nil then
    return {epoch = loops.epoch + (loops.epoch_finished and 1 or 0),
      plateau_pending = loops.epoch_finished and loops.plateau_pending == true or nil, callback_metrics = loops.callback_metrics}
  end
  if loops.epoch_finished then field_error(path, "epoch_finished", "false with batches_done", true) end
  return {epoch = loops.epoch, batches_done = loops.batches_done, epoch_start_rng = loops.epoch_start_rng,
    rng = loops.rng, validated = loops.validated == true, results = loops.results}
end

--- "epoch 2" or "epoch 1 after batch 3": where a position continues.
function loop_state.describe(position, global_step)
  local where = position.batches_done and position.batches_done > 0
    and ("epoch %d after batch %d"):format(position.epoch, position.batches_done) or ("epoch %d"):format(position.epoch)
  return ("%s (global step %d)"):format(where, global_step)
end

return loop_state
