--- The hooks the Trainer calls, how it calls them, and the check that a callback or a module names
-- only real hooks (a misspelt hook would otherwise be silently ignored).
-- Order, as in PyTorch Lightning: every callback (in list order, checkpoint callbacks last) before the
-- module's own hook; for on_train_epoch_end the monitoring callbacks (ModelCheckpoint,
-- EarlyStopping) run after the module's hook, so that they see what it logged.
local class = require "lightning.class"
local closest = require "lightning.util.closest"
local options = require "lightning.util.options"
local Callback = require "lightning.callbacks.callback"
local LightningModule = require "lightning.lightning_module"

local hooks = {}

-- Hooks a callback may define: name -> true. Arguments are (callback, trainer, module, ...).
hooks.callback = {}
for _, name in ipairs {
  "setup", "teardown", "on_fit_start", "on_fit_end", "on_sanity_check_start", "on_sanity_check_end",
  "on_train_start", "on_train_end", "on_train_epoch_start", "on_train_epoch_end",
  "on_train_batch_start", "on_train_batch_end",
  "on_validation_start", "on_validation_end", "on_validation_epoch_start", "on_validation_epoch_end",
  "on_validation_batch_start", "on_validation_batch_end",
  "on_test_start", "on_test_end", "on_test_epoch_start", "on_test_epoch_end",
  "on_test_batch_start", "on_test_batch_end",
  "on_predict_start", "on_predict_end", "on_predict_epoch_start", "on_predict_epoch_end",
  "on_predict_batch_start", "on_predict_batch_end",
  "on_before_zero_grad", "on_before_backward", "on_after_backward", "on_before_optimizer_step",
  "on_exception", "on_save_checkpoint", "on_load_checkpoint", "state_dict", "load_state_dict",
} do hooks.callback[name] = true end

-- Hooks and steps of a LightningModule (arguments without trainer and module).
hooks.module = {}
for name in pairs(hooks.callback) do hooks.module[name] = true end
-- on_exception is a callback hook only, and state_dict / load_state_dict are nn.Module's own methods
hooks.module.on_exception, hooks.module.state_dict, hooks.module.load_state_dict = nil, nil, nil
for _, name in ipairs {
  "prepare_data", "configure_callbacks", "configure_optimizers", "configure_model",
  "training_step", "validation_step", "test_step", "predict_step", "backward_step",
  "optimizer_step", "optimizer_zero_grad", "configure_gradient_clipping", "lr_scheduler_step",
  "on_validation_model_eval", "on_validation_model_train", "on_test_model_eval", "on_test_model_train",
  "on_predict_model_eval",
  "on_validation_model_zero_grad",
  "on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer",
} do hooks.module[name] = true end

-- Hooks that Lightning 2 removed, and what took their place: a module or callback that defines one is
-- told, rather than having it silently never called.
hooks.renamed = {
  on_epoch_start = "on_train_epoch_start or on_validation_epoch_start",
  on_epoch_end = "on_train_epoch_end or on_validation_epoch_end",
  on_batch_start = "on_train_batch_start", on_batch_end = "on_train_batch_end",
  training_epoch_end = "on_train_epoch_end", validation_epoch_end = "on_validation_epoch_end",
  test_epoch_end = "on_test_epoch_end",
  training_step_end = "training_step", validation_step_end = "validation_step", test_step_end = "test_step",
  on_pretrain_routine_start = "on_fit_start", on_pretrain_routine_end = "on_fit_start",
  on_init_start = "the callback's own __init", on_init_end = "the callback's own __init",
  on_keyboard_interrupt = "on_exception",
  on_train_batch_end_outputs = "on_train_batch_end",
}

-- "on_epoch_end (Lightning 2 renamed it: on_train_epoch_end or on_validation_epoch_end)", or the
-- closest hook, or the name alone.
local function described(name, known)
  if hooks.renamed[name] then return ("%s (Lightning 2 renamed it: %s)"):format(name, hooks.renamed[name]) end
  local near = closest.name(name, known)
  return near and ("%s (did you mean %s?)"):format(name, near) or name
end

-- Function-valued keys of obj and of its classes (up to, not including, `stop`).
local function method_names(obj, stop)
  local names = {}
  local function add(t)
    for k, v in pairs(t) do
      if type(k) == "string" and type(v) == "function" then names[k] = true end
    end
  end
  add(obj)
  local mt = getmetatable(obj)
  local cls = mt and rawget(mt, "__index")
  local seen = 0
  while type(cls) == "table" and cls ~= stop and seen < 100 do
    add(cls)
    cls = cls.super
    seen = seen + 1
  end
  return names
end

-- A name that looks like a hook but is not one: "on_..." names, and near misses of real hooks.
local function misspelt(name, known)
  if hooks.renamed[name] then return true end
  if known[name] or name:sub(1, 1) == "_" or name:sub(1, 2) == "__" then return false end
  if name:sub(1, 3) == "on_" then return true end
  -- one edit away from a hook for names of 5 to 7 letters, two for longer ones ("step" is no "setup")
  local near = closest.name(name, known)
  if near == nil or #name < 5 then return false end
  return closest.distance(name, near) <= (#name >= 8 and 2 or 1)
end

local function check_names(obj, known, stop, what)
  local bad = {}
  for name in pairs(method_names(obj, stop)) do
    if misspelt(name, known) then bad[#bad + 1] = name end
  end
  if #bad == 0 then return end
  table.sort(bad)
  local parts = {}
  for _, name in ipairs(bad) do parts[#parts + 1] = described(name, known) end
  options.fail(what, "unknown hook %s", table.concat(parts, ", "))
end

--- Errors when a callback (any table) defines a method that is not a callback hook.
function hooks.check_callback(cb, index)
  if type(cb) ~= "table" then
    options.fail("Trainer", "callback %d must be a table or an L.Callback, got %s", index, options.describe(cb))
  end
  check_names(cb, hooks.callback, Callback, ("Trainer: callback %d (%s)"):format(index, class.name_of(cb)))
end

--- Errors when a LightningModule subclass defines an "on_..." method that is not a hook.
function hooks.check_module(module)
  local known = {}
  for name in pairs(hooks.module) do known[name] = true end
  -- names that LightningModule and nn.Module define are not hooks but are fine
  for name, v in pairs(LightningModule) do if type(v) == "function" then known[name] = true end end
  for name, v in pairs(LightningModule.super) do if type(v) == "function" then known[name] = true end end
  local bad = {}
  for name in pairs(method_names(module, LightningModule)) do
    if (name:sub(1, 3) == "on_" and not known[name]) or hooks.renamed[name] then bad[#bad + 1] = name end
  end
  if #bad == 0 then return end
  table.sort(bad)
  for i, name in ipairs(bad) do bad[i] = described(name, hooks.module) end
  options.fail("Trainer", "%s defines unknown hook %s", class.name_of(module), table.concat(bad, ", "))
end

local function is_monitoring(cb)
  return cb.is_monitoring_callback == true
end

--- How an error names a callback: "callback 2 (PerClassAccuracy)", with the name it was given (a
-- string field `name`) or its class name; a plain table is "callback 2".
function hooks.callback_name(cb, index)
  local name = type(cb.name) == "string" and cb.name or class.name_of(cb)
  if name == "table" then return ("callback %d"):format(index) end
  return ("callback %d (%s)"):format(index, name)
end

--- Calls one callback's method `name` with (cb, ...); while it runs, trainer._current_callback is the
-- callback's index (an error leaves it set, so that the Trainer's report names the callback and the
-- hook). Hooks get (cb, trainer, module, ...): call_callback(trainer, cb, i, name, trainer, module, ...).
function hooks.call_callback(trainer, cb, index, name, ...)
  local previous_fx, previous_cb = trainer._current_fx, trainer._current_callback
  trainer._current_fx, trainer._current_callback = name, index
  local results = table.pack(cb[name](cb, ...))
  trainer._current_fx, trainer._current_callback = previous_fx, previous_cb
  return table.unpack(results, 1, results.n)
end

--- Calls hook `name` on the callbacks: all of them (which = nil), or only the monitoring ones
-- (which = "monitoring") or only the others (which = "other").
function hooks.call_callbacks(trainer, which, name, ...)
  local previous_fx, previous_cb = trainer._current_fx, trainer._current_callback
  trainer._current_fx = name
  for i, cb in ipairs(trainer.callbacks) do
    local fn = cb[name]
    if fn and (which == nil or (which == "monitoring") == is_monitoring(cb)) then
      trainer._current_callback = i
      fn(cb, trainer, trainer.lightning_module, ...)
    end
  end
  trainer._current_fx, trainer._current_callback = previous_fx, previous_cb
end

--- Calls the module's hook `name` (when it has one) and returns its results. Logging inside it uses
-- the defaults of that hook.
function hooks.call_module(trainer, name, ...)
  local module = trainer.lightning_module
  local fn = module[name]
  if not fn then return nil end
  local previous_fx, previous_cb = trainer._current_fx, trainer._current_callback
  trainer._current_fx, trainer._current_callback = name, nil
  local results = table.pack(fn(module, ...))
  trainer._current_fx, trainer._current_callback = previous_fx, previous_cb
  return table.unpack(results, 1, results.n)
end

--- Callbacks first, then the module.
function hooks.call(trainer, name, ...)
  hooks.call_callbacks(trainer, nil, name, ...)
  return hooks.call_module(trainer, name, ...)
end

return hooks
