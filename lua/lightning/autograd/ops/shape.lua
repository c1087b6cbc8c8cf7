--- The derivatives of the views and of joining and splitting: view, reshape, flatten, squeeze,
-- unsqueeze, narrow, select, transpose, t, permute, expand, contiguous, clone, L.cat, L.stack, split,
-- chunk. A view's gradient is the gradient seen through the inverse view.
local graph = require "lightning.autograd.graph"
local mode = require "lightning.autograd.mode"
local raw = require "lightning.autograd.raw"
local common = require "lightning.autograd.ops.common"

local record, context = graph.record, graph.context
local sizes = common.sizes

local ops = {}

-- An operation whose gradient is a function of g and the context alone.
local function unary(name, method, remember, backward)
  return function(x, ...)
    local out = method(x, ...)
    if out ~= x and graph.should_record(1, x) then
      local ctx = context(name)
      remember(ctx, x, ...)
      record(name, backward, ctx, {x}, 1, out)
    end
    return out
  end
end

local function keep_sizes(ctx, x) ctx.sizes = sizes(x) end
local function back_to_sizes(ctx, g) return raw.reshape(g, ctx.sizes) end

ops.view = unary("view", raw.view, keep_sizes, back_to_sizes)
ops.reshape = unary("reshape", raw.reshape, keep_sizes, back_to_sizes)
ops.squeeze = unary("squeeze", raw.squeeze, keep_sizes, back_to_sizes)
ops.unsqueeze = unary("unsqueeze", raw.unsqueeze, keep_sizes, back_to_sizes)
ops.expand = unary("expand", raw.expand, keep_sizes, function(ctx, g) return common.sum_to(g, ctx.sizes) end)
ops.contiguous = unary("contiguous", raw.contiguous, keep_sizes, function(_, g) return g end)
ops.clone = unary("clone", raw.clone, keep_sizes, function(_, g) return g end)

--- t:flatten([start_dim[, end_dim]]): dimensions start..end (default 1..-1) as one, a view when it can be.
local function flatten_raw(x, first, last)
  local n = x:dim()
  first = common.dim_index(first or 1, n)
  last = common.dim_index(last or -1, n)
  local s, out = sizes(x), {}
  for d = 1, first - 1 do out[#out + 1] = s[d] end
  local m = 1
  for d = first, last do m = m * s[d] end
  out[#out + 1] = m
  for d = last + 1, n do out[#out + 1] = s[d] end
  return raw.reshape(x, out)
end
ops.flatten = unary("flatten", flatten_raw, keep_sizes, back_to_sizes)

ops.narrow = unary("narrow", raw.narrow, function(ctx, x, d, start, length)
  ctx.sizes, ctx.d, ctx.start, ctx.length = sizes(x), d, start, length
end, function(ctx, g)
  local gi = common.zeros(ctx.sizes)
  raw.copy(raw.narrow(gi, ctx.d, ctx.start, ctx.length), g)
  return gi
end)

ops.select = unary("select", raw.select, function(ctx, x, d, i)
  ctx.sizes, ctx.d, ctx.i = sizes(x), d, i
end, function(ctx, g)
  local gi = common.zeros(ctx.sizes)
  raw.copy(raw.select(gi, ctx.d, ctx.i), g)
  return gi
end)

ops.transpose = unary("transpose", raw.transpose, function(ctx, _, a, b) ctx.a, ctx.b = a, b end,
  function(ctx, g) return raw.transpose(g, ctx.a, ctx.b) end)
ops.t = unary("t", raw.t, function() end, function(_, g) return raw.t(g) end)

ops.permute = unary("permute", raw.permute, function(ctx, x, ...)
  local order = select("#", ...) == 1 and type(...) == "table" and (...) or {...}
  local inverse = {}
  for i, d in ipairs(order) do inverse[common.dim_index(d, x:dim())] = i end
  ctx.inverse = inverse
end, function(ctx, g) return raw.permute(g, table.unpack(ctx.inverse)) end)

-- Whether any tensor of the list requires grad while recording is on.
local function any_records(list)
  if not mode.recording() then return false end
  for _, t in ipairs(list) do
    if graph.requires_grad(t) then return true end
  end
  return false
end

-- dim as given to cat/stack (default 1), positive, for an output of n dimensions.
local function join_dim(dim, n) return common.dim_index(dim or 1, n) end

--- L.cat(tensors[, dim]): the gradient of each part is its slice of g.
function ops.cat(list, dim)
  local out = raw.L_cat(list, dim)
  if any_records(list) then
    local ctx = context("cat")
    ctx.d = join_dim(dim, out:dim())
    ctx.lengths = {}
    for i, t in ipairs(list) do ctx.lengths[i] = t:size(ctx.d) end
    record("cat", function(c, g)
      local grads, start = {}, 1
      for i, n in ipairs(c.lengths) do
        if c.needs_input_grad[i] then grads[i] = raw.narrow(g, c.d, start, n) end
        start = start + n
      end
      return table.unpack(grads, 1, #c.lengths)
    end, ctx, list, #list, out)
  end
  return out
end

--- L.stack(tensors[, dim]): the gradient of each part is g selected at its index.
function ops.stack(list, dim)
  local out = raw.L_stack(list, dim)
  if any_records(list) then
    local ctx = context("stack")
    ctx.d, ctx.n = join_dim(dim, out:dim()), #list
    record("stack", function(c, g)
      local grads = {}
      for i = 1, c.n do
        if c.needs_input_grad[i] then grads[i] = raw.select(g, c.d, i) end
      end
      return table.unpack(grads, 1, c.n)
    end, ctx, list, #list, out)
  end
  return out
end

--- t:split(size[, dim]): views of size elements along dim (the last one shorter); each a recorded narrow.
function ops.split(x, size, dim)
  if math.type(size) ~= "integer" or size < 1 then
    error(("Tensor:split: size must be an integer >= 1, got %s"):format(tostring(size)), 2)
  end
  dim = common.dim_index(dim or 1, x:dim())
  local parts, n = {}, x:size(dim)
  for start = 1, n, size do parts[#parts + 1] = ops.narrow(x, dim, start, math.min(size, n - start + 1)) end
  return parts
end

--- t:chunk(n[, dim]): at most n views of equal size along dim (the last one shorter), as PyTorch's chunk.
function ops.chunk(x, n, dim)
  if math.type(n) ~= "integer" or n < 1 then
    error(("Tensor:chunk: n must be an integer >= 1, got %s"):format(tostring(n)), 2)
  end
  dim = common.dim_index(dim or 1, x:dim())
  return ops.split(x, math.max(1, -(-x:size(dim) // n)), dim)
end

return ops
