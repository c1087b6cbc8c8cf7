-- Tensor arithmetic on the device against the host, shared by spec/device_spec.lua (the stand-in device,
-- whose arithmetic is the host's: tol = 0) and spec/cuda_spec.lua (a GPU: float32 tolerances).
-- cases.check(L, tol) raises on the first difference, naming the case; it returns the number of cases.
-- Each case computes on host tensors and on copies of them on "cuda", then compares the results
-- (tensors brought back with :cpu(), numbers as they are); NaN equals NaN.
local cases = {}

local function flat(x, out)
  out = out or {}
  if type(x) == "number" then out[#out + 1] = x
  elseif type(x) == "table" then for _, v in ipairs(x) do flat(v, out) end
  else flat(x:totable(), out) end
  return out
end

-- A host number as float32: a device's reduction over all elements is a float32 tensor read back.
local function as_float(x) return string.unpack("f", string.pack("f", x)) end

local function compare(L, got, want, tol, what)
  if type(want) == "number" and math.type(want) == "float" then got, want = as_float(got), as_float(want) end
  if L.is_tensor(got) then
    assert(got:device() == "cuda:0", what .. ": the result is on " .. got:device() .. ", expected cuda:0")
    assert(tostring(got:size()) == tostring(want:size()), what .. ": size " .. tostring(got:size()) .. ", expected " ..
      tostring(want:size()))
    got = got:cpu()
  end
  local g, w = flat(got), flat(want)
  assert(#g == #w, ("%s: %d elements, expected %d"):format(what, #g, #w))
  for i = 1, #w do
    local a, b = g[i], w[i]
    local same = (a ~= a and b ~= b) or a == b or math.abs(a - b) <= tol * math.max(1, math.abs(b))
    assert(same, ("%s: element %d is %.9g on the device, %.9g on the host"):format(what, i, a, b))
  end
end

-- Runs f on the host operands and on their device copies; compares every result.
local function both(L, tol, what, f, ...)
  local host, dev = {...}, {}
  for i, t in ipairs(host) do dev[i] = L.is_tensor(t) and t:clone():cuda() or t end
  local want = table.pack(f(table.unpack(host)))
  local got = table.pack(f(table.unpack(dev)))
  assert(got.n == want.n, what .. ": a different number of results")
  for i = 1, want.n do compare(L, got[i], want[i], tol, what .. " (result " .. i .. ")") end
  -- in-place results: the operands themselves
  for i, t in ipairs(host) do
    if L.is_tensor(t) then compare(L, dev[i], t, tol, what .. " (operand " .. i .. " afterwards)") end
  end
end

function cases.check(L, tol)
  L.manual_seed(11)
  local n = 0
  local function case(what, f, ...)
    both(L, tol, what, f, ...)
    n = n + 1
  end
  local a, b = L.randn(4, 5), L.randn(4, 5)
  local row, col = L.randn(5), L.randn(4, 1)
  local pos = L.rand(4, 5):add(0.1)
  local ties = L.tensor({{1, 3, 3, 0}, {2, 2, 2, 2}, {0 / 0, 1, 0 / 0, 5}, {-1, -4, -4, 1}})

  -- binary operators and comparisons, broadcasting through stride-0 dimensions, transposed views
  local mt = getmetatable(a)
  for _, name in ipairs {"__add", "__sub", "__mul", "__div"} do
    local op = mt[name]
    case(name, op, a, b)
    case(name .. " broadcast row", op, a, row)
    case(name .. " broadcast column", op, a, col)
    case(name .. " transposed", function(x, y) return op(x:t(), y:t()) end, a, b)
    case(name .. " number", function(x) return op(x, 1.5), op(2.5, x) end, pos)
  end
  case("__pow", function(x) return x ^ 2, x ^ 0.5, 2 ^ x end, pos)
  -- joins stay on the parts' device (a model that concatenates branches)
  case("cat", function(x, y) return L.cat({x, y}, 1), L.cat({x, y:t():t()}, 2), L.cat({x:narrow(2, 2, 3), y}, 2) end, a, b)
  case("stack", function(x, y) return L.stack({x, y}, 1), L.stack({x, y:t():contiguous():t()}, 3) end, a, b)
  case("__unm", function(x) return -x, -(x:t()) end, a)
  for _, op in ipairs {"eq", "ne", "gt", "lt", "ge", "le"} do
    case(op, function(x, y) return x[op](x, y), x[op](x, 0), x[op](x:t(), y:t()) end, ties, ties:t():clone())
  end

  -- in place, with alpha, into views
  case("add alpha", function(x, y) return x:add(y, 0.5) end, a:clone(), b)
  case("sub alpha", function(x, y) return x:sub(y, 2) end, a:clone(), row)
  case("mul number", function(x) return x:mul(3) end, a:clone())
  case("div a view", function(x, y) x:narrow(2, 2, 3):div(y:narrow(2, 1, 3)); return x end, a:clone(), pos)
  case("cmul cdiv pow", function(x, y) return x:cmul(y):cdiv(y):pow(2) end, a:clone(), pos)
  case("add into its transpose", function(x) local s = x:narrow(1, 1, 4); return s:add(s:t()) end, L.randn(4, 4))
  case("addcmul", function(x, y, z) return x:addcmul(y, z, 0.3) end, a:clone(), b, row)
  case("fill and zero a view", function(x) x:narrow(2, 2, 2):fill(7); x:t():narrow(1, 5, 1):zero(); return x end, a:clone())

  -- unary functions
  for _, f in ipairs {"neg", "abs", "exp", "tanh", "sigmoid", "sign"} do
    case(f, function(x) return x[f](x), x:t()[f](x:t()) end, a:clone())
  end
  for _, f in ipairs {"sqrt", "log"} do case(f, function(x) return x[f](x) end, pos:clone()) end
  case("clamp", function(x) return x:clamp(-0.5, 0.5) end, a:clone())
  case("clamp lower only", function(x) return x:clamp(0) end, a:clone())
  case("clamp upper only", function(x) return x:clamp(nil, 0) end, a:clone())

  -- gradient clipping (the optimizers' helpers): the norm computed and the gradients scaled where they are
  local function clipped(clip)
    return function(g)
      local p = g:clone()
      p.grad = g
      local total = clip({p})
      return total or 0, g   -- (clip_grad_value returns nothing)
    end
  end
  case("clip_grad_norm", clipped(function(ps) return L.optim.clip_grad_norm(ps, 0.5) end), a:clone())
  case("clip_grad_norm inf", clipped(function(ps) return L.optim.clip_grad_norm(ps, 0.5, "inf") end), a:clone())
  case("clip_grad_value", clipped(function(ps) return L.optim.clip_grad_value(ps, 0.3) end), a:clone())

  -- reductions along a dimension (values and 1-based indices) and over all elements (numbers)
  for _, r in ipairs {"sum", "mean", "max", "min", "argmax", "argmin"} do
    case(r .. " along 1", function(x) return x[r](x, 1) end, a)
    case(r .. " along 2, keepdim", function(x) return x[r](x, 2, true) end, a)
    case(r .. " of a transposed view", function(x) return x:t()[r](x:t(), 2) end, a)
    case(r .. " with ties and NaN", function(x) return x[r](x, 2) end, ties)
  end
  case("sum of all", function(x) return x:sum(), x:mean(), x:max(), x:min(), x:argmax(), x:argmin() end, a)
  case("var std", function(x) return x:var(), x:std(2), x:var(1, false), x:std(1, true, true) end, a)
  case("norm", function(x) return x:norm(), x:norm(1, 2), x:norm(3), x:norm(math.huge, 1) end, a)
  case("3-D along the middle", function(x) return x:sum(2), x:max(2) end, L.randn(3, 7, 2))
  case("over an empty dimension", function(x) return x:sum(2), x:mean(2) end, L.empty(3, 0))

  -- the confusion matrix: counts made on the device, read back by compute() and counts()
  local logits, labels = L.randn(40, 6), {}
  for i = 1, 40 do labels[i] = (i * 7) % 6 + 1 end
  logits[3][2] = 0 / 0   -- a NaN is the largest logit
  case("ConfusionMatrix", function(x, y)
    local cm = L.metrics.ConfusionMatrix(6)
    cm:update(x, y):update(x:narrow(1, 1, 9), y:narrow(1, 1, 9))
    return cm:counts(), cm:total(), cm:compute().f1, cm:compute("weighted").precision
  end, logits, L.tensor(labels))
  return n
end

return cases
