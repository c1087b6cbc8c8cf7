--- L.autograd.Function: a differentiable operation written by the user, as torch.autograd.Function.
--   local Square = L.autograd.Function("Square")
--   function Square.forward(ctx, x)  ctx:save_for_backward(x)  return x * x  end
--   function Square.backward(ctx, g)  local x = ctx:saved_tensors()  return g * x * 2  end
--   local y = Square.apply(x)            -- or Square(x)
-- forward(ctx, ...) gets the arguments (tensors and other values) and returns one or more tensors;
-- nothing inside it is recorded. backward(ctx, g1, ..., gk) gets the gradient of each output (nil
-- where an output received none) and returns one gradient per forward argument (nil for those that
-- need none: ctx.needs_input_grad[i] says which do). It runs with recording off.
local core = require "lightning.core"
local graph = require "lightning.autograd.graph"
local mode = require "lightning.autograd.mode"

local Function = {}

local function check_outputs(name, n, ...)
  if n == 0 then error(("%s.forward: must return at least one tensor"):format(name), 0) end
  for i = 1, n do
    if not core.is_tensor((select(i, ...))) then
      error(("%s.forward: output %d must be a tensor, got %s"):format(name, i, type((select(i, ...)))), 0)
    end
  end
end

local function any_requires_grad(args, n)
  for i = 1, n do
    if graph.requires_grad(args[i]) then return true end
  end
  return false
end

local function apply(fn, ...)
  local name = fn.name
  if type(fn.forward) ~= "function" then error(name .. ": define " .. name .. ".forward(ctx, ...)", 2) end
  if type(fn.backward) ~= "function" then error(name .. ": define " .. name .. ".backward(ctx, ...)", 2) end
  local args, n = {...}, select("#", ...)
  local ctx = graph.context(name)
  local recording = mode.recording() and any_requires_grad(args, n)
  local outputs = table.pack(mode.opaque(fn.forward, ctx, ...))
  check_outputs(name, outputs.n, table.unpack(outputs, 1, outputs.n))
  if recording then
    for i = 1, outputs.n do
      for j = 1, n do
        if outputs[i] == args[j] then
          error(("%s.forward: output %d is argument %d itself: return a new tensor (x:clone())"):format(name, i, j), 0)
        end
      end
    end
    local backward = fn.backward
    graph.record(name, function(c, ...)
      local grads = table.pack(backward(c, ...))
      for i = 1, n do
        local g = grads[i]
        if g ~= nil and not core.is_tensor(g) then
          error(("%s.backward: gradient %d must be a tensor or nil, got %s"):format(name, i, type(g)), 0)
        end
        if g ~= nil and core.is_tensor(args[i]) and g:numel() ~= args[i]:numel() then
          error(("%s.backward: gradient %d has %d elements, its input %d"):format(name, i, g:numel(), args[i]:numel()), 0)
        end
      end
      return table.unpack(grads, 1, n)
    end, ctx, args, n, table.unpack(outputs, 1, outputs.n))
  end
  return table.unpack(outputs, 1, outputs.n)
end

--- A new Function class named name; define its forward and backward, then call .apply(...).
local function new_function(name)
  if type(name) ~= "string" then error("autograd.Function: expected a name (a string)", 2) end
  local fn = {name = name}
  fn.apply = function(...) return apply(fn, ...) end
  return setmetatable(fn, {__call = function(self, ...) return apply(self, ...) end,
    __tostring = function() return "autograd.Function " .. name end})
end

return setmetatable(Function, {__call = function(_, name) return new_function(name) end})
