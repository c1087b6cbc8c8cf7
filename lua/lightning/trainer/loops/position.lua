--- A checkpoint's `loops` section (what trainer.fit_loop:state_dict() gives), read back: where it
-- resumes. The section is flat, one table for the fit loop and its epoch loop:
--   loops = {epoch, epoch_finished[, plateau_pending, callback_metrics]}  the epoch's batches are done
-- plateau_pending: saved in the epoch's end before its ReduceLROnPlateau step, which the resumed run
-- takes first, on the callback_metrics saved with it.
--   loops = {epoch, epoch_finished = false, batches_done, epoch_start_rng, rng, validated, results}
-- validated: the validation due after batches_done already ran (its checkpoint came from it).
-- The strategy adds samples_done when it saves and turns it back into batches_done once the resumed
-- run's training loader is known (strategies/strategy.lua): another batch size resumes at the same sample.
local position = {}

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
-- ones), batches_done, epoch_start_rng, rng, device_rng, validated, results} (batches_done nil: at the epoch's
-- start). Fields of the wrong type are errors naming the file and the field.
function position.of(loops, path)
  check_integer(path, loops, "epoch")
  check_kind(path, loops, "epoch_finished", "boolean")
  check_integer(path, loops, "batches_done", true)
  check_kind(path, loops, "epoch_start_rng", "string")
  check_kind(path, loops, "rng", "string")
  check_kind(path, loops, "device_rng", "string")
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
    rng = loops.rng, device_rng = loops.device_rng, validated = loops.validated == true, results = loops.results}
end

--- "epoch 2" or "epoch 1 after batch 3": where a position continues.
function position.describe(where, global_step)
  local text = where.batches_done and where.batches_done > 0
    and ("epoch %d after batch %d"):format(where.epoch, where.batches_done) or ("epoch %d"):format(where.epoch)
  return ("%s (global step %d)"):format(text, global_step)
end

return position
