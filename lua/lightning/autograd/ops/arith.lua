--- The derivatives of + - * / ^ and unary minus, with broadcasting and Lua numbers on either side.
local L = require "lightning.core"
local graph = require "lightning.autograd.graph"
local raw = require "lightning.autograd.raw"
local common = require "lightning.autograd.ops.common"

local record, context, requires_grad = graph.record, graph.context, graph.requires_grad
local sum_to, sizes = common.sum_to, common.sizes
local is_tensor = L.is_tensor
local add, sub, mul, div, pow, unm = raw.__add, raw.__sub, raw.__mul, raw.__div, raw.__pow, raw.__unm

local ops = {}

-- The sizes of each tensor operand (nil for numbers), kept to reduce broadcast gradients.
local function save_sizes(ctx, a, b)
  ctx.a_sizes = is_tensor(a) and sizes(a) or nil
  ctx.b_sizes = is_tensor(b) and sizes(b) or nil
end

local function grad_for(ctx, i, g)
  if not ctx.needs_input_grad[i] then return nil end
  return sum_to(g, i == 1 and ctx.a_sizes or ctx.b_sizes)
end

local function add_backward(ctx, g) return grad_for(ctx, 1, g), grad_for(ctx, 2, g) end
local function sub_backward(ctx, g)
  return grad_for(ctx, 1, g), ctx.needs_input_grad[2] and grad_for(ctx, 2, unm(g)) or nil
end
local function mul_backward(ctx, g)
  local a, b = ctx:saved_tensors()
  return ctx.needs_input_grad[1] and grad_for(ctx, 1, mul(g, b)) or nil,
         ctx.needs_input_grad[2] and grad_for(ctx, 2, mul(g, a)) or nil
end
local function div_backward(ctx, g)
  local a, b = ctx:saved_tensors()
  local ga = ctx.needs_input_grad[1] and grad_for(ctx, 1, div(g, b)) or nil
  local gb = nil
  if ctx.needs_input_grad[2] then gb = grad_for(ctx, 2, unm(div(mul(g, a), mul(b, b)))) end
  return ga, gb
end
local function pow_backward(ctx, g)
  local a, b, out = ctx:saved_tensors()
  local ga, gb = nil, nil
  if ctx.needs_input_grad[1] then
    -- d(a^b)/da = b a^(b-1); b = 0 gives 0 also where a = 0 (as PyTorch)
    local d
    if type(b) == "number" then d = b == 0 and mul(a, 0) or mul(pow(a, b - 1), b)
    else d = mul(pow(a, sub(b, 1)), b) end
    ga = grad_for(ctx, 1, mul(g, d))
  end
  if ctx.needs_input_grad[2] then
    -- d(a^b)/db = a^b log a
    local log_a = type(a) == "number" and math.log(a) or raw.log(raw.clone(a))
    gb = grad_for(ctx, 2, mul(mul(g, out), log_a))
  end
  return ga, gb
end
local function neg_backward(ctx, g) return unm(g) end

local function binary(name, fn, backward, saves)
  return function(a, b)
    local out = fn(a, b)
    if graph.should_record(2, a, b) then
      local ctx = context(name)
      save_sizes(ctx, a, b)
      if saves == "inputs" then ctx:save_for_backward(a, b)
      elseif saves == "inputs_output" then ctx:save_for_backward(a, b, out) end
      record(name, backward, ctx, {a, b}, 2, out)
    end
    return out
  end
end

ops.add = binary("add", add, add_backward)
ops.sub = binary("sub", sub, sub_backward)
ops.mul = binary("mul", mul, mul_backward, "inputs")
ops.div = binary("div", div, div_backward, "inputs")
ops.pow = binary("pow", pow, pow_backward, "inputs_output")

function ops.neg(a)
  local out = unm(a)
  if graph.should_record(1, a) then record("neg", neg_backward, context("neg"), {a}, 1, out) end
  return out
end

ops.requires_grad = requires_grad
return ops
