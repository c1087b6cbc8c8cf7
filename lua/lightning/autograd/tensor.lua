--- Puts autograd into the tensor API (called once by lightning/init.lua): the operators and the
-- out-of-place methods that have a derivative record when a tensor that requires grad goes in; the
-- library gains the out-of-place functions (L.exp, L.relu, L.cat, ...) and the grad mode; tensors
-- gain backward, detach, requires_grad_, is_leaf, flatten, split, chunk, relu, gelu, softmax,
-- log_softmax. In-place methods are recorded as PyTorch records them (below).
local core = require "lightning.core"
local raw = require "lightning.autograd.raw"
local mode = require "lightning.autograd.mode"
local engine = require "lightning.autograd.engine"
local arith = require "lightning.autograd.ops.arith"
local pointwise = require "lightning.autograd.ops.pointwise"
local reduce = require "lightning.autograd.ops.reduce"
local shape = require "lightning.autograd.ops.shape"
local linalg = require "lightning.autograd.ops.linalg"
local index = require "lightning.autograd.ops.index"

local install = {}

-- In-place methods. While recording, one that changes a tensor in the graph (or takes an argument that
-- requires grad) is recorded as PyTorch records in-place operations: as its out-of-place form computed
-- from the old values, whose node the tensor then carries; a node that saved the old values notices the
-- change (the storage's version) and says so at backward. A method without a derivative (fill, zero,
-- sign, uniform, normal) takes the tensor out of the graph. A parameter (a leaf that requires grad) is
-- changed without recording, as initialisation, optimizer steps and copying weights do (PyTorch asks for
-- no_grad there; the change is seen by any node that saved the parameter).
local common = require "lightning.autograd.ops.common"
local graph = require "lightning.autograd.graph"

local function scaled(y, alpha)
  if alpha == nil then return y end
  return arith.mul(y, alpha)
end

local function copy_of(old, src)
  local out = raw.copy(raw.clone(old), src)
  if graph.should_record(1, src) then
    local ctx = graph.context("copy")
    ctx.sizes = core.is_tensor(src) and common.sizes(src) or nil
    graph.record("copy", function(c, g) return common.sum_to(g, c.sizes) end, ctx, {src}, 1, out)
  end
  return out
end

local OUT_OF_PLACE = {
  add = function(x, y, alpha) return arith.add(x, scaled(y, alpha)) end,
  sub = function(x, y, alpha) return arith.sub(x, scaled(y, alpha)) end,
  mul = arith.mul, cmul = arith.mul, div = arith.div, cdiv = arith.div, pow = arith.pow,
  addcmul = function(x, a, b, v) return arith.add(x, scaled(arith.mul(a, b), v)) end,
  neg = arith.neg, sqrt = pointwise.sqrt, exp = pointwise.exp, log = pointwise.log, abs = pointwise.abs,
  tanh = pointwise.tanh, sigmoid = pointwise.sigmoid, clamp = pointwise.clamp,
  addmm = function(x, a, b, beta, alpha) return linalg.addmm(x, a, b, beta, alpha) end,
  copy = copy_of,
}
local DETACHING = {"fill", "zero", "sign", "uniform", "normal"}
local UNRECORDABLE = {"set", "resize", "resize_as", "scatter_add", "index_add"}

local function any_requires_grad(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if core.is_tensor(v) and v.requires_grad == true then return true end
  end
  return false
end

local function in_graph(t) return t.requires_grad == true and t.grad_fn ~= nil end

local function recorded_in_place(name, fn, out_of_place)
  return function(t, ...)
    if not mode.recording() then return fn(t, ...) end
    local tracked = in_graph(t)
    -- a leaf that requires grad (a parameter) changes unrecorded, whatever its arguments
    if not tracked and (t.requires_grad == true or not any_requires_grad(...)) then return fn(t, ...) end
    if not out_of_place then
      error(("Tensor:%s: cannot be recorded on a tensor in the autograd graph (made by %s): do it on a clone " ..
        "inside L.no_grad"):format(name, tracked and t.grad_fn.name or "an argument"), 2)
    end
    local old = raw.clone(t)
    if tracked then old.requires_grad, old.grad_fn, old._output_nr = true, t.grad_fn, t._output_nr end
    local new = out_of_place(old, ...)
    raw.copy(t, new)
    if new.requires_grad == true then
      t.requires_grad, t.grad_fn, t._output_nr = true, new.grad_fn, new._output_nr
    else
      t.requires_grad, t.grad_fn, t._output_nr = nil, nil, nil
    end
    return t
  end
end

local function detached(fn)
  return function(x, ...)
    local r = raw.clone(x)
    fn(r, ...)
    return r
  end
end

local function install_in_place(methods)
  for name, oop in pairs(OUT_OF_PLACE) do
    if raw[name] then methods[name] = recorded_in_place(name, raw[name], oop) end
  end
  for _, name in ipairs(DETACHING) do
    if raw[name] then methods[name] = recorded_in_place(name, raw[name], detached(raw[name])) end
  end
  for _, name in ipairs(UNRECORDABLE) do
    if raw[name] then methods[name] = recorded_in_place(name, raw[name], nil) end
  end
end

-- A one-element tensor (a recorded loss) compares with numbers and with other one-element tensors.
local function value(v, op)
  if type(v) == "number" then return v end
  if core.is_tensor(v) and v:numel() == 1 then return raw.item(v) end
  error(("attempt to compare %s: only one-element tensors compare (as numbers); use t:item()"):format(op), 3)
end


function install.install(L)
  local methods = core.Tensor
  local mt = getmetatable(core.empty(0))
  mt.__add, mt.__sub, mt.__mul, mt.__div, mt.__pow, mt.__unm =
    arith.add, arith.sub, arith.mul, arith.div, arith.pow, arith.neg

  mt.__lt = function(a, b) return value(a, "with <") < value(b, "with <") end
  mt.__le = function(a, b) return value(a, "with <=") <= value(b, "with <=") end
  install_in_place(methods)
  for _, ops in ipairs {reduce, shape, index} do
    for name, fn in pairs(ops) do
      -- (the indexing ops exist when the C library has them)
      if name ~= "cat" and name ~= "stack" and name ~= "where" and (ops ~= index or raw[name]) then methods[name] = fn end
    end
  end
  for _, name in ipairs {"mm", "bmm", "matmul"} do methods[name] = linalg[name] end   -- (t:addmm is in place)
  for _, name in ipairs {"relu", "gelu", "softmax", "log_softmax"} do methods[name] = pointwise[name] end

  function methods.backward(t, gradient, opts)
    engine.backward({t}, {gradient}, opts)
  end
  --- A tensor sharing t's storage, outside the graph (no grad_fn, requires_grad false).
  function methods.detach(t)
    if t:dim() == 0 or t:numel() == 0 then return raw.clone(t) end
    return raw.narrow(t, 1, 1, t:size(1))
  end
  function methods.requires_grad_(t, flag)
    if t.grad_fn then
      error(("Tensor:requires_grad_: only leaf tensors can be set; this one was made by %s (use detach())")
        :format(t.grad_fn.name), 2)
    end
    t.requires_grad = flag ~= false
    return t
  end
  function methods.is_leaf(t) return t.grad_fn == nil end

  for name, fn in pairs(pointwise) do L[name] = fn end
  L.neg = arith.neg
  for _, name in ipairs {"mm", "bmm", "matmul", "addmm"} do L[name] = linalg[name] end
  if raw.L_cat then L.cat, L.stack = shape.cat, shape.stack end
  if raw.L_where then L.where = index.where end
  L.no_grad, L.enable_grad = mode.no_grad, mode.enable_grad
  L.set_grad_enabled, L.is_grad_enabled = mode.set_grad_enabled, mode.is_grad_enabled
end

return install
