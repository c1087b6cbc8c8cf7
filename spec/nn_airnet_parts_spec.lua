-- The parts of the airbench recipe (L.models.AirNet) one by one, against PyTorch (fixtures by
-- tools/make_airnet_fixtures.py, from bench/airbench_torch.py's classes) in float32 and, where the
-- machine has bf16 kernels, in bf16 on channels-last inputs: GELU, BatchNorm with a frozen weight
-- (p.requires_grad = false, eps 1e-12, momentum 0.4), nn.BatchNormAct2d on both of its paths,
-- MaxPool2d(3) over 3x3, frozen parameters in the optimizers and in Conv2d, nn.MulConstant, and the
-- initialisations nn.init.dirac_ and nn.init.whitening_.
local L = require "lightning"
local H = require "helpers"
local nn = L.nn

local function T(f) return L.tensor(f.data):view(f.shape) end
local parts = dofile("spec/fixtures/nn/airnet_parts.lua")
local TOL = 1e-4   -- as spec/nn_layers_spec.lua

local B = require "bf16_helpers"
local needs_bf16, channels_last_bf16, assert_bf16_close = B.needs_bf16(it, pending), B.channels_last, B.assert_close

-- airbench's BatchNorm: weight frozen at 1, eps 1e-12, PyTorch momentum 0.4; the case's bias and
-- running statistics.
local function frozen_bn(cls, c, case, opts)
  local o = {eps = case.eps, momentum = case.momentum}
  for k, v in pairs(opts or {}) do o[k] = v end
  local bn = cls(c, o)
  bn.weight.requires_grad = false
  bn.bias:copy(T(case.bias))
  bn.running_mean:copy(T(case.before_running_mean))
  bn.running_var:copy(T(case.before_running_var))
  bn:train(case.training)
  return bn
end

local function check_bn_case(bn, c, name, x, g, tol_fn)
  bn:zero_grad()
  bn.weight.grad:fill(7)        -- a frozen weight's gradient is left alone
  local y = bn:forward(x)
  tol_fn(y, T(c.output), name .. " output")
  tol_fn(bn.running_mean, T(c.after_running_mean), name .. " running_mean")
  tol_fn(bn.running_var, T(c.after_running_var), name .. " running_var")
  local gi = bn:backward(x, g)
  tol_fn(gi, T(c.grad_input), name .. " grad_input")
  tol_fn(bn.bias.grad, T(c.grad_bias), name .. " grad_bias")
  assert.is_false(c.weight_has_grad)
  assert.same(L.zeros(bn.num_features):fill(7):totable(), bn.weight.grad:totable())
  return y
end

local function fp32_close(a, b, what) H.assert_close(a, b, TOL, what) end
local function bf16_close(a, b, what) assert_bf16_close(a, b, what, 0.03) end

describe("nn.GELU", function()
  it("matches PyTorch's exact (erf) GELU", function()
    for _, name in ipairs{"gelu", "gelu_4d"} do
      local c = parts[name]
      local layer = nn.GELU()
      local x = T(c.input)
      H.assert_close(layer:forward(x), T(c.output), TOL, name .. " output")
      H.assert_close(layer:backward(x, T(c.grad_output)), T(c.grad_input), TOL, name .. " grad_input")
    end
  end)

  needs_bf16("on channels-last bf16 matches PyTorch within bf16's precision, keeping type and layout", function()
    local c = parts.gelu_4d
    local layer = nn.GELU()
    layer:set_precision("bf16")
    local x = channels_last_bf16(T(c.input))
    local y = layer:forward(x)
    assert.equal("bfloat16", y:scalar_type())
    assert.same(x:stride(), y:stride())
    assert_bf16_close(y, T(c.output), "output", 0.01)
    local gi = layer:backward(x, channels_last_bf16(T(c.grad_output)))
    assert.same(x:stride(), gi:stride())
    assert_bf16_close(gi, T(c.grad_input), "grad_input", 0.02)
  end)
end)

describe("BatchNorm2d with a frozen weight (airbench's: eps 1e-12, momentum 0.4)", function()
  for _, name in ipairs{"bn_frozen_train", "bn_frozen_eval"} do
    it("matches PyTorch: " .. name, function()
      local c = parts[name]
      check_bn_case(frozen_bn(nn.BatchNorm2d, 8, c), c, name, T(c.input), T(c.grad_output), fp32_close)
    end)
    needs_bf16("on channels-last bf16 matches PyTorch: " .. name, function()
      local c = parts[name]
      local bn = frozen_bn(nn.BatchNorm2d, 8, c)
      bn:set_precision("bf16")
      local y = check_bn_case(bn, c, name, channels_last_bf16(T(c.input)), channels_last_bf16(T(c.grad_output)), bf16_close)
      assert.equal("bfloat16", y:scalar_type())
    end)
  end

  it("keeps eps and momentum as given and prints them", function()
    local bn = nn.BatchNorm2d(4, {eps = 1e-12, momentum = 0.4})
    assert.equal(1e-12, bn.eps)
    assert.equal(0.4, bn.momentum)
    assert.equal("BatchNorm2d(4, eps=1e-12, momentum=0.4)", tostring(bn))
  end)
end)

describe("nn.BatchNormAct2d", function()
  for _, name in ipairs{"bn_frozen_gelu_train", "bn_frozen_gelu_eval"} do
    it("float32: BatchNorm then GELU, as PyTorch's BatchNorm2d + GELU: " .. name, function()
      local c = parts[name]
      local layer = frozen_bn(nn.BatchNormAct2d, 8, c, {activation = "gelu"})
      check_bn_case(layer, c, name, T(c.input), T(c.grad_output), fp32_close)
      assert.is_false(layer._fused)
    end)
    needs_bf16("bf16 channels-last: one fused kernel, as PyTorch's BatchNorm2d + GELU: " .. name, function()
      local c = parts[name]
      local layer = frozen_bn(nn.BatchNormAct2d, 8, c, {activation = "gelu"})
      layer:set_precision("bf16")
      local x = channels_last_bf16(T(c.input))
      local y = check_bn_case(layer, c, name, x, channels_last_bf16(T(c.grad_output)), bf16_close)
      assert.is_true(layer._fused)
      assert.equal("bfloat16", y:scalar_type())
      assert.same(x:stride(), y:stride())
      assert.same(x:stride(), layer.grad_input:stride())
    end)
  end

  it("has the BatchNorm's state-dict names and prints as one layer", function()
    local layer = nn.BatchNormAct2d(3, {activation = "gelu", eps = 1e-12, momentum = 0.4})
    assert.same({"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}, layer:state_dict_keys())
    local plain = nn.BatchNorm2d(3)
    plain.bias:fill(0.25)
    plain.running_var:fill(2)
    layer:load_state_dict(plain:state_dict())
    assert.same({0.25, 0.25, 0.25}, layer.bias:totable())
    assert.equal("BatchNormAct2d(3, eps=1e-12, momentum=0.4, activation=gelu)", tostring(layer))
    assert.equal("relu", nn.BatchNormAct2d(3).activation)
  end)

  it("with ReLU equals BatchNorm2d followed by ReLU (float32)", function()
    L.manual_seed(4)
    local x, g = L.randn(3, 5, 4, 4), L.randn(3, 5, 4, 4)
    local bn, relu, fused = nn.BatchNorm2d(5), nn.ReLU(), nn.BatchNormAct2d(5, {activation = "relu"})
    bn.weight:uniform(0.5, 1.5)
    bn.bias:uniform(-0.5, 0.5)
    fused:load_state_dict(bn:state_dict())
    local want = relu:forward(bn:forward(x)):clone()
    local want_gi = bn:backward(x, relu:backward(bn.output, g)):clone()
    H.assert_close(fused:forward(x), want, 0)
    H.assert_close(fused:backward(x, g), want_gi, 0)
    H.assert_close(fused.weight.grad, bn.weight.grad, 0)
    H.assert_close(fused.running_var, bn.running_var, 0)
  end)

  needs_bf16("bf16 with ReLU: the fused kernel matches the float32 layers", function()
    L.manual_seed(5)
    local x, g = L.randn(4, 16, 6, 6):mul(2):bfloat16():float(), L.randn(4, 16, 6, 6)
    local ref = nn.BatchNormAct2d(16)
    local want, want_gi = ref:forward(x):clone(), ref:backward(x, g):clone()
    local mixed = nn.BatchNormAct2d(16)
    mixed:set_precision("bf16")
    local xb = channels_last_bf16(x)
    assert_bf16_close(mixed:forward(xb), want, "output")
    assert.is_true(mixed._fused)
    assert_bf16_close(mixed:backward(xb, channels_last_bf16(g)), want_gi, "grad_input", 0.05)
    assert_bf16_close(mixed.weight.grad, ref.weight.grad, "grad_weight", 0.03)
  end)

  it("refuses a bad activation and a backward pass before any forward pass", function()
    assert.matches("BatchNormAct2d: activation must be \"relu\" or \"gelu\", got \"silu\"",
      H.error_of(nn.BatchNormAct2d, 3, {activation = "silu"}))
    assert.matches("BatchNormAct2d: unknown option 'activaton' %(did you mean 'activation'%?%)",
      H.error_of(nn.BatchNormAct2d, 3, {activaton = "gelu"}))
    assert.matches("BatchNormAct2d:backward: backward before forward", H.error_of(function()
      nn.BatchNormAct2d(3):backward(L.randn(2, 3, 2, 2), L.randn(2, 3, 2, 2)) end))
    assert.matches("BatchNormAct2d:forward: expected a 4%-D input", H.error_of(function()
      nn.BatchNormAct2d(3):forward(L.randn(2, 3)) end))
  end)
end)

describe("MaxPool2d(3) over 3x3 (airbench's last pooling)", function()
  local c = parts.maxpool3_3x3
  it("matches PyTorch", function()
    local layer = nn.MaxPool2d(3)
    local x = T(c.input)
    local y = layer:forward(x)
    assert.same({4, 16, 1, 1}, {y:size(1), y:size(2), y:size(3), y:size(4)})
    H.assert_close(y, T(c.output), TOL, "output")
    H.assert_close(layer:backward(x, T(c.grad_output)), T(c.grad_input), TOL, "grad_input")
  end)
  needs_bf16("on channels-last bf16 matches PyTorch", function()
    local layer = nn.MaxPool2d(3)
    layer:set_precision("bf16")
    local x = channels_last_bf16(T(c.input))
    local y = layer:forward(x)
    assert.equal("bfloat16", y:scalar_type())
    assert_bf16_close(y, T(c.output), "output", 0.005)
    assert_bf16_close(layer:backward(x, channels_last_bf16(T(c.grad_output))), T(c.grad_input), "grad_input", 0.01)
  end)
end)

describe("frozen parameters (p.requires_grad = false)", function()
  local function setup(opt_fn)
    L.manual_seed(6)
    local a, b = L.randn(3, 4), L.randn(5)
    a.grad, b.grad = L.randn(3, 4), L.randn(5)
    return a, b, opt_fn({a, b})
  end

  for name, make in pairs{
    SGD = function(p) return L.optim.SGD(p, {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.1}) end,
    Adam = function(p) return L.optim.Adam(p, {lr = 0.1, weight_decay = 0.1}) end,
    AdamW = function(p) return L.optim.AdamW(p, {lr = 0.1}) end,
  } do
    it(name .. " skips them: no update, no weight decay, no state; they train again once unfrozen", function()
      local a, b, opt = setup(make)
      local a0 = a:clone()
      b.requires_grad = false
      local b0 = b:clone()
      opt:step()
      assert.is_true(H.max_rel_diff(a, a0) > 1e-3)
      H.assert_close(b, b0, 0)
      assert.is_nil(next(opt.state[b] or {}))
      local ref_b = b:clone()
      ref_b.grad = b.grad:clone()
      local ref = make({ref_b})
      b.requires_grad = true
      opt:step()
      ref:step()
      H.assert_close(b, ref_b, 0)   -- as if its first step
    end)
  end

  it("Conv2d leaves a frozen weight's gradient alone and skips a backward pass that has nothing to compute", function()
    L.manual_seed(7)
    local x, g = L.randn(2, 3, 6, 6), L.randn(2, 4, 5, 5)
    local ref, conv = nn.Conv2d(3, 4, 2), nn.Conv2d(3, 4, 2)
    conv:load_state_dict(ref:state_dict())
    ref:forward(x)
    ref:backward(x, g)
    conv.weight.requires_grad = false
    conv.needs_input_grad = false
    conv:forward(x)
    assert.is_nil(conv:backward(x, g))
    H.assert_close(conv.weight.grad, L.zeros(4, 3, 2, 2), 0)
    H.assert_close(conv.bias.grad, ref.bias.grad, 0)
    conv.bias.grad:zero()
    conv.bias.requires_grad = false
    conv:forward(x)
    assert.is_nil(conv:backward(x, g))
    H.assert_close(conv.bias.grad, L.zeros(4), 0)
    conv.needs_input_grad = true
    H.assert_close(conv:backward(x, g), ref.grad_input, 0)
    H.assert_close(conv.weight.grad, L.zeros(4, 3, 2, 2), 0)
  end)

  it("count as non-trainable in the model summary", function()
    local net = nn.Sequential(nn.Conv2d(3, 24, 2), nn.BatchNorm2d(24))
    net[1].weight.requires_grad = false
    net[2].weight.requires_grad = false
    local summary = require("lightning.callbacks.model_summary")
    local text = require("lightning.util.output").capture(function()
      summary{}:on_fit_start({is_global_zero = true, lightning_module = net}, net)
    end)
    assert.matches("312 +Non%-trainable params", text)   -- 288 + 24
  end)
end)

describe("nn.MulConstant", function()
  it("scales the input and its gradient", function()
    local m = nn.MulConstant(1 / 9)
    local x = L.tensor{{9, -18}, {0.9, 3}}
    H.assert_close(m:forward(x), L.tensor{{1, -2}, {0.1, 1 / 3}}, 1e-7)
    H.assert_close(m:backward(x, L.tensor{{9, 9}, {-9, 0}}), L.tensor{{1, 1}, {-1, 0}}, 1e-7)
    assert.equal("MulConstant(0.111111)", tostring(m))
  end)
  it("refuses a scale that is no finite number", function()
    assert.matches("MulConstant: scale must be a finite number, got nan", H.error_of(nn.MulConstant, 0 / 0))
    assert.matches("MulConstant: scale must be a finite number, got \"x\"", H.error_of(nn.MulConstant, "x"))
  end)
end)

describe("nn.init", function()
  it("dirac_ is torch.nn.init.dirac_, also on the first filters of a weight (airbench's use)", function()
    local conv = nn.Conv2d(3, 5, 3, {padding = 1, bias = false})
    local rest = conv.weight:narrow(1, 4, 2):clone()
    nn.init.dirac_(conv.weight:narrow(1, 1, 3))
    for f = 1, 3 do
      for c = 1, 3 do
        for i = 1, 3 do
          for j = 1, 3 do
            assert.equal((f == c and i == 2 and j == 2) and 1 or 0, conv.weight[f][c][i][j])
          end
        end
      end
    end
    H.assert_close(conv.weight:narrow(1, 4, 2), rest, 0)   -- the other filters keep their values
    -- the identity on the first inputs: those channels pass through the convolution
    local x = L.randn(2, 3, 4, 4)
    H.assert_close(conv:forward(x):narrow(2, 1, 3), x, 0)
    local w = nn.init.dirac_(L.randn(4, 2, 1, 1), 2)   -- groups: each group's identity
    assert.same({{{{1}}, {{0}}}, {{{0}}, {{1}}}, {{{1}}, {{0}}}, {{{0}}, {{1}}}}, w:totable())
    assert.matches("nn.init.dirac_: groups must be a positive integer that divides the 4 filters, got 3",
      H.error_of(nn.init.dirac_, L.randn(4, 2, 1, 1), 3))
    assert.matches("nn.init.dirac_: expected a 4%-D convolution weight", H.error_of(nn.init.dirac_, L.randn(4, 2)))
  end)

  it("patch_covariance is E[p p^T] over the 2x2 patches, as airbench computes it", function()
    local c = parts.whitening
    local images = T(c.images)
    H.assert_close(nn.init.patch_covariance(images, 2, 2), T(c.covariance), 1e-5)
    -- the same in batches
    H.assert_close(nn.init.patch_covariance({images:narrow(1, 1, 10), images:narrow(1, 11, 14)}, 2, 2),
      T(c.covariance), 1e-5)
  end)

  it("whitening_ gives airbench's filters (each eigenvector up to its sign, which airbench leaves to LAPACK)", function()
    local c = parts.whitening
    local conv = nn.Conv2d(3, 24, 2)
    nn.init.whitening_(conv.weight, T(c.images), {eps = c.eps})
    local got, want = conv.weight:view(24, 12), T(c.weight):view(24, 12)
    for f = 1, 12 do
      local g, w = got:select(1, f):clone(), want:select(1, f):clone()
      local sign = (g * w):sum() < 0 and -1 or 1
      H.assert_close(g:clone():mul(sign), w, 2e-4, "filter " .. f)
      -- filter 12 + f is the negative of filter f: with both, the sign of an eigenvector does not matter
      H.assert_close(got:select(1, 12 + f), g:mul(-1), 0, "filter " .. (12 + f))
    end
    -- the whitened patches have unit variance along the eigenvectors (up to eps)
    local cov = T(c.covariance)
    local w = got:narrow(1, 1, 12)
    local white = L.mm(L.mm(w, cov), w:t())
    local values = T(c.eigenvalues):totable()
    for f = 1, 12 do
      local lambda = values[13 - f]
      assert(math.abs(white[f][f] - lambda / (lambda + c.eps)) < 1e-3, "filter " .. f)
    end
  end)

  it("whitening_ refuses a weight of the wrong shape", function()
    assert.matches("nn.init.whitening_: a 2x2 whitening of 3 channels has 2 x 12 = 24 filters, the weight has 12",
      H.error_of(nn.init.whitening_, L.empty(12, 3, 2, 2), L.randn(2, 3, 4, 4)))
    assert.matches("nn.init.whitening_: the images have 1 channels, the weight takes 3",
      H.error_of(nn.init.whitening_, L.empty(24, 3, 2, 2), L.randn(2, 1, 4, 4)))
  end)

  it("whitening_ says what is wrong with the images, not with a matrix the caller never passed", function()
    local x = L.randn(2, 3, 8, 8)
    x[2][3][4][5] = 0 / 0
    x[1][1][1][1] = math.huge
    assert.matches("^nn%.init%.whitening_: batch 1 of the images holds 2 NaN or infinite values: the images must be finite",
      H.error_of(nn.init.whitening_, L.empty(24, 3, 2, 2), x))
    assert.matches("^nn%.init%.patch_covariance: batch 2 of the images holds 1 NaN",
      H.error_of(nn.init.patch_covariance, {L.randn(1, 3, 4, 4), x:narrow(1, 2, 1)}, 2, 2))
    -- values whose squares leave float32: the overflow is named, with how large the values are
    assert.matches("^nn%.init%.whitening_: the patches' second moments overflow float32 %(the images' values reach " ..
      "[%d.]+e%+2%d%): scale the images down first",
      H.error_of(nn.init.whitening_, L.empty(24, 3, 2, 2), L.randn(2, 3, 8, 8) * 1e21))
    assert.matches("nn.init.patch_covariance: batch 2 has 1 channels, the first had 3",
      H.error_of(nn.init.patch_covariance, {L.randn(2, 3, 4, 4), L.randn(2, 1, 4, 4)}, 2, 2))
    assert.matches("nn.init.patch_covariance: expected images",
      H.error_of(nn.init.patch_covariance, {}, 2, 2))
  end)
end)
