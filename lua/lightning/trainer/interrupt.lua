--- Interruptions of a Trainer run (Ctrl-C, SIGTERM): lightning.core.interrupt holds the signal back while
-- a run is watched, and the loops call check() after each batch, so that the run stops between two
-- batches (never inside an optimizer step) and the checkpoint it leaves is the exact state of the run.
-- Every process decides together (strategy:reduce_boolean_decision): a data-parallel run stops at the
-- same batch everywhere, whichever process got the signal.
local core = require "lightning.core"

local interrupt = {}

local Interruption = {}
Interruption.__index = Interruption
Interruption.__tostring = function(self) return ("interrupted (%s)"):format(self.signal) end

--- Starts holding SIGINT and SIGTERM back (calls nest).
function interrupt.watch() core.interrupt.watch() end

--- Lets them through again. handled: the pending signal was acted on (an interruption raised), so it is
-- forgotten; otherwise a signal received since the last check is delivered now, as it would have been.
function interrupt.unwatch(handled)
  if handled then core.interrupt.clear() end
  core.interrupt.unwatch()
end

--- Raises an interruption when a signal arrived (on any process) since the run started.
function interrupt.check(trainer)
  local signal = core.interrupt.pending()
  if trainer.strategy:reduce_boolean_decision(signal ~= nil, false) then
    error(setmetatable({signal = signal or "a signal on another process"}, Interruption), 0)
  end
end

--- The signal's name when e is an interruption: the Trainer's own, or Lua's "interrupted!" (a second
-- Ctrl-C, or one outside a watched run); nil otherwise.
function interrupt.signal_of(e)
  if getmetatable(e) == Interruption then return e.signal end
  if type(e) == "string" and e:match("interrupted!$") then return "SIGINT" end
  return nil
end

return interrupt
