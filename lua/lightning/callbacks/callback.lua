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

return Callback
