--- The tape: nodes that operations record, in the manner of PyTorch's define-by-run autograd.
-- A recorded operation's outputs get `requires_grad = true` and `grad_fn` (the node); the node keeps
-- its backward function, a context (what the forward saved) and one edge per input: the node that
-- made the input, or the input itself when it is a leaf (a parameter, or a user tensor with
-- requires_grad = true), or nothing when the input needs no gradient. Nodes are numbered in the order
-- they are recorded, so the graph's nodes in decreasing number are a topological order (an operation
-- is recorded after the operations that made its inputs); the engine (engine.lua) walks them so.
-- The tape holds no device pointers: it calls operations through the tensor's methods, whatever
-- device runs them.
local L = require "lightning.core"
local mode = require "lightning.autograd.mode"

local is_tensor = L.is_tensor
local graph = {}

local Node = {}
Node.__index = Node
graph.Node = Node

local Context = {}
Context.__index = Context
graph.Context = Context

local sequence = 0

--- A new context for an operation named name (ctx.name).
function graph.context(name)
  return setmetatable({name = name}, Context)
end

--- Saves tensors (or other values) for the backward pass, with the version of each tensor's storage so
-- that an in-place change before the backward pass is an error, not a wrong gradient.
function Context:save_for_backward(...)
  local n = select("#", ...)
  local saved, versions = {n = n}, {}
  for i = 1, n do
    local v = select(i, ...)
    saved[i] = v
    if is_tensor(v) and v._version then versions[i] = v:_version() end
  end
  self._saved, self._versions = saved, versions
end

--- The tensors save_for_backward kept, in order (checked for in-place changes since).
function Context:saved_tensors()
  local saved = self._saved
  if not saved then return end
  for i, version in pairs(self._versions) do
    local now = saved[i]:_version()
    if now ~= version then
      error(("autograd: a tensor that %s saved for its backward pass (saved tensor %d) was changed in place " ..
        "after it was saved (its version is %d, it was %d): compute the change out of place, or clone it before")
        :format(self.name, i, now, version), 0)
    end
  end
  return table.unpack(saved, 1, saved.n)
end

--- Whether value v takes part in autograd (a tensor that requires grad).
local function requires_grad(v)
  return is_tensor(v) and v.requires_grad == true
end
graph.requires_grad = requires_grad

--- Whether any of the n values requires grad while recording is on: the question every operation asks
-- before it records.
function graph.should_record(n, a, b, c)
  if not mode.recording() then return false end
  return requires_grad(a) or (n > 1 and requires_grad(b)) or (n > 2 and requires_grad(c))
end

--- Records a node: name, backward(ctx, grad_1, ..., grad_k) returning one gradient per input (nil where
-- none), ctx (graph.context), the inputs (a list of n values, tensors or not) and the outputs (tensors).
-- Returns the outputs.
function graph.record(name, backward, ctx, inputs, n, ...)
  sequence = sequence + 1
  local edges, edge_nr, needs = {}, {}, {}
  for i = 1, n do
    local x = inputs[i]
    if requires_grad(x) then
      edges[i] = x.grad_fn or x
      edge_nr[i] = x._output_nr or 1
      needs[i] = true
    else
      needs[i] = false
    end
  end
  ctx.name = ctx.name or name
  ctx.needs_input_grad = needs
  local k = select("#", ...)
  local node = setmetatable({name = name, backward = backward, ctx = ctx, edges = edges, edge_nr = edge_nr,
    n_inputs = n, n_outputs = k, seq = sequence}, Node)
  for i = 1, k do
    local out = select(i, ...)
    out.requires_grad = true
    out.grad_fn = node
    out._output_nr = i > 1 and i or nil
  end
  return ...
end

--- Frees what the forward pass saved (after a backward pass without retain_graph).
function Node:free()
  self.ctx = nil
  self.freed = true
end

function Node:__tostring() return "<backward of " .. self.name .. ">" end

return graph
