--- Whether autograd records: the grad mode (L.no_grad, L.enable_grad, L.set_grad_enabled) and the
-- depth of opaque calls (a module with a backward of its own, or an autograd.Function's forward, runs
-- with recording off inside: it is one node of the graph, whatever it computes).
local mode = {}

local enabled = true
local opaque_depth = 0

--- True when an operation on a tensor that requires grad is recorded now.
function mode.recording() return enabled and opaque_depth == 0 end

function mode.is_grad_enabled() return enabled end

--- Sets the grad mode; returns the previous one.
function mode.set_grad_enabled(flag)
  local before = enabled
  enabled = flag and true or false
  return before
end

-- Leaving a scope puts the mode back, also when an error unwinds it (to-be-closed variables keep
-- the error's traceback, where a pcall would cut it).
local Restore = {__close = function(self) enabled = self.before end}
local OPAQUE_EXIT = setmetatable({}, {__close = function() opaque_depth = opaque_depth - 1 end})

--- Runs fn(...) with the grad mode set to flag, restoring it afterwards (also on error).
function mode.with_grad_enabled(flag, fn, ...)
  local _ <close> = setmetatable({before = enabled}, Restore)
  enabled = flag and true or false
  return fn(...)
end

function mode.no_grad(fn, ...) return mode.with_grad_enabled(false, fn, ...) end
function mode.enable_grad(fn, ...) return mode.with_grad_enabled(true, fn, ...) end

--- Runs fn(...) as one node: nothing inside it is recorded.
function mode.opaque(fn, ...)
  opaque_depth = opaque_depth + 1
  local _ <close> = OPAQUE_EXIT
  return fn(...)
end

return mode
