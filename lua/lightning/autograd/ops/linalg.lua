--- The derivatives of the matrix products: L.mm, L.bmm, L.matmul (with its 1-D and broadcast batch
-- cases) and L.addmm(M, a, b[, beta[, alpha]]). For C = A B: dA = dC B^T, dB = A^T dC.
local graph = require "lightning.autograd.graph"
local raw = require "lightning.autograd.raw"
local common = require "lightning.autograd.ops.common"

local record, context = graph.record, graph.context
local mul = raw.__mul

local ops = {}

local function mT(x) return raw.transpose(x, -1, -2) end

local function product(name, fn, backward)
  return function(a, b)
    local out = fn(a, b)
    if graph.should_record(2, a, b) then
      local ctx = context(name)
      ctx:save_for_backward(a, b)
      record(name, backward, ctx, {a, b}, 2, out)
    end
    return out
  end
end

ops.mm = product("mm", raw.L_mm, function(ctx, g)
  local a, b = ctx:saved_tensors()
  local need = ctx.needs_input_grad
  return need[1] and raw.L_mm(g, raw.t(b)) or nil, need[2] and raw.L_mm(raw.t(a), g) or nil
end)

ops.bmm = product("bmm", raw.L_bmm, function(ctx, g)
  local a, b = ctx:saved_tensors()
  local need = ctx.needs_input_grad
  return need[1] and raw.L_bmm(g, mT(b)) or nil, need[2] and raw.L_bmm(mT(a), g) or nil
end)

-- matmul: a 1-D operand is a row (a) or a column (b) that the result drops; batch dimensions broadcast.
ops.matmul = product("matmul", raw.L_matmul, function(ctx, g)
  local a, b = ctx:saved_tensors()
  local need = ctx.needs_input_grad
  local a2 = a:dim() == 1 and raw.unsqueeze(a, 1) or a
  local b2 = b:dim() == 1 and raw.unsqueeze(b, 2) or b
  local g2 = g
  if a:dim() == 1 and b:dim() == 1 then g2 = raw.view(g, 1, 1)
  elseif a:dim() == 1 then g2 = raw.unsqueeze(g, -2)
  elseif b:dim() == 1 then g2 = raw.unsqueeze(g, -1) end
  local ga, gb
  if need[1] then
    ga = raw.reshape(common.sum_to(raw.L_matmul(g2, mT(b2)), common.sizes(a2)), common.sizes(a))
  end
  if need[2] then
    gb = raw.reshape(common.sum_to(raw.L_matmul(mT(a2), g2), common.sizes(b2)), common.sizes(b))
  end
  return ga, gb
end)

function ops.addmm(m, a, b, beta, alpha)
  local out = raw.L_addmm(m, a, b, beta, alpha)
  if graph.should_record(3, m, a, b) then
    local ctx = context("addmm")
    beta, alpha = beta or 1, alpha or 1
    ctx.m_sizes, ctx.beta, ctx.alpha = common.sizes(m), beta, alpha
    ctx:save_for_backward(a, b)
    record("addmm", function(c, g)
      local x, y = c:saved_tensors()
      local need = c.needs_input_grad
      return need[1] and common.sum_to(mul(g, c.beta), c.m_sizes) or nil,
        need[2] and mul(raw.L_mm(g, raw.t(y)), c.alpha) or nil,
        need[3] and mul(raw.L_mm(raw.t(x), g), c.alpha) or nil
    end, ctx, {m, a, b}, 3, out)
  end
  return out
end

return ops
