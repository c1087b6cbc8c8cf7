--- How autograd records an nn.Module called as m(x) (m:forward(x) is the Torch7 protocol: not
-- recorded, see checked_forward). A module whose class has a backward method of its own (every
-- built-in layer and container, the built-in models, a user's module written the Torch7 way) is one
-- node: its forward runs with recording off inside, and the node's backward is the module's backward
-- method, so the layers' hand-written backward passes are the implementations of their autograd
-- functions (no second path). A module with only forward (a user's composite model) is not a node:
-- the modules and operations its forward calls record themselves.
-- A module keeps its output and its saved state in its own buffers (Torch7's protocol), so one call's
-- node is valid until the module runs again: the node checks that, and says so rather than compute
-- with the state of another call.
local core = require "lightning.core"
local class = require "lightning.class"
local graph = require "lightning.autograd.graph"
local mode = require "lightning.autograd.mode"
local backward_hook = require "lightning.nn.backward_hook"

local module_node = {}

local function node_backward(ctx, g)
  local m = ctx.module
  if m._forward_count ~= ctx.count then
    error(("autograd: backward through %s: the module ran forward again after this graph recorded it, and its " ..
      "backward needs the state of that run (a module keeps one call's output and saved state): call it once " ..
      "per graph, or use one module per call"):format(ctx.name), 0)
  end
  local before = m.needs_input_grad
  m.needs_input_grad = ctx.needs_input_grad[1]
  local grad_input = m:_autograd_backward(ctx.args, g)
  m.needs_input_grad = before
  if not ctx.needs_input_grad[1] then return nil end
  return grad_input
end

local function after_backward(node) backward_hook.done(node.module) end

--- Runs impl (the class's forward) for module m as one node, when recording and when the input or a
-- parameter needs a gradient.
function module_node.call(m, impl, ...)
  local input = ...
  if not (graph.requires_grad(input) or m:has_trainable_parameters()) then return impl(m, ...) end
  m._forward_count = (m._forward_count or 0) + 1
  local out = mode.opaque(impl, m, ...)
  local result = out
  if type(out) == "number" then
    result = core.full({1}, out)          -- a loss: a one-element tensor, as PyTorch's
  elseif not core.is_tensor(out) then
    return out                            -- not a tensor: nothing to record it on
  elseif out == input then
    result = out:narrow(1, 1, out:size(1))   -- in place: record on a view, the input keeps its own node
  end
  local name = class.name_of(m)
  local ctx = graph.context(name)
  ctx.module, ctx.count, ctx.args = m, m._forward_count, table.pack(...)
  graph.record(name, node_backward, ctx, {input}, 1, result)
  result.grad_fn.module = m
  result.grad_fn.after_backward = after_backward
  return result
end

--- Wraps a Module subclass's forward: m:forward(x) is the Torch7 protocol and records nothing (a module
-- with a backward of its own runs with recording off inside, so its loss stays a number); given a
-- tensor that autograd tracks, while recording, it would cut the graph silently, so that is an error
-- that says to call the module. A module with only forward (a composite) is exempt: its forward is
-- where the calls that record are.
function module_node.checked_forward(impl, Module)
  return function(self, ...)
    if mode.recording() and graph.requires_grad((...)) and self.backward ~= Module.backward then
      local name = class.name_of(self)
      error(("%s:forward: the input is tracked by autograd (made by %s), but m:forward(x) is not recorded: call " ..
        "the module, m(x), so that its backward pass joins the graph (or compute inside L.no_grad)")
        :format(name, (...).grad_fn and (...).grad_fn.name or "a leaf that requires grad"), 2)
    end
    local out
    if self.backward ~= Module.backward then out = mode.opaque(impl, self, ...) else out = impl(self, ...) end
    -- a layer's output buffer may still carry the node of an earlier recorded call: this call was not
    -- recorded, so nothing may lead back to that node (it would backpropagate this call's state)
    if core.is_tensor(out) and out.grad_fn and out ~= ... and out.grad_fn.module == self then
      out.grad_fn, out.requires_grad, out._output_nr = nil, nil, nil
    end
    return out
  end
end

--- m(...): recorded as one node when the module has a backward of its own; a composite's forward
-- otherwise (the calls inside it record).
function module_node.call_module(m, Module, ...)
  return module_node.call_with(m, Module, m.forward, ...)
end

--- The same with another forward function impl(m, ...) (a model's forward with debugging output).
function module_node.call_with(m, Module, impl, ...)
  if mode.recording() and m.backward ~= Module.backward then return module_node.call(m, impl, ...) end
  return impl(m, ...)
end

return module_node
