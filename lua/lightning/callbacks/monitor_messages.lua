--- What a callback or a scheduler says about a monitored metric that is not logged (ModelCheckpoint's
-- and EarlyStopping's monitor, a ReduceLROnPlateau's): the logged names, a "did you mean", and the
-- error that marks the run's failure as a mistake in the configuration. lightning.trainer.monitors
-- decides when monitors are checked.
local closest = require "lightning.util.closest"

local messages = {}

--- The sorted names of a set, joined ("(none)" when empty).
function messages.names_text(names)
  local list = {}
  for name in pairs(names) do list[#list + 1] = name end
  table.sort(list)
  return #list > 0 and table.concat(list, ", ") or "(none)"
end

--- ' (did you mean "val_acc"?)' for a suggestion, "" for none.
function messages.did_you_mean(near)
  return near and (" (did you mean %q?)"):format(near) or ""
end

--- The closest logged name to a monitor that is not logged, or nil.
function messages.suggestion(monitor, names, opts)
  return closest.suggestion(monitor, names, opts)
end

--- Raises a monitor's message as a configuration error: the Trainer saves no on_exception checkpoint
-- for it (trainer._configuration_error), since resuming from one would fail alike.
function messages.fail(trainer, message)
  if trainer then trainer._configuration_error = true end
  error(message, 0)
end

return messages
