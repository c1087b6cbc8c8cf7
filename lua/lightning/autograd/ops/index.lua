--- The derivatives of indexing: gather, index_select, masked_fill and L.where. Indices are tensors of
-- 1-based positions; they get no gradient.
local L = require "lightning.core"
local graph = require "lightning.autograd.graph"
local raw = require "lightning.autograd.raw"
local common = require "lightning.autograd.ops.common"

local record, context = graph.record, graph.context

local ops = {}

-- x's elements picked by index along d (gather, index_select); the gradient adds g back at the same
-- places (scatter_add, index_add).
local function picking(name, pick, add_back)
  local function backward(c, g) return add_back(common.zeros(c.sizes), c.d, (c:saved_tensors()), g) end
  return function(x, d, index)
    local out = pick(x, d, index)
    if graph.should_record(1, x) then
      local ctx = context(name)
      ctx.sizes, ctx.d = common.sizes(x), d
      ctx:save_for_backward(index)
      record(name, backward, ctx, {x}, 1, out)
    end
    return out
  end
end

ops.gather = picking("gather", raw.gather, raw.scatter_add)
ops.index_select = picking("index_select", raw.index_select, raw.index_add)

function ops.masked_fill(x, mask, value)
  local out = raw.masked_fill(x, mask, value)
  if graph.should_record(1, x) then
    local ctx = context("masked_fill")
    ctx:save_for_backward(mask)
    record("masked_fill", function(c, g) return raw.masked_fill(g, (c:saved_tensors()), 0) end, ctx, {x}, 1, out)
  end
  return out
end

function ops.where(cond, a, b)
  local out = raw.L_where(cond, a, b)
  if graph.should_record(2, a, b) then
    local ctx = context("where")
    ctx.a_sizes = L.is_tensor(a) and common.sizes(a) or nil
    ctx.b_sizes = L.is_tensor(b) and common.sizes(b) or nil
    ctx:save_for_backward(cond)
    record("where", function(c, g)
      local k = c:saved_tensors()
      local need = c.needs_input_grad
      return need[1] and common.sum_to(raw.L_where(k, g, 0), c.a_sizes) or nil,
        need[2] and common.sum_to(raw.L_where(k, 0, g), c.b_sizes) or nil
    end, ctx, {a, b}, 2, out)
  end
  return out
end

return ops
