--- Out-of-place functions of each element, recorded: L.exp, L.log, L.sqrt, L.abs, L.tanh, L.sigmoid,
-- L.relu, L.gelu, L.clamp(x, min, max), L.softmax(x, dim), L.log_softmax(x, dim). (The tensor methods
-- of the same names change the tensor in place and are not recorded.) ReLU, GELU and the softmaxes run
-- the kernels of the nn layers, so a function and its layer give the same bits.
local L = require "lightning.core"
local graph = require "lightning.autograd.graph"
local raw = require "lightning.autograd.raw"

local C = L.nn
local record, context = graph.record, graph.context
local mul, sub, div = raw.__mul, raw.__sub, raw.__div

local ops = {}

local function check(name, x)
  if not L.is_tensor(x) then error(("lightning.%s: argument 1 must be a tensor, got %s"):format(name, type(x)), 3) end
end

-- f(x) computed on a copy by the in-place method; backward(ctx, g) with x and the output saved.
local function elementwise(name, inplace, backward)
  return function(x, ...)
    check(name, x)
    local out = inplace(raw.clone(x), ...)
    if graph.should_record(1, x) then
      local ctx = context(name)
      ctx:save_for_backward(x, out)
      ctx.args = table.pack(...)
      record(name, backward, ctx, {x}, 1, out)
    end
    return out
  end
end

ops.exp = elementwise("exp", raw.exp, function(ctx, g)
  local _, out = ctx:saved_tensors()
  return mul(g, out)
end)
ops.log = elementwise("log", raw.log, function(ctx, g)
  local x = ctx:saved_tensors()
  return div(g, x)
end)
ops.sqrt = elementwise("sqrt", raw.sqrt, function(ctx, g)
  local _, out = ctx:saved_tensors()
  return div(g, mul(out, 2))
end)
ops.abs = elementwise("abs", raw.abs, function(ctx, g)
  local x = ctx:saved_tensors()
  return mul(g, raw.sign(raw.clone(x)))
end)
ops.tanh = elementwise("tanh", raw.tanh, function(ctx, g)
  local _, out = ctx:saved_tensors()
  return mul(g, sub(1, mul(out, out)))
end)
ops.sigmoid = elementwise("sigmoid", raw.sigmoid, function(ctx, g)
  local _, out = ctx:saved_tensors()
  return mul(g, mul(out, sub(1, out)))
end)
-- the gradient passes where min <= x <= max (either bound may be nil), as PyTorch's clamp
ops.clamp = elementwise("clamp", raw.clamp, function(ctx, g)
  local x = ctx:saved_tensors()
  local lo, hi = ctx.args[1], ctx.args[2]
  local pass = g
  if lo ~= nil then pass = mul(pass, raw.ge(x, lo)) end
  if hi ~= nil then pass = mul(pass, raw.le(x, hi)) end
  return pass == g and raw.clone(g) or pass
end)

-- ---- through the nn layers' kernels ----
-- one kernel handle per function (a handle serves one kind of kernel)
local handles = {}
local function kernel(name)
  handles[name] = handles[name] or C.kernel_handle()
  return handles[name]
end

local function activation(name)
  local function backward(ctx, g)
    local x, out = ctx:saved_tensors()
    local gi = x:new_empty({0})   -- (where x is: a GPU's stays there)
    C.activation_backward{name = "lightning." .. name, handle = kernel(name), activation = name, grad_input = gi,
      grad_output = g, input = x, output = out}
    return gi
  end
  return function(x)
    check(name, x)
    local out = x:new_empty({0})
    C.activation_forward{name = "lightning." .. name, handle = kernel(name), activation = name, output = out, input = x}
    if graph.should_record(1, x) then
      local ctx = context(name)
      ctx:save_for_backward(x, out)
      record(name, backward, ctx, {x}, 1, out)
    end
    return out
  end
end
ops.relu = activation("relu")
ops.gelu = activation("gelu")

local function softmax(name, log)
  local function backward(ctx, g)
    local x, out = ctx:saved_tensors()
    local gi = x:new_empty({0})
    C.softmax_backward{name = "lightning." .. name, handle = kernel(name), grad_input = gi, grad_output = g,
      output = out, input = x, dim = ctx.dim, log = log}
    return gi
  end
  return function(x, dim)
    check(name, x)
    dim = dim or -1
    local out = x:new_empty({0})
    C.softmax_forward{name = "lightning." .. name, handle = kernel(name), output = out, input = x, dim = dim, log = log}
    if graph.should_record(1, x) then
      local ctx = context(name)
      ctx.dim = dim
      ctx:save_for_backward(x, out)
      record(name, backward, ctx, {x}, 1, out)
    end
    return out
  end
end
ops.softmax = softmax("softmax", false)
ops.log_softmax = softmax("log_softmax", true)

return ops
