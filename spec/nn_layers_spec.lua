-- Every layer against PyTorch's forward outputs and gradients (fixtures from tools/make_nn_fixtures.py).
local L = require "lightning"
local H = require "helpers"
local nn = L.nn

local function T(f) return L.tensor(f.data):view(f.shape) end
local function fixtures(name) return dofile("spec/fixtures/nn/" .. name .. ".lua") end
local TOL = 1e-4

-- Runs forward and backward of layer on the case's input and checks output and every gradient.
local function check_case(layer, case, name)
  for pname, p in layer:named_parameters() do
    if case[pname] then p:copy(T(case[pname])) end
  end
  layer:zero_grad()
  local x = T(case.input)
  local y = layer:forward(x)
  H.assert_close(y, T(case.output), TOL, name .. " output")
  local gi = layer:backward(x, T(case.grad_output))
  H.assert_close(gi, T(case.grad_input), TOL, name .. " grad_input")
  for pname, p in layer:named_parameters() do
    if case["grad_" .. pname] then H.assert_close(p.grad, T(case["grad_" .. pname]), TOL, name .. " grad " .. pname) end
  end
  return x, y
end

describe("nn.Conv2d", function()
  for name, c in pairs(fixtures("conv2d")) do
    it("matches PyTorch: " .. name, function()
      local layer = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size,
        {stride = c.stride, padding = c.padding, bias = c.bias ~= false})
      check_case(layer, c, name)
    end)
  end

  it("gives the same results for a contiguous input and a batch-folded one", function()
    local c = fixtures("conv2d").basic
    local layer = nn.Conv2d(3, 4, 3, {padding = 1})
    local x = T(c.input)
    local folded = L.zeros(3, 2, 7, 7):permute(2, 1, 3, 4)   -- N x C x H x W stored as C x N x H x W
    folded:copy(x)
    local a = layer:forward(x):clone()
    H.assert_close(layer:forward(folded), a, 1e-6)
  end)

  -- A direct convolution in Lua and its adjoint: output, input gradient and weight gradient.
  local function direct_conv(x, w, gy, kh, kw, ph, pw, sh, sw)
    local n, cin, h, wd = x:size(1), x:size(2), x:size(3), x:size(4)
    local cout, ho, wo = w:size(1), gy:size(3), gy:size(4)
    local y, gx, gw = L.zeros(n, cout, ho, wo), L.zeros(x:size()), L.zeros(w:size())
    for b = 1, n do for co = 1, cout do for oy = 1, ho do for ox = 1, wo do
      for c = 1, cin do for i = 1, kh do for j = 1, kw do
        local iy, ix = (oy - 1) * sh - ph + i, (ox - 1) * sw - pw + j
        if iy >= 1 and iy <= h and ix >= 1 and ix <= wd then
          y[b][co][oy][ox] = y[b][co][oy][ox] + w[co][c][i][j] * x[b][c][iy][ix]
          gx[b][c][iy][ix] = gx[b][c][iy][ix] + w[co][c][i][j] * gy[b][co][oy][ox]
          gw[co][c][i][j] = gw[co][c][i][j] + x[b][c][iy][ix] * gy[b][co][oy][ox]
        end
      end end end
    end end end end
    return y, gx, gw
  end

  -- the unit-stride "same" shapes take a contiguous im2col and col2im path; the others check the general one
  for _, c in ipairs{
    {name = "3x3 padding 1", n = 2, cin = 2, h = 5, w = 6, cout = 3, k = {3, 3}, pad = {1, 1}},
    {name = "5x5 padding 2 on a smaller image", n = 2, cin = 2, h = 3, w = 4, cout = 2, k = {5, 5}, pad = {2, 2}},
    {name = "3x1 no padding (output shorter)", n = 2, cin = 1, h = 5, w = 3, cout = 2, k = {3, 1}, pad = {0, 0}},
    {name = "1x3 padding (0, 1)", n = 1, cin = 2, h = 4, w = 5, cout = 2, k = {1, 3}, pad = {0, 1}},
    {name = "3x3 padding 1 on a 1x1 image", n = 3, cin = 2, h = 1, w = 1, cout = 2, k = {3, 3}, pad = {1, 1}},
    {name = "3x3 padding 1 stride 2", n = 2, cin = 2, h = 5, w = 6, cout = 2, k = {3, 3}, pad = {1, 1}, stride = {2, 2}},
    {name = "3x3 padding 2 (output wider)", n = 1, cin = 1, h = 4, w = 4, cout = 2, k = {3, 3}, pad = {2, 2}},
  } do
    it("matches a direct convolution: " .. c.name, function()
      L.manual_seed(5)
      local stride = c.stride or {1, 1}
      local layer = nn.Conv2d(c.cin, c.cout, c.k, {padding = c.pad, stride = stride, bias = false})
      local x = L.randn(c.n, c.cin, c.h, c.w)
      layer:zero_grad()
      local y = layer:forward(x):clone()
      local gy = L.randn(y:size())
      local gx = layer:backward(x, gy):clone()
      local want_y, want_gx, want_gw = direct_conv(x, layer.weight, gy, c.k[1], c.k[2], c.pad[1], c.pad[2], stride[1], stride[2])
      H.assert_close(y, want_y, 1e-5, "output")
      H.assert_close(gx, want_gx, 1e-5, "grad_input")
      H.assert_close(layer.weight.grad, want_gw, 1e-5, "grad_weight")
    end)
  end

  it("accumulates parameter gradients over backward calls", function()
    local c = fixtures("conv2d").basic
    local layer = nn.Conv2d(3, 4, 3, {padding = 1})
    local x, g = T(c.input), T(c.grad_output)
    layer:zero_grad()
    layer:forward(x)
    layer:backward(x, g)
    local once = layer.weight.grad:clone()
    layer:backward(x, g)
    H.assert_close(layer.weight.grad, once * 2, 1e-5)
  end)
end)

describe("nn.Linear", function()
  for name, c in pairs(fixtures("linear")) do
    it("matches PyTorch: " .. name, function()
      check_case(nn.Linear(c.in_features, c.out_features, {bias = c.bias ~= false}), c, name)
    end)
  end
end)

describe("nn.BatchNorm", function()
  for name, c in pairs(fixtures("batchnorm")) do
    it("matches PyTorch: " .. name, function()
      local cls = c.dims == 2 and nn.BatchNorm2d or nn.BatchNorm1d
      local opts = {affine = c.affine, track_running_stats = c.track_running_stats}
      if c.momentum == false then opts.momentum = false end
      local layer = cls(c.num_features, opts)
      if layer.running_mean then
        layer.running_mean:copy(T(c.before_running_mean))
        layer.running_var:copy(T(c.before_running_var))
        layer.num_batches_tracked[1] = c.warmup_steps
      end
      layer:train(c.training)
      check_case(layer, c, name)
      if layer.running_mean then
        H.assert_close(layer.running_mean, T(c.after_running_mean), TOL, name .. " running_mean")
        H.assert_close(layer.running_var, T(c.after_running_var), TOL, name .. " running_var")
        assert.equal(c.after_num_batches_tracked, layer.num_batches_tracked[1])
      end
    end)
  end

  it("refuses training on one value per channel, as PyTorch does", function()
    local bn = nn.BatchNorm1d(3)
    local msg = H.error_of(function() bn:forward(L.randn(1, 3)) end)
    assert.matches("BatchNorm1d:forward: expected more than 1 value per channel when training", msg)
  end)
end)

describe("activations", function()
  local f = fixtures("activation")
  it("ReLU matches PyTorch", function() check_case(nn.ReLU(), f.relu, "relu") end)
  it("LeakyReLU matches PyTorch", function() check_case(nn.LeakyReLU(0.2), f.leaky_relu, "leaky") end)
  it("LeakyReLU's default slope is 0.01", function()
    check_case(nn.LeakyReLU(), f.leaky_relu_default, "leaky default")
  end)

  it("ReLU in place writes over its input and still backpropagates", function()
    local x = T(f.relu.input)
    local relu = nn.ReLU({inplace = true})
    local y = relu:forward(x)
    assert.is_true(rawequal(x, y))
    H.assert_close(y, T(f.relu.output), 1e-6)
    H.assert_close(relu:backward(x, T(f.relu.grad_output)), T(f.relu.grad_input), 1e-6)
  end)
end)

describe("pooling", function()
  for name, c in pairs(fixtures("pool")) do
    it("matches PyTorch: " .. name, function()
      local layer
      if c.kind == "max" then layer = nn.MaxPool2d(c.kernel_size, {stride = c.stride, padding = c.padding})
      elseif c.kind == "avg" then
        layer = nn.AvgPool2d(c.kernel_size, {stride = c.stride, padding = c.padding, count_include_pad = c.count_include_pad})
      else layer = nn.AdaptiveAvgPool2d(c.output_size) end
      check_case(layer, c, name)
    end)
  end
end)

describe("nn.ReLUMaxPool2d", function()
  it("equals ReLU followed by MaxPool2d, forward and backward, on odd sizes", function()
    L.manual_seed(8)
    for _, k in ipairs({2, 3}) do
      local x = L.randn(2, 3, 7, 5)
      local relu, pool, fused = nn.ReLU(), nn.MaxPool2d(k), nn.ReLUMaxPool2d(k)
      local expected = pool:forward(relu:forward(x)):clone()
      H.assert_close(fused:forward(x), expected, 0)
      local g = L.randn(expected:size())
      local expected_grad = relu:backward(x, pool:backward(relu.output, g)):clone()
      H.assert_close(fused:backward(x, g), expected_grad, 0)
    end
  end)

  it("lets NaN through the pooling as PyTorch does, and ReLU keeps it", function()
    local x = L.tensor{1, 0 / 0, 3, 4}:view(1, 1, 2, 2)
    local y = nn.MaxPool2d(2):forward(x)
    assert.is_true(y[1][1][1][1] ~= y[1][1][1][1])
  end)
end)

describe("nn.BatchNormReLUMaxPool2d", function()
  -- the fused layer against BatchNorm2d followed by ReLUMaxPool2d, on the same BatchNorm's state
  local function compare(x, training, tol)
    L.manual_seed(4)
    local bn_a, bn_b = nn.BatchNorm2d(x:size(2)), nn.BatchNorm2d(x:size(2))
    bn_a.weight:uniform(0.5, 1.5):mul(L.tensor{1, -1, 1}:expand(x:size(2) // 3, 3):reshape(-1))
    bn_a.bias:uniform(-0.5, 0.5)
    bn_a.running_mean:uniform(-0.2, 0.2)
    bn_a.running_var:uniform(0.5, 2)
    bn_b:load_state_dict(bn_a:state_dict())
    bn_a:train(training)
    bn_b:train(training)
    local pool, fused = nn.ReLUMaxPool2d(2), nn.BatchNormReLUMaxPool2d(bn_b)
    local expected = pool:forward(bn_a:forward(x)):clone()
    H.assert_close(fused:forward(x), expected, tol, "output")
    local g = L.randn(expected:size())
    bn_a:zero_grad()
    bn_b:zero_grad()
    local expected_gi = bn_a:backward(x, pool:backward(bn_a.output, g)):clone()
    H.assert_close(fused:backward(x, g), expected_gi, tol, "grad_input")
    H.assert_close(bn_b.weight.grad, bn_a.weight.grad, tol, "grad weight")
    H.assert_close(bn_b.bias.grad, bn_a.bias.grad, tol, "grad bias")
    H.assert_close(bn_b.running_mean, bn_a.running_mean, 1e-6, "running_mean")
    H.assert_close(bn_b.running_var, bn_a.running_var, 1e-6, "running_var")
    assert.equal(bn_a.num_batches_tracked[1], bn_b.num_batches_tracked[1])
  end

  it("equals BatchNorm2d, ReLU and MaxPool2d(2) in training and evaluation", function()
    L.manual_seed(2)
    for _, training in ipairs({true, false}) do
      compare(L.randn(4, 6, 8, 8), training, 1e-5)      -- contiguous input
      compare(L.randn(3, 6, 7, 5), training, 1e-5)      -- odd height and width
      local conv = nn.Conv2d(2, 6, 3, {padding = 1})
      compare(conv:forward(L.randn(4, 2, 6, 6)), training, 1e-5)   -- the batch-folded layout
    end
  end)

  it("takes a gradient laid out unlike its output", function()
    local bn = nn.BatchNorm2d(3)
    local fused = nn.BatchNormReLUMaxPool2d(bn)
    local conv = nn.Conv2d(2, 3, 1)
    local x = conv:forward(L.randn(2, 2, 4, 4))
    local y = fused:forward(x)
    local g = L.randn(y:size())                       -- contiguous, while y is batch-folded
    local a = fused:backward(x, g):clone()
    local folded = L.zeros(3, 2, 2, 2):permute(2, 1, 3, 4)
    folded:copy(g)
    bn:zero_grad()
    H.assert_close(fused:backward(x, folded), a, 1e-6)
  end)

  it("wants a BatchNorm2d", function()
    assert.matches("BatchNormReLUMaxPool2d: expected the nn.BatchNorm2d", H.error_of(nn.BatchNormReLUMaxPool2d, nn.ReLU()))
  end)
end)

describe("softmax", function()
  for name, c in pairs(fixtures("softmax")) do
    it("matches PyTorch: " .. name, function()
      check_case(c.log and nn.LogSoftmax(c.dim) or nn.Softmax(c.dim), c, name)
    end)
  end
end)

describe("nn.Dropout", function()
  it("drops about p of the elements, scales the rest by 1 / (1 - p), and repeats under the seed", function()
    local d = nn.Dropout(0.3)
    local x = L.ones(100000)
    L.manual_seed(5)
    local y = d:forward(x):clone()
    local kept = y:gt(0):sum()
    assert.is_true(math.abs(kept / 100000 - 0.7) < 0.01)
    H.assert_close(y:max(), 1 / 0.7, 1e-6)
    L.manual_seed(5)
    assert.same(y:totable(), d:forward(x):totable())
    local g = d:backward(x, L.ones(100000))
    H.assert_close(g, y, 1e-6)
  end)

  it("passes input through in evaluation and for p = 0", function()
    local x = L.randn(10)
    local d = nn.Dropout(0.5):eval()
    assert.is_true(rawequal(x, d:forward(x)))
    assert.is_true(rawequal(x, nn.Dropout(0):forward(x)))
  end)
end)

describe("nn.Flatten and nn.Identity", function()
  it("flattens all but the batch dimension, and unflattens gradients", function()
    local x = L.randn(2, 3, 4, 5)
    local f = nn.Flatten()
    local y = f:forward(x)
    assert.equal("2x60", tostring(y:size()))
    assert.equal(x:get(2, 3, 4, 5), y:get(2, 60))
    assert.equal("2x3x4x5", tostring(f:backward(x, L.randn(2, 60)):size()))
    assert.equal("6x20", tostring(nn.Flatten({start_dim = 1, end_dim = 2}):forward(x):reshape(6, 20):size()))
  end)

  it("flattens a batch-folded convolution output in the right order", function()
    local conv = nn.Conv2d(2, 3, 1)
    local x = L.randn(4, 2, 2, 2)
    local y = conv:forward(x)
    local flat = nn.Flatten():forward(y)
    assert.same(y:contiguous():view(4, 12):totable(), flat:totable())
  end)

  it("Identity returns its input", function()
    local x = L.randn(3)
    assert.is_true(rawequal(x, nn.Identity():forward(x)))
  end)
end)
