-- Finite-difference checks of every layer's backward pass on small shapes: the analytic gradient of
-- f(x, params) = sum(layer(x) * R) against central differences of f.
local L = require "lightning"
local nn = L.nn

local TOL = 2e-2
local EPS = 1e-2

local function objective(layer, x, R)
  return (layer:forward(x) * R):sum()
end

-- Checks d f / d t for the tensor t (the input or a parameter) at a few positions.
local function check(layer, x, t, analytic, R, what)
  local n = t:numel()
  local flat = t:view(n)
  local ga = analytic:contiguous():view(n)
  local step = math.max(1, n // 12)
  for i = 1, n, step do
    local v = flat[i]
    flat[i] = v + EPS
    local up = objective(layer, x, R)
    flat[i] = v - EPS
    local down = objective(layer, x, R)
    flat[i] = v
    local numeric = (up - down) / (2 * EPS)
    local err = math.abs(numeric - ga[i]) / math.max(1, math.abs(numeric))
    assert(err < TOL, ("%s: element %d: analytic %.6g, numeric %.6g"):format(what, i, ga[i], numeric))
  end
end

local function gradcheck(layer, x, name)
  L.manual_seed(11)
  local y = layer:forward(x)
  local R = L.randn(y:size())
  layer:zero_grad()
  layer:forward(x)
  local gi = layer:backward(x, R):clone()
  check(layer, x, x, gi, R, name .. " input")
  for pname, p in layer:named_parameters() do check(layer, x, p, p.grad:clone(), R, name .. " " .. pname) end
end

describe("finite differences", function()
  before_each(function() L.manual_seed(3) end)

  it("Conv2d", function()
    gradcheck(nn.Conv2d(2, 3, 3, {padding = 1}), L.randn(2, 2, 5, 5), "conv")
    gradcheck(nn.Conv2d(1, 2, {3, 2}, {stride = {2, 1}, padding = {0, 1}}), L.randn(1, 1, 6, 5), "conv strided")
  end)
  it("Linear", function() gradcheck(nn.Linear(4, 3), L.randn(5, 4), "linear") end)
  it("BatchNorm2d in training and evaluation", function()
    gradcheck(nn.BatchNorm2d(3), L.randn(4, 3, 3, 3), "bn train")
    local bn = nn.BatchNorm2d(3)
    bn:forward(L.randn(4, 3, 3, 3))
    gradcheck(bn:eval(), L.randn(2, 3, 3, 3), "bn eval")
  end)
  it("BatchNorm1d", function() gradcheck(nn.BatchNorm1d(4), L.randn(6, 4), "bn1d") end)
  it("BatchNormReLUMaxPool2d", function()
    local bn = nn.BatchNorm2d(2)
    local fused = nn.BatchNormReLUMaxPool2d(bn)
    -- the check perturbs bn's parameters, which the fused layer reads
    L.manual_seed(11)
    local x = L.randn(3, 2, 4, 4)
    local y = fused:forward(x)
    local R = L.randn(y:size())
    bn:zero_grad()
    fused:forward(x)
    local gi = fused:backward(x, R):clone()
    check(fused, x, x, gi, R, "fused input")
    check(fused, x, bn.weight, bn.weight.grad:clone(), R, "fused weight")
    check(fused, x, bn.bias, bn.bias.grad:clone(), R, "fused bias")
  end)
  it("BatchNormAct2d with GELU, and with a frozen weight", function()
    gradcheck(nn.BatchNormAct2d(3, {activation = "gelu"}), L.randn(4, 3, 3, 3), "bn gelu")
    local bn = nn.BatchNormAct2d(3, {activation = "gelu", eps = 1e-12, momentum = 0.4})
    bn.weight.requires_grad = false
    bn.bias:uniform(-1, 1)
    L.manual_seed(11)
    local x = L.randn(4, 3, 3, 3)
    local R = L.randn(4, 3, 3, 3)
    bn:zero_grad()
    bn:forward(x)
    local gi = bn:backward(x, R):clone()
    check(bn, x, x, gi, R, "bn frozen input")
    check(bn, x, bn.bias, bn.bias.grad:clone(), R, "bn frozen bias")
  end)
  it("GELU and MulConstant", function()
    gradcheck(nn.GELU(), L.randn(3, 7), "gelu")
    gradcheck(nn.MulConstant(-1 / 9), L.randn(3, 4), "mul_constant")
  end)
  it("LeakyReLU", function() gradcheck(nn.LeakyReLU(0.1), L.randn(3, 7), "leaky") end)
  it("pooling", function()
    -- distinct values far apart, so that a step of EPS never changes which element is the maximum
    local values = {}
    for i = 1, 64 do values[i] = i * 0.1 end
    for i = 64, 2, -1 do local j = (i * 37 + 11) % i + 1 values[i], values[j] = values[j], values[i] end
    gradcheck(nn.MaxPool2d(2), L.tensor(values):view(2, 2, 4, 4), "maxpool")
    gradcheck(nn.ReLUMaxPool2d(2), (L.tensor(values) - 3.2):view(2, 2, 4, 4), "relu maxpool")
    gradcheck(nn.MaxPool2d(3, {stride = 2, padding = 1}), L.tensor(values):view(1, 4, 4, 4), "maxpool padded")
    gradcheck(nn.AvgPool2d(3, {stride = 2, padding = 1}), L.randn(1, 2, 5, 5), "avgpool")
    gradcheck(nn.AdaptiveAvgPool2d({2, 3}), L.randn(1, 2, 5, 7), "adaptive")
  end)
  it("softmax and log-softmax", function()
    gradcheck(nn.Softmax(2), L.randn(3, 5), "softmax")
    gradcheck(nn.LogSoftmax(1), L.randn(4, 3), "log_softmax")
  end)
  it("a Sequential with a Residual block", function()
    -- LeakyReLU rather than ReLU: a kink inside the finite-difference step would spoil the estimate
    local block = nn.Sequential(nn.Conv2d(2, 2, 3, {padding = 1}), nn.BatchNorm2d(2), nn.LeakyReLU(0.3))
    local net = nn.Sequential(nn.Residual(block), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    gradcheck(net, L.randn(3, 2, 4, 4), "residual net")
  end)
  it("CrossEntropyLoss with weights and label smoothing", function()
    local crit = nn.CrossEntropyLoss{weight = L.tensor{1, 2, 0.5}, label_smoothing = 0.2}
    local x, t = L.randn(4, 3), L.tensor{1, 3, 2, 2}
    crit:forward(x, t)
    local g = crit:backward(x, t):clone()
    local flat = x:view(12)
    for i = 1, 12 do
      local v = flat[i]
      flat[i] = v + 1e-2
      local up = crit:forward(x, t)
      flat[i] = v - 1e-2
      local down = crit:forward(x, t)
      flat[i] = v
      assert.is_true(math.abs((up - down) / 2e-2 - g:view(12)[i]) < 1e-3)
    end
  end)
end)
