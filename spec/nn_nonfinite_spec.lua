-- NaN, +inf and -inf through every elementwise kernel, forward and backward: NaN in gives NaN out, the
-- infinities give their limits, and the ordinary values beside them come out as they do without them.
-- The special values sit at the start, in the middle and in the last elements, so that they pass
-- through the vectorised body of a loop and its scalar tail (and, for the bf16 kernels, both sides of
-- a 256-element chunk). Run under the ASan + UBSan build too (.ci/run): GELU of a NaN once shifted a
-- negative integer there.
local L = require "lightning"
local B = require "bf16_helpers"
local nn = L.nn

local needs_bf16 = B.needs_bf16(it, pending)
local NAN, INF = 0 / 0, math.huge
local KINDS = {NAN, INF, -INF}

local function isnan(v) return v ~= v end

--- n values: ordinary ones, with a special one every 7th place and in the last three places.
local function with_specials(n)
  local special, clean = {}, {}
  for i = 1, n do
    clean[i] = ((i * 37) % 23 - 11) * 0.2 + 0.05
    if i % 7 == 0 or i > n - 3 then special[i] = KINDS[(i // 7 + i) % 3 + 1] end
  end
  local x = {}
  for i = 1, n do x[i] = special[i] or clean[i] end
  for i in pairs(special) do clean[i] = 0 end
  return x, clean, special
end

local function flat(t) return t:float():contiguous():view(-1):totable() end

--- got[i] against want (a number, NaN matched by NaN), within tol relative.
local function expect_at(got, i, want, what, tol)
  local v = got[i]
  local ok
  if isnan(want) then ok = isnan(v)
  elseif math.abs(want) == INF then ok = v == want
  else ok = math.abs(v - want) <= (tol or 1e-6) * (1 + math.abs(want)) end
  assert(ok, ("%s: element %d is %s, expected %s"):format(what, i, tostring(v), tostring(want)))
end

--- The ordinary elements of got equal those of ref (the same kernel without the special values):
-- nothing leaked into them.
local function same_ordinary(got, ref, special, what)
  for i = 1, #ref do
    if not special[i] then expect_at(got, i, ref[i], what .. " (ordinary element)", 0) end
  end
end

local function kind_name(v) return isnan(v) and "nan" or v > 0 and "inf" or "-inf" end

-- f(special) and f'(special) of each activation
local ACTS = {
  {name = "ReLU", make = function() return nn.ReLU() end, value = {nan = NAN, inf = INF, ["-inf"] = 0},
   slope = {nan = NAN, inf = 1, ["-inf"] = 0}},
  {name = "LeakyReLU(0.1)", make = function() return nn.LeakyReLU(0.1) end,
   value = {nan = NAN, inf = INF, ["-inf"] = -INF}, slope = {nan = NAN, inf = 1, ["-inf"] = 0.1}},
  {name = "LeakyReLU(0)", make = function() return nn.LeakyReLU(0) end, value = {nan = NAN, inf = INF, ["-inf"] = 0},
   slope = {nan = NAN, inf = 1, ["-inf"] = 0}},
  {name = "GELU", make = function() return nn.GELU() end, value = {nan = NAN, inf = INF, ["-inf"] = 0},
   slope = {nan = NAN, inf = 1, ["-inf"] = 0}},
}

--- An activation layer forward and backward: special inputs, then special incoming gradients.
-- In bf16 the layer computes in mixed precision, on bf16 inputs.
local function check_activation(a, bf16, tol)
  local function prepare(t) return bf16 and t:bfloat16() or t end
  local n = 300
  local xs, xc, special = with_specials(n)
  local g = {}
  for i = 1, n do g[i] = ((i * 11) % 7 - 3) * 0.25 + 0.1 end
  local x, clean, grad = prepare(L.tensor(xs)), prepare(L.tensor(xc)), prepare(L.tensor(g))
  local layer, ref = a.make(), a.make()
  if bf16 then layer:set_precision("bf16"); ref:set_precision("bf16") end
  local what = a.name .. (bf16 and " (bf16)" or "")
  local y, y_ref = flat(layer:forward(x)), flat(ref:forward(clean))
  same_ordinary(y, y_ref, special, what .. " forward")
  for i, v in pairs(special) do expect_at(y, i, a.value[kind_name(v)], what .. " forward of " .. kind_name(v)) end
  local d, d_ref = flat(layer:backward(x, grad)), flat(ref:backward(clean, grad))
  same_ordinary(d, d_ref, special, what .. " backward")
  local gv = flat(grad)
  for i, v in pairs(special) do
    expect_at(d, i, gv[i] * a.slope[kind_name(v)], what .. " backward at an input " .. kind_name(v), tol)
  end
  -- special incoming gradients at ordinary inputs: g times the slope there (0 on ReLU's flat side,
  -- whatever g is, but NaN for a NaN g)
  local ones = flat(ref:backward(clean, prepare(L.ones(n))))
  d = flat(layer:backward(clean, prepare(L.tensor(xs))))
  same_ordinary(d, flat(ref:backward(clean, prepare(L.tensor(xc)))), special, what .. " backward")
  for i, v in pairs(special) do
    local want = ones[i] == 0 and (isnan(v) and NAN or 0) or v * ones[i]
    expect_at(d, i, want, what .. " backward of an incoming " .. kind_name(v))
  end
end

describe("non-finite values", function()
  for _, a in ipairs(ACTS) do
    it(a.name .. " in float32 gives NaN for NaN and the limits for the infinities, forward and backward", function()
      check_activation(a, false)
    end)
    needs_bf16(a.name .. " in bf16 (mixed precision) alike", function()
      check_activation(a, true, 0.01)
    end)
  end

  -- BatchNorm with its activation: elementwise in eval mode; in training the statistics of a channel
  -- with a special value are NaN, so is all of that channel, and the other channels are untouched.
  local function check_batchnorm_act(act, bf16)
    local N, C, H, W = 2, 35, 3, 2          -- 35 channels: a vector body and a tail along each row
    local xs, xc, special = with_specials(N * H * W * C)
    -- the values in (N, H, W, C) order: channels-last, as the fused kernel walks them
    local function nchw(v) return L.tensor(v):view(N, H, W, C):permute(1, 4, 2, 3) end
    local function prepare(t) return bf16 and B.channels_last(t) or t:contiguous() end
    local function nhwc_flat(t) return flat(t:permute(1, 3, 4, 2)) end
    local x, clean = prepare(nchw(xs)), prepare(nchw(xc))
    local g = prepare(L.randn(N, C, H, W))
    local what = ("BatchNormAct2d(%s%s)"):format(act.name, bf16 and ", bf16" or "")
    local layer, ref = nn.BatchNormAct2d(C, {activation = act.kind}), nn.BatchNormAct2d(C, {activation = act.kind})
    if bf16 then layer:set_precision("bf16"); ref:set_precision("bf16") end
    layer:eval(); ref:eval()
    local y, y_ref = nhwc_flat(layer:forward(x)), nhwc_flat(ref:forward(clean))
    same_ordinary(y, y_ref, special, what .. " eval forward")
    local k = 1 / math.sqrt(1 + layer.eps)
    for i, v in pairs(special) do expect_at(y, i, act.value[kind_name(v)], what .. " eval forward of " .. kind_name(v)) end
    local d, d_ref = nhwc_flat(layer:backward(x, g)), nhwc_flat(ref:backward(clean, g))
    same_ordinary(d, d_ref, special, what .. " eval backward")
    local gv = nhwc_flat(g)
    for i, v in pairs(special) do
      expect_at(d, i, gv[i] * k * act.slope[kind_name(v)], what .. " eval backward at " .. kind_name(v), 0.01)
    end
    -- training: only channels 1 and 2 hold special values
    local xt = nchw(xc)
    xt[1][1][1][1], xt[2][2][3][2] = NAN, INF
    local train, train_ref = nn.BatchNormAct2d(C, {activation = act.kind}), nn.BatchNormAct2d(C, {activation = act.kind})
    if bf16 then train:set_precision("bf16"); train_ref:set_precision("bf16") end
    local yt, yt_ref = train:forward(prepare(xt)):float(), train_ref:forward(clean):float()
    for c = 1, C do
      local got, want = flat(yt:select(2, c)), flat(yt_ref:select(2, c))
      for i = 1, #got do
        expect_at(got, i, c <= 2 and NAN or want[i], ("%s training forward, channel %d"):format(what, c), 0)
      end
    end
  end

  for _, act in ipairs{{name = "ReLU", kind = "relu", value = ACTS[1].value, slope = ACTS[1].slope},
                       {name = "GELU", kind = "gelu", value = ACTS[4].value, slope = ACTS[4].slope}} do
    it("BatchNormAct2d with " .. act.name .. " in float32", function() check_batchnorm_act(act, false) end)
    needs_bf16("BatchNormAct2d with " .. act.name .. " fused on channels-last bf16", function()
      check_batchnorm_act(act, true)
    end)
  end

  -- the fused BatchNorm+ReLU+2x2 max pool in eval mode: x takes no part in its input gradient (0 * inf
  -- was NaN there), a window with +inf gives +inf, one with NaN gives NaN
  local function check_bn_relu_pool(bf16)
    local N, C, H, W = 2, 35, 5, 4           -- H odd: a row outside every window
    local x = L.randn(N, C, H, W)
    local clean = x:clone()
    x[1][3][1][2], x[2][34][3][3], x[1][35][4][1], x[2][1][5][2] = INF, NAN, -INF, INF   -- the last outside
    local function prepare(t) return bf16 and B.channels_last(t) or t end
    local function make()
      local bn = nn.BatchNorm2d(C)
      local layer = nn.BatchNormReLUMaxPool2d(bn)
      if bf16 then layer:set_precision("bf16") end
      bn:eval()   -- (bn is the layer's field, not its child: whoever owns it switches its mode)
      layer:eval()
      return layer
    end
    local layer, ref = make(), make()
    local what = "BatchNormReLUMaxPool2d" .. (bf16 and " (bf16)" or "")
    local y, y_ref = layer:forward(prepare(x)):float(), ref:forward(prepare(clean)):float()
    assert.equal(INF, y[1][3][1][1], what .. ": the window holding +inf")
    assert.is_true(isnan(y[2][34][2][2]), what .. ": the window holding NaN")
    local g = L.randn(N, C, H // 2, W // 2)
    local d, d_ref = layer:backward(prepare(x), prepare(g)):float(), ref:backward(prepare(clean), prepare(g)):float()
    local special_window = {["1,3,1,1"] = true, ["2,34,2,2"] = true, ["1,35,2,1"] = true}
    for n = 1, N do for c = 1, C do for h = 1, H do for w = 1, W do
      local v = d[n][c][h][w]
      assert(v == v and math.abs(v) < INF, ("%s backward: element (%d,%d,%d,%d) is %s"):format(what, n, c, h, w, v))
      if not special_window[("%d,%d,%d,%d"):format(n, c, (h + 1) // 2, (w + 1) // 2)] then
        assert(v == d_ref[n][c][h][w], ("%s backward: element (%d,%d,%d,%d) changed"):format(what, n, c, h, w))
      end
    end end end end
  end

  it("BatchNormReLUMaxPool2d in eval mode", function() check_bn_relu_pool(false) end)
  needs_bf16("BatchNormReLUMaxPool2d in eval mode on channels-last bf16", function() check_bn_relu_pool(true) end)

  it("Dropout multiplies by its mask: NaN stays NaN, a kept infinity stays one (a dropped one is NaN, as in PyTorch)", function()
    local xs = with_specials(300)
    local layer = nn.Dropout(0.5)
    L.manual_seed(5)
    local mask = flat(layer:forward(L.ones(300)))
    L.manual_seed(5)
    local y = flat(layer:forward(L.tensor(xs)))
    for i = 1, 300 do expect_at(y, i, xs[i] * mask[i], "Dropout forward") end
    local d = flat(layer:backward(L.tensor(xs), L.tensor(xs)))
    for i = 1, 300 do expect_at(d, i, xs[i] * mask[i], "Dropout backward") end
  end)

  it("MulConstant, add, mul, cmul, sigmoid and tanh follow IEEE arithmetic", function()
    local xs = with_specials(300)
    local ys = {}
    for i = 1, 300 do ys[i] = xs[(i * 5) % 300 + 1] end
    local x, y = L.tensor(xs), L.tensor(ys)
    local m = nn.MulConstant(0.5)
    local out = flat(m:forward(x))
    for i = 1, 300 do expect_at(out, i, xs[i] * 0.5, "MulConstant forward") end
    out = flat(m:backward(x, x))
    for i = 1, 300 do expect_at(out, i, xs[i] * 0.5, "MulConstant backward") end
    local ops = {
      add = {function() return x:clone():add(y) end, function(a, b) return a + b end},
      mul = {function() return x:clone():mul(3) end, function(a) return a * 3 end},
      cmul = {function() return x:clone():cmul(y) end, function(a, b) return a * b end},
      sigmoid = {function() return x:clone():sigmoid() end, function(a) return 1 / (1 + math.exp(-a)) end},
      tanh = {function() return x:clone():tanh() end,
              function(a) return a == INF and 1 or a == -INF and -1 or (math.exp(2 * a) - 1) / (math.exp(2 * a) + 1) end},
    }
    for name, op in pairs(ops) do
      local got = flat(op[1]())
      for i = 1, 300 do expect_at(got, i, op[2](xs[i], ys[i]), name, 1e-5) end
    end
  end)

  it("softmax: a row with NaN or +inf is NaN (as PyTorch), -inf gives probability 0, other rows untouched", function()
    local x = L.randn(4, 37)
    local clean = x:clone()
    x[1][5], x[2][37], x[3][1], x[3][20] = NAN, INF, -INF, -INF
    for _, log in ipairs{false, true} do
      local layer, ref = log and nn.LogSoftmax(2) or nn.Softmax(2), log and nn.LogSoftmax(2) or nn.Softmax(2)
      local y, y_ref = layer:forward(x), ref:forward(clean)
      local what = log and "LogSoftmax" or "Softmax"
      for j = 1, 37 do
        expect_at(flat(y[1]), j, NAN, what .. " row with NaN")
        expect_at(flat(y[2]), j, NAN, what .. " row with +inf")
        expect_at(flat(y[4]), j, flat(y_ref[4])[j], what .. " ordinary row", 0)
      end
      expect_at(flat(y[3]), 1, log and -INF or 0, what .. " at -inf")
      assert.is_true(math.abs(y[3]:clone():exp():sum() - 1) < 1e-5 or not log)
      local d = layer:backward(x, L.ones(4, 37))
      for j = 1, 37 do expect_at(flat(d[1]), j, NAN, what .. " backward of the row with NaN") end
      local d4, d4_ref = flat(d[4]), flat(ref:backward(clean, L.ones(4, 37))[4])
      for j = 1, 37 do expect_at(d4, j, d4_ref[j], what .. " backward, ordinary row", 0) end
    end
  end)

  it("cross entropy: a sample whose scores hold NaN or +inf has a NaN loss and gradient, the others do not", function()
    local x = L.randn(3, 5)
    x[1][2], x[2][5] = NAN, INF
    local t = L.tensor{1, 2, 3}
    local crit = nn.CrossEntropyLoss{reduction = "none"}
    local losses = flat(crit:forward(x, t))
    assert.is_true(isnan(losses[1]) and isnan(losses[2]))
    assert.is_true(losses[3] == losses[3] and math.abs(losses[3]) < INF)
    local d = crit:backward(x, t, L.ones(3))
    for j = 1, 5 do
      assert.is_true(isnan(d[1][j]) and isnan(d[2][j]), "gradient of a non-finite sample")
      assert.is_true(math.abs(d[3][j]) < INF, "gradient of the finite sample")
    end
    assert.is_true(isnan(nn.CrossEntropyLoss():forward(x, t)))
  end)
end)
