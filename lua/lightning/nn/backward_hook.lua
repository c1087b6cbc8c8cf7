--- The per-layer hook of the backward pass: a container calls backward_hook.done(m) after each child
-- m's backward pass (nn.Sequential, nn.Residual, BasicImageClassifier's steps; a fused layer reports the
-- layer whose parameters it updated), so that a data-parallel strategy can start reducing the
-- gradients of the layers that are finished while the rest of the pass runs. One watcher at a time
-- (the strategy sets it around its backward pass); with none, done() costs a comparison.
--   local previous = backward_hook.set(function(module) ... end)   -- nil removes it
local backward_hook = {}

local watcher = nil

--- The backward pass of module m has finished: its parameters' gradients (and its children's) are final.
function backward_hook.done(m)
  if watcher then watcher(m) end
end

--- Sets the watcher (a function of the module, or nil); returns the previous one.
function backward_hook.set(fn)
  assert(fn == nil or type(fn) == "function", "backward_hook.set: expected a function or nil")
  local previous = watcher
  watcher = fn
  return previous
end

return backward_hook
