local L = require "lightning"
local H = require "helpers"

describe("elementwise arithmetic", function()
  it("changes the tensor in place and returns it", function()
    local x = L.tensor{1, 2, 3}
    assert.equal(x, x:add(1))
    assert.same({2, 3, 4}, x:totable())
    x:mul(2):sub(1)
    assert.same({3, 5, 7}, x:totable())
    x:add(L.tensor{1, 1, 1}, 2)                    -- x + 2 * y
    assert.same({5, 7, 9}, x:totable())
    x:div(L.tensor{5, 7, 9})
    assert.same({1, 1, 1}, x:totable())
    x:cmul(L.tensor{2, 3, 4}):cdiv(L.tensor{2, 1, 2})
    assert.same({1, 3, 2}, x:totable())
  end)

  it("computes unary functions", function()
    H.assert_close(L.tensor{1, 4, 9}:sqrt(), {1, 2, 3})
    H.assert_close(L.tensor{0, 1}:exp(), {1, math.exp(1)})
    H.assert_close(L.tensor{1, math.exp(2)}:log(), {0, 2})
    assert.same({1, 2, 0}, L.tensor{-1, 2, 0}:abs():totable())
    assert.same({1, -2}, L.tensor{-1, 2}:neg():totable())
    assert.same({4, 9}, L.tensor{2, 3}:pow(2):totable())
    H.assert_close(L.tensor{4, 9}:pow(0.5), {2, 3})
    assert.same({0, 0.5, 1}, L.tensor{-1, 0.5, 3}:clamp(0, 1):totable())
    assert.same({0, 0.5, 3}, L.tensor{-1, 0.5, 3}:clamp(0):totable())
    assert.same({-1, 0.5, 1}, L.tensor{-1, 0.5, 3}:clamp(nil, 1):totable())
    assert.same({7, 14}, L.tensor{1, 2}:addcmul(L.tensor{2, 3}, L.tensor{3, 4}, 1):totable())
  end)

  it("makes new tensors with operators", function()
    local a, b = L.tensor{1, 2}, L.tensor{3, 4}
    assert.same({4, 6}, (a + b):totable())
    assert.same({-2, -2}, (a - b):totable())
    assert.same({3, 8}, (a * b):totable())
    assert.same({3, 2}, (b / L.tensor{1, 2}):totable())
    assert.same({2, 4}, (a * 2):totable())
    assert.same({2, 4}, (2 * a):totable())
    assert.same({9, 8}, (10 - a):totable())
    assert.same({-1, -2}, (-a):totable())
    assert.same({1, 4}, (a ^ 2):totable())
    assert.same({1, 2}, a:totable())                -- operands unchanged
  end)

  it("broadcasts like PyTorch", function()
    local m = L.zeros(2, 3)
    assert.same({{1, 2, 3}, {1, 2, 3}}, (m + L.tensor{1, 2, 3}):totable())
    assert.same({{1, 1, 1}, {2, 2, 2}}, (m + L.tensor{{1}, {2}}):totable())
    assert.equal("2x3", tostring((L.tensor{{1}, {2}} + L.tensor{1, 2, 3}):size()))
  end)

  it("works on non-contiguous views and overlapping operands", function()
    local m = L.tensor{{1, 2}, {3, 4}}
    local s = m:t() + m
    assert.same({{2, 5}, {5, 8}}, s:totable())
    m:add(m:t())                                    -- reads the transpose of what it writes
    assert.same({{2, 5}, {5, 8}}, m:totable())
  end)

  it("compares into 0/1 tensors", function()
    local a = L.tensor{1, 2, 3}
    assert.same({0, 1, 0}, a:eq(2):totable())
    assert.same({0, 0, 1}, a:gt(2):totable())
    assert.same({1, 0, 0}, a:lt(2):totable())
    assert.same({0, 1, 1}, a:ge(2):totable())
    assert.same({1, 1, 0}, a:le(L.tensor{1, 2, 2}):totable())
  end)

  it("uses several threads on large tensors with the same result", function()
    local x = L.randn(1000000)
    local threads = L.get_num_threads()
    L.set_num_threads(1)
    local one = (x * 3 + 1):sum()
    L.set_num_threads(2)
    local two = (x * 3 + 1):sum()
    L.set_num_threads(threads)
    assert.equal(one, two)
  end)
end)

describe("reductions", function()
  local m = L.tensor{{1, 5, 3}, {4, 2, 6}}

  it("over all elements", function()
    assert.equal(21, m:sum())
    assert.equal(3.5, m:mean())
    -- just the number, as PyTorch's t.max() (math.max(t:max(), 1) must not see an index)
    assert.equal(1, select("#", m:max()))
    assert.equal(1, select("#", m:min()))
    assert.equal(6, m:max())
    assert.equal(1, m:min())
    assert.equal(0.5, math.max(L.tensor{0, 0.5}:max(), 0))
    assert.equal(6, m:argmax())
    assert.equal(1, m:argmin())
    assert.equal(2, select("#", m:max(2)))   -- one dimension: values and indices
    H.assert_close(m:var(), 3.5)
    H.assert_close(m:var(nil, false), 35 / 12)
    H.assert_close(m:std(), math.sqrt(3.5))
    H.assert_close(m:norm(), math.sqrt(91))
    H.assert_close(m:norm(1), 21)
    H.assert_close(m:norm(math.huge), 6)
  end)

  it("over one dimension, with 1-based indices", function()
    assert.same({5, 7, 9}, m:sum(1):totable())
    assert.same({9, 12}, m:sum(2):totable())
    assert.same({{9}, {12}}, m:sum(2, true):totable())
    assert.same({3, 4}, m:mean(2):totable())
    local v, i = m:max(2)
    assert.same({5, 6}, v:totable())
    assert.same({2, 3}, i:totable())
    v, i = m:min(1)
    assert.same({1, 2, 3}, v:totable())
    assert.same({1, 2, 1}, i:totable())
    assert.same({2, 1, 2}, m:argmax(1):totable())
    H.assert_close(m:var(1), {4.5, 4.5, 4.5})
    H.assert_close(m:std(2, false), {math.sqrt(8 / 3), math.sqrt(8 / 3)})
    H.assert_close(m:norm(2, 2), {math.sqrt(35), math.sqrt(56)})
  end)

  it("reduces along dimensions of views", function()
    assert.same({9, 12}, m:t():sum(1):totable())
    local x = L.arange(24):view(2, 3, 4)
    assert.same(x:sum(2):totable(), x:permute(2, 1, 3):sum(1):totable())
  end)

  it("propagates NaN through max", function()
    local v = L.tensor{1, 0 / 0, 3}:max()
    assert.is_true(v ~= v)
  end)
end)

describe("matrix products", function()
  local function naive(a, b)
    local n, k, m = a:size(1), a:size(2), b:size(2)
    local out = {}
    for i = 1, n do
      out[i] = {}
      for j = 1, m do
        local s = 0
        for p = 1, k do s = s + a:get(i, p) * b:get(p, j) end
        out[i][j] = s
      end
    end
    return out
  end

  it("mm matches a triple loop, including transposed views", function()
    L.manual_seed(3)
    local a, b = L.randn(37, 53), L.randn(53, 29)
    H.assert_close(L.mm(a, b), naive(a, b), 1e-4)
    local at, bt = L.randn(53, 37):t(), L.randn(29, 53):t()
    H.assert_close(L.mm(at, bt), naive(at, bt), 1e-4)
    H.assert_close(a:mm(b), naive(a, b), 1e-4)
  end)

  it("mm of 1024x1024 matches a triple loop within 1e-4 relative", function()
    L.manual_seed(4)
    local a, b = L.randn(1024, 1024), L.randn(1024, 1024)
    local c = L.mm(a, b)
    for _, ij in ipairs({{1, 1}, {17, 900}, {512, 3}, {1024, 1024}, {700, 700}}) do
      local i, j = ij[1], ij[2]
      local s = 0
      for p = 1, 1024 do s = s + a:get(i, p) * b:get(p, j) end
      assert.is_true(math.abs(c:get(i, j) - s) <= 1e-4 * math.max(1, math.abs(s)) * 32,
        ("C[%d][%d] = %g, expected %g"):format(i, j, c:get(i, j), s))
    end
  end)

  it("addmm scales and accumulates", function()
    local m = L.ones(2, 2)
    local a, b = L.tensor{{1, 2}, {3, 4}}, L.tensor{{1, 0}, {0, 1}}
    assert.same({{3, 5}, {7, 9}}, L.addmm(m, a, b, 1, 2):totable())
    assert.same({{1, 1}, {1, 1}}, m:totable())
    m:addmm(a, b, 0.5)
    assert.same({{1.5, 2.5}, {3.5, 4.5}}, m:totable())
  end)

  it("bmm and matmul", function()
    L.manual_seed(5)
    local a, b = L.randn(3, 4, 5), L.randn(3, 5, 2)
    local c = L.bmm(a, b)
    for i = 1, 3 do H.assert_close(c[i], L.mm(a[i], b[i]), 1e-5) end
    H.assert_close(L.matmul(a, b), c, 1e-6)
    local v = L.tensor{1, 2}
    assert.same({5}, L.matmul(v, v):totable())
    assert.same({5, 11}, L.matmul(L.tensor{{1, 2}, {3, 4}}, v):totable())
    assert.same({7, 10}, L.matmul(v, L.tensor{{1, 2}, {3, 4}}):totable())
    H.assert_close(L.matmul(a, L.ones(5, 2)), a:sum(3):unsqueeze(3):expand(3, 4, 2), 1e-5)
  end)
end)
