--- The derivatives of the reductions: sum, mean, max, min (d, keepdim), var, std (d, unbiased, keepdim)
-- and norm (p, d, keepdim), over all elements or along a dimension. Over all elements the C methods give
-- a Lua number; when the call is recorded the result is a one-element tensor (size 1) instead,
-- PyTorch's 0-dim tensor, so that a loss built from it can be backpropagated (loss:item() gives the
-- number). That tensor is the reduction of x flattened along its one dimension: it stays on x's device
-- (nothing is read back from a GPU), and on the host it holds the number the C method gives.
local graph = require "lightning.autograd.graph"
local raw = require "lightning.autograd.raw"
local common = require "lightning.autograd.ops.common"

local record, context = graph.record, graph.context
local mul, sub, div, pow = raw.__mul, raw.__sub, raw.__div, raw.__pow

local ops = {}

-- A reduced tensor (over dim d, or everything when d is nil) broadcast back to the input's sizes.
local function spread(r, in_sizes, d, keepdim)
  if d == nil then
    local ones = {}
    for i = 1, #in_sizes do ones[i] = 1 end
    return raw.contiguous(raw.expand(raw.view(r, ones), in_sizes))
  end
  if not keepdim then r = raw.unsqueeze(r, d) end
  return raw.contiguous(raw.expand(r, in_sizes))
end

-- x as one dimension, for the reductions over all elements that must stay tensors.
local function flat(x) return raw.view(raw.contiguous(x), {x:numel()}) end

local function count(in_sizes, d)
  if d ~= nil then return in_sizes[d] end
  local n = 1
  for _, s in ipairs(in_sizes) do n = n * s end
  return n
end

-- The recorded form of a C reduction method. where(a, b, c) gives the call's dimension (nil: all
-- elements) and keepdim from its arguments; along_one(a, b, c) the arguments that reduce along the
-- first dimension instead (for the flattened x). backward(ctx, g, x, out, extra) gets the gradient and
-- the output spread to x's sizes (extra: max/min's indices, as returned).
local function reduction(name, method, where, along_one, backward)
  local function node_backward(ctx, g)
    local x, out, extra = ctx:saved_tensors()
    local s, d, k = ctx.sizes, ctx.dim, ctx.keepdim
    return backward(ctx, spread(g, s, d, k), x, spread(out, s, d, k), extra)
  end
  return function(x, a, b, c)
    if not graph.should_record(1, x) then return method(x, a, b, c) end
    local ctx = context(name)
    ctx.sizes = common.sizes(x)
    local d, keepdim = where(a, b, c)
    local out, extra
    if d == nil then
      out, extra = method(flat(x), along_one(a, b, c))
    else
      out, extra = method(x, a, b, c)
      d = common.dim_index(d, x:dim())
    end
    ctx.dim, ctx.keepdim, ctx.args = d, keepdim == true, {a, b, c}
    ctx:save_for_backward(x, out, extra)
    record(name, node_backward, ctx, {x}, 1, out)
    return out, extra
  end
end

local function dim_keepdim(a, b) return a, b end              -- (d, keepdim)
local function dim_unbiased_keepdim(a, _, c) return a, c end  -- (d, unbiased, keepdim)
local function p_dim_keepdim(_, b, c) return b, c end         -- (p, d, keepdim)
local function first() return 1 end                            -- (1)
local function first_unbiased(_, b) return 1, b end            -- (1, unbiased)
local function p_first(a) return a, 1 end                      -- (p, 1)

ops.sum = reduction("sum", raw.sum, dim_keepdim, first, function(_, g) return g end)
ops.mean = reduction("mean", raw.mean, dim_keepdim, first, function(ctx, g) return div(g, count(ctx.sizes, ctx.dim)) end)

-- max/min: along a dimension the gradient goes to the element the indices name; over everything it is
-- shared evenly by the elements equal to the result (as PyTorch's max() does).
local function extreme(name, method)
  return reduction(name, method, dim_keepdim, first, function(ctx, g, x, out, indices)
    local hits
    if ctx.dim == nil then
      hits = raw.eq(x, out)
      return div(mul(g, hits), raw.sum(flat(hits), 1))
    end
    if not ctx.keepdim then indices = raw.unsqueeze(indices, ctx.dim) end
    local one = raw.contiguous(raw.narrow(g, ctx.dim, 1, 1))   -- one value per reduced position
    return raw.scatter_add(common.zeros(ctx.sizes), ctx.dim, indices, one)
  end)
end
ops.max = extreme("max", raw.max)
ops.min = extreme("min", raw.min)

local function deviation(name, method, is_std)
  return reduction(name, method, dim_unbiased_keepdim, first_unbiased, function(ctx, g, x, out)
    local unbiased = ctx.args[2]
    local denominator = count(ctx.sizes, ctx.dim) - (unbiased == false and 0 or 1)
    local centered = sub(x, ctx.dim and raw.mean(x, ctx.dim, true) or raw.mean(flat(x), 1))
    if is_std then return div(mul(g, centered), mul(out, denominator)) end
    return div(mul(g, centered), denominator / 2)
  end)
end
ops.var = deviation("var", raw.var, false)
ops.std = deviation("std", raw.std, true)

-- d||x||_p / dx = sign(x) |x|^(p-1) / ||x||_p^(p-1)
ops.norm = reduction("norm", raw.norm, p_dim_keepdim, p_first, function(ctx, g, x, out)
  local p = ctx.args[1] or 2
  if p == 2 then return div(mul(g, x), out) end
  if p == 1 then return mul(g, raw.sign(raw.clone(x))) end
  local magnitude = pow(raw.abs(raw.clone(x)), p - 1)
  return div(mul(mul(g, raw.sign(raw.clone(x))), magnitude), pow(out, p - 1))
end)

return ops
