-- bf16 convolutions against the float32 path over the shapes where oneDNN 2.6's bf16 kernels went
-- wrong (issue 24): every channel count from 1 to 33 in and out, odd and even, 1x1 and 3x3 kernels,
-- strides 1 and 2, outputs of a multiple of 30 pixels (5x6, 3x10, 10x6, 30x31) and others; forward,
-- input gradient and weight gradient within bf16's precision, and where a NaN or an infinity goes:
-- only to the outputs whose window holds it, and an all-+inf input stays +inf.
local L = require "lightning"
local nn = L.nn
local B = require "bf16_helpers"
local needs_bf16 = B.needs_bf16(it, pending)

-- Input sizes (h, w): with stride 1 the outputs are 5x6, 3x10, 10x6, 30x31 (multiples of 30 pixels)
-- and 7x7; with stride 2, 10x12 gives 5x6.
local SIZES = {{5, 6}, {3, 10}, {10, 6}, {10, 12}, {7, 7}, {30, 31}}

-- The cases: each input channel count 1..33 with an output count of the other parity half the
-- time, each kernel and stride, over the sizes in turn; and the shapes the issue reported.
local function cases()
  local list = {}
  for cin = 1, 33 do
    for _, k in ipairs {1, 3} do
      for _, stride in ipairs {1, 2} do
        local i = #list
        local size = SIZES[i % #SIZES + 1]
        local cout = (cin * 7 + i) % 33 + 1
        list[#list + 1] = {cin = cin, cout = cout, k = k, stride = stride, h = size[1], w = size[2]}
      end
    end
  end
  for _, c in ipairs {{16, 7, 5, 6}, {16, 7, 3, 10}, {16, 9, 10, 6}, {15, 7, 30, 31}} do
    list[#list + 1] = {cin = c[1], cout = c[2], k = 1, stride = 1, h = c[3], w = c[4]}
  end
  list[#list + 1] = {cin = 16, cout = 7, k = 1, stride = 2, h = 10, w = 12}
  return list
end

local function name_of(c)
  return ("%d->%d %dx%d stride %d on %dx%d"):format(c.cin, c.cout, c.k, c.k, c.stride, c.h, c.w)
end

-- A float32 layer and a bf16 one with the same weights.
local function pair(c)
  local fp32 = nn.Conv2d(c.cin, c.cout, c.k, {stride = c.stride, padding = (c.k - 1) // 2})
  local bf16 = nn.Conv2d(c.cin, c.cout, c.k, {stride = c.stride, padding = (c.k - 1) // 2})
  bf16.weight:copy(fp32.weight)
  bf16.bias:copy(fp32.bias)
  bf16:set_precision("bf16")
  return fp32, bf16
end

-- 1 where x is NaN, +inf or -inf (one tensor per kind), as float32.
local function kinds(x)
  x = x:float()
  return {nan = x:ne(x), pinf = x:eq(math.huge), ninf = x:eq(-math.huge)}
end

local function count(mask) return mask:sum() end

local function assert_same_kinds(got, want, what)
  local g, w = kinds(got), kinds(want)
  for kind, m in pairs(w) do
    local differ = (g[kind] - m):abs():sum()
    assert(differ == 0, ("%s: %d elements differ from float32 in being %s"):format(what, differ, kind))
  end
end

-- got is non-finite only where want is, and somewhere.
local function assert_within_kinds(got, want, what)
  local g, w = kinds(got), kinds(want)
  local bad = g.nan + g.pinf + g.ninf
  local outside = (bad - bad:clone():mul(w.nan + w.pinf + w.ninf)):sum()   -- (mul works in place)
  assert(outside == 0, ("%s: %d elements are NaN or infinite where float32's are not"):format(what, outside))
  assert(bad:sum() > 0, what .. ": no NaN or infinity")
end

-- Output rows (or columns) whose window of size k, stride s and padding p holds input index i: first,
-- count (nil when none does: a stride-2 1x1 kernel skips every other row).
local function window_span(i, k, s, p, n_out)
  local first, last
  for o = 1, n_out do
    local lo = (o - 1) * s - p + 1
    if i >= lo and i <= lo + k - 1 then
      first = first or o
      last = o
    end
  end
  if first then return first, last - first + 1 end
end

describe("bf16 convolutions against float32 (oneDNN's odd channel counts and 30-pixel outputs)", function()
  -- float32 is the library's own im2col path, not oneDNN's float32 kernels (which spec/nn_fp32_onednn_spec.lua
  -- checks against it): a reference that shares no code with what it checks
  local was
  setup(function() was = L.set_fp32_onednn(false) end)
  teardown(function() L.set_fp32_onednn(was) end)

  needs_bf16("forward, input gradient and weight gradient agree within bf16's precision", function()
    L.manual_seed(24)
    for _, c in ipairs(cases()) do
      local fp32, bf16 = pair(c)
      local x = L.randn(2, c.cin, c.h, c.w)
      local y32, y16 = fp32:forward(x), bf16:forward(x)
      assert.equal("dnnl", bf16._kernel:info().implementation)
      local what = name_of(c)
      B.assert_close(y16, y32, what .. " output")
      local g = L.randn(y32:size())
      B.assert_close(bf16:backward(x, g), fp32:backward(x, g), what .. " input gradient")
      B.assert_close(bf16.weight.grad, fp32.weight.grad, what .. " weight gradient")
      B.assert_close(bf16.bias.grad, fp32.bias.grad, what .. " bias gradient")
    end
  end)

  needs_bf16("a NaN or an infinity reaches only what its window covers, and an all-+inf input stays +inf", function()
    L.manual_seed(25)
    for n, c in ipairs(cases()) do
      if n % 3 == 1 or c.cin % 2 == 1 or c.cout % 2 == 1 then   -- the odd counts all, a third of the rest
        local fp32, bf16 = pair(c)
        local what, pad = name_of(c), (c.k - 1) // 2
        -- one NaN in the first image and one +inf in the second, at pixels away from each other
        local x = L.randn(2, c.cin, c.h, c.w)
        local i, j = (c.h + 1) // 2, (c.w + 1) // 2
        x[1][c.cin][i][j] = 0 / 0
        x[2][1][1][1] = math.huge
        local y16, y32 = bf16:forward(x), fp32:forward(x)
        local y = kinds(y16)
        local ho, wo = y16:size(3), y16:size(4)
        local y0, ny = window_span(i, c.k, c.stride, pad, ho)
        local x0, nx = window_span(j, c.k, c.stride, pad, wo)
        local want_nan = ny and nx and c.cout * ny * nx or 0
        assert(count(y.nan) == want_nan, ("%s: %d NaN outputs, %d under the NaN's window"):format(what,
          count(y.nan), want_nan))
        if want_nan > 0 then
          assert.equal(want_nan, count(y.nan:narrow(1, 1, 1):narrow(3, y0, ny):narrow(4, x0, nx)), what)
        end
        assert_same_kinds(y16, y32, what .. " output")
        local g = L.randn(y32:size())
        bf16:backward(x, g)
        fp32:backward(x, g)
        assert_same_kinds(bf16.weight.grad, fp32.weight.grad, what .. " weight gradient of a NaN and an inf")
        -- a NaN in the output's gradient reaches the input gradient under its window only
        local xf = L.randn(2, c.cin, c.h, c.w)
        g[1][1][1][1] = 0 / 0
        g[2][c.cout][ho][wo] = math.huge
        bf16:zero_grad()
        fp32:zero_grad()
        assert_same_kinds(bf16:backward(xf, g), fp32:backward(xf, g), what .. " input gradient")
        -- (float32's im2col multiplies the padding's zeros by the NaN too; oneDNN skips the padding)
        assert_within_kinds(bf16.weight.grad, fp32.weight.grad, what .. " weight gradient of a NaN gradient")
        -- all +inf, positive weights: +inf
        bf16.weight:fill(0.1)
        bf16.bias:fill(0)
        local inf = kinds(bf16:forward(L.zeros(2, c.cin, c.h, c.w):fill(math.huge)))
        assert(count(inf.pinf) == inf.pinf:numel(), ("%s: an all-+inf input gave %d of %d outputs +inf"):format(what,
          count(inf.pinf), inf.pinf:numel()))
      end
    end
  end)
end)
