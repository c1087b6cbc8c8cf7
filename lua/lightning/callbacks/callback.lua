--- L.Callback: the base class of callbacks. A callback is any Lua table whose methods are hooks
-- (see lightning/trainer/hooks.lua for the list); subclassing L.Callback only adds state_key().
--   local PrintEpochs = L.class("PrintEpochs", L.Callback)
--   function PrintEpochs:on_train_epoch_end(trainer, module) print(trainer.current_epoch) end
-- A method whose name starts with "on_" but is no hook (or is one typo away from a hook) is an error
-- when the Trainer is built, so that a misspelt hook is never silently ignored.
local class = require "lightning.class"

local Callback = class("Callback")

function Callback:__init() end

--- The key under which the callback's state_dict() is kept in checkpoints; unique per callback.
function Callback:state_key()
  return class.name_of(self)
end

--- Options of a built-in callback: `known` maps each option name to its default (false stands for
-- "no value" and becomes nil); unknown names are an error with a suggestion.
function Callback.parse_options(name, opts, known)
  opts = opts or {}
  if type(opts) ~= "table" then error(("%s: expected a table of options, got %s"):format(name, type(opts)), 0) end
  for k in pairs(opts) do
    if type(k) ~= "string" or known[k] == nil then
      local near = type(k) == "string" and require("lightning.trainer.hooks").closest(k, known)
      error(("%s: unknown option %s%s"):format(name, tostring(k), near and (" (did you mean " .. near .. "?)") or ""), 0)
    end
  end
  local out = {}
  for k, default in pairs(known) do
    local v = opts[k]
    if v == nil and default ~= false then v = default end
    out[k] = v
  end
  return out
end

return Callback
