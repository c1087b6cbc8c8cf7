--- The metrics that callbacks and schedulers monitor (ModelCheckpoint's and EarlyStopping's monitor,
-- a ReduceLROnPlateau's lr_scheduler monitor), checked as soon as the names that can be logged are
-- known, rather than where they are first used (at the end of the first epoch):
--   at the end of the sanity check (Lightning's num_sanity_val_steps), against what validation logged:
--     a monitor that is not logged but is a near miss of a name that is ("val_accuracy" for val_acc) is
--     an error with a "did you mean";
--   after the first training batch, against what validation and training logged: a near miss again,
--     and a monitor that nothing still to run can log (validation's names are known, and the user's
--     code has no on_train_epoch_end, nor a validation hook besides validation_step that may log
--     later, such as an on_validation_epoch_end that logs only when not sanity_checking) is an error
--     listing the logged names.
-- Anything else is checked where it is used, with the same message. A monitor not found is a mistake
-- in the configuration, not a fault of the run: the Trainer saves no on_exception checkpoint for it
-- (monitors.fail marks it), since resuming from one would fail alike.
local messages = require "lightning.callbacks.monitor_messages"

local monitors = {}

-- The library's Lua files share this prefix of their chunk names (".../lua/lightning/").
local this_file = debug.getinfo(1, "S").source
local LIBRARY = this_file:sub(1, #this_file - #"trainer/monitors.lua")

local function from_library(fn)
  local source = debug.getinfo(fn, "S").source
  return source:sub(1, #LIBRARY) == LIBRARY
end

-- (the messages: lightning.callbacks.monitor_messages)
monitors.names_text = messages.names_text
monitors.did_you_mean = messages.did_you_mean
monitors.suggestion = messages.suggestion
monitors.fail = messages.fail

-- What is monitored: {monitor, message = function(names, near), strict (a near miss is an error),
-- required (a name that cannot come any more is an error), extra (names that need no logging)}.
local function entries(trainer)
  local list = {}
  for _, cb in ipairs(trainer.callbacks) do
    if cb.is_monitoring_callback and type(cb.monitor) == "string" and type(cb.monitor_entry) == "function" then
      list[#list + 1] = cb:monitor_entry(trainer)
    end
  end
  for _, config in ipairs(trainer.lr_scheduler_configs or {}) do
    if config.reduce_on_plateau and type(config.monitor) == "string" then
      list[#list + 1] = {monitor = config.monitor, strict = config.strict, required = config.strict,
        message = function(names, near) return monitors.plateau_message(config.monitor, names, near) end}
    end
  end
  return list
end

--- ReduceLROnPlateau's message for a monitor that is not logged.
function monitors.plateau_message(monitor, names, near)
  return ("ReduceLROnPlateau conditioned on metric %s which is not available%s; available metrics are: %s")
    :format(monitor, monitors.did_you_mean(near), monitors.names_text(names))
end

local function check(trainer, names, final, rules)
  for _, e in ipairs(entries(trainer)) do
    if names[e.monitor] == nil and not (e.extra and e.extra[e.monitor]) then
      local near = monitors.suggestion(e.monitor, names, rules)
      if e.strict and (near or (final and e.required)) then monitors.fail(trainer, e.message(names, near)) end
    end
  end
end

local function keys(t)
  local set = {}
  for name in pairs(t) do set[name] = true end
  return set
end

--- At the end of the sanity check, before its metrics are cleared: validation's names are known.
function monitors.after_sanity_check(trainer)
  trainer._validation_names = keys(trainer.callback_metrics)
  -- (only near misses: training may still log a name unlike these, such as "loss" beside "val_loss")
  check(trainer, trainer._validation_names, false, {words = false})
end

-- The hooks where the user's code may log a name that the sanity check and the first batch did not
-- show: at the end of the training epoch, or in a validation hook that may log only outside the
-- sanity check.
local LATE_HOOKS = {"on_train_epoch_end", "on_validation_start", "on_validation_epoch_start",
  "on_validation_epoch_end", "on_validation_batch_start", "on_validation_batch_end"}

-- Whether the module or a callback has such a hook that the library does not define.
local function user_may_log_later(trainer)
  local owners = {trainer.lightning_module}
  for _, cb in ipairs(trainer.callbacks) do owners[#owners + 1] = cb end
  for _, owner in ipairs(owners) do
    for _, name in ipairs(LATE_HOOKS) do
      local fn = type(owner) == "table" and owner[name]
      if type(fn) == "function" and not from_library(fn) then return true end
    end
  end
  return false
end

--- After the first training batch of a run (once): what validation and training log so far.
function monitors.after_first_batch(trainer)
  if trainer._monitors_checked then return end
  trainer._monitors_checked = true
  local names = keys(trainer.callback_metrics)
  for name in pairs(trainer._validation_names or {}) do names[name] = true end
  for name, e in pairs(trainer.fit_loop.epoch_loop.results.entries) do
    names[name] = true
    if e.on_step and e.on_epoch then names[name .. "_step"], names[name .. "_epoch"] = true, true end
  end
  local validation_known = trainer._validation_names ~= nil or not trainer.validate_loop.enabled
  check(trainer, names, validation_known and not user_may_log_later(trainer))
end

return monitors
