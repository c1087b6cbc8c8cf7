--- The backward pass over the tape (graph.lua): from the tensors given, every node that leads to them
-- runs once, in decreasing record order, with the sum of the gradients its outputs received; the
-- gradients reaching a leaf are added to leaf.grad (made on first use), as PyTorch accumulates them.
-- Without retain_graph, each node frees its saved tensors once it has run; a second backward pass
-- through it is an error naming the operation. Nothing is recorded while it runs.
local L = require "lightning.core"
local graph = require "lightning.autograd.graph"
local mode = require "lightning.autograd.mode"

local Node = graph.Node
local engine = {}

local raw = require "lightning.autograd.raw"

local function shape_text(t) return tostring(t:size()) end

local function sizes_equal(a, b)
  if a:dim() ~= b:dim() then return false end
  for d = 1, a:dim() do
    if a:size(d) ~= b:size(d) then return false end
  end
  return true
end

-- Adds gradient g into the leaf's .grad.
local function accumulate_leaf(leaf, g)
  if not sizes_equal(leaf, g) then
    error(("autograd: the gradient reaching a leaf tensor has size %s, the tensor %s"):format(
      shape_text(g), shape_text(leaf)), 0)
  end
  local grad = leaf.grad
  if grad == nil then
    leaf.grad = raw.clone(g)   -- (on g's device, the leaf's)
  else
    grad:add(g)
  end
end

-- The nodes that lead to the roots, newest first; errors when one was freed.
local function reachable(roots)
  local seen, list, stack = {}, {}, {}
  for _, node in ipairs(roots) do stack[#stack + 1] = node end
  while #stack > 0 do
    local node = stack[#stack]
    stack[#stack] = nil
    if not seen[node] then
      seen[node] = true
      if node.freed then
        error(("autograd: backward through %s a second time: its saved tensors were freed after the first " ..
          "backward pass (pass {retain_graph = true} to that one to keep them)"):format(node.name), 0)
      end
      list[#list + 1] = node
      for _, e in pairs(node.edges) do
        if getmetatable(e) == Node and not seen[e] then stack[#stack + 1] = e end
      end
    end
  end
  table.sort(list, function(a, b) return a.seq > b.seq end)
  return list
end

local function deliver(pending, node, nr, g)
  local grads = pending[node]
  if not grads then
    grads = {}
    pending[node] = grads
  end
  local before = grads[nr]
  -- a new tensor for the sum: g may be a layer's own gradient buffer, which must not change
  grads[nr] = before == nil and g or raw.__add(before, g)
end

local function run(tensors, grads, retain_graph)
  local pending, roots = {}, {}
  for i, t in ipairs(tensors) do
    local g = grads[i]
    if t.grad_fn then
      roots[#roots + 1] = t.grad_fn
      deliver(pending, t.grad_fn, t._output_nr or 1, g)
    else
      accumulate_leaf(t, g)
    end
  end
  for _, node in ipairs(reachable(roots)) do
    local received = pending[node]
    if received then
      pending[node] = nil
      local results = table.pack(node.backward(node.ctx, table.unpack(received, 1, node.n_outputs)))
      for i, e in pairs(node.edges) do
        local g = results[i]
        if g ~= nil then
          if getmetatable(e) == Node then deliver(pending, e, node.edge_nr[i], g) else accumulate_leaf(e, g) end
        end
      end
      if node.after_backward then node.after_backward(node) end
    end
    if not retain_graph then node:free() end
  end
end

--- Computes the gradients of tensors (a list) with respect to the leaves, given the gradient of each
-- (grads, a list; a one-element tensor's may be nil: 1). opts.retain_graph keeps the saved tensors.
function engine.backward(tensors, grads, opts)
  grads = grads or {}
  for i, t in ipairs(tensors) do
    if t.requires_grad ~= true then
      error(("autograd: backward: tensor %d does not require grad and has no grad_fn (no operation that made " ..
        "it was recorded: is a parameter or an input marked requires_grad, and was it computed outside " ..
        "L.no_grad?)"):format(i), 0)
    end
    local g = grads[i]
    if g == nil then
      if t:numel() ~= 1 then
        error(("autograd: backward: a gradient can be left out only for a one-element tensor, this one is %s: " ..
          "pass the gradient, t:backward(grad)"):format(shape_text(t)), 0)
      end
      grads[i] = raw.fill(raw.clone(t), 1)   -- ones where t is (a GPU's ones are made there)
    elseif not L.is_tensor(g) or not sizes_equal(g, t) then
      error(("autograd: backward: the gradient of tensor %d must be a tensor of its size %s, got %s"):format(
        i, shape_text(t), L.is_tensor(g) and shape_text(g) or type(g)), 0)
    end
  end
  mode.with_grad_enabled(false, run, tensors, grads, opts and opts.retain_graph)
end

return engine
