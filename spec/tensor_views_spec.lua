local L = require "lightning"

describe("tensor views", function()
  local x
  before_each(function() x = L.arange(24):view(2, 3, 4) end)

  it("share storage with the original", function()
    local v = x:view(6, 4)
    v[1][1] = 100
    assert.equal(100, x:get(1, 1, 1))
    local n = x:narrow(3, 2, 2)
    n:fill(-1)
    assert.equal(-1, x:get(2, 3, 2))
    assert.equal(-1, x:get(1, 1, 3))
    assert.equal(3, x:get(1, 1, 4))
  end)

  it("infer one size given as -1", function()
    assert.equal("4x6", tostring(x:view(4, -1):size()))
    assert.equal("24", tostring(x:reshape(-1):size()))
  end)

  it("select, narrow and index with 1-based positions", function()
    assert.same({12, 13, 14, 15}, x:select(1, 2):select(1, 1):totable())
    assert.same({{4, 5, 6, 7}, {8, 9, 10, 11}}, x[1]:narrow(1, 2, 2):totable())
    assert.equal(23, x[2][3][4])
    assert.equal(20, x:select(3, 1):get(2, 3))
  end)

  it("transpose, t and permute move strides, not data", function()
    local m = L.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.same({{1, 4}, {2, 5}, {3, 6}}, m:t():totable())
    assert.is_false(m:t():is_contiguous())
    assert.is_true(m:t():contiguous():is_contiguous())
    local p = x:permute(3, 1, 2)
    assert.equal("4x2x3", tostring(p:size()))
    assert.equal(x:get(2, 3, 4), p:get(4, 2, 3))
    assert.same(x:transpose(1, 3):totable(), x:permute(3, 2, 1):totable())
  end)

  it("reshape copies when a view is impossible, view refuses", function()
    local t = x:transpose(1, 2)
    assert.has_error(function() t:view(24) end)
    local r = t:reshape(24)
    assert.equal(24, r:numel())
    assert.equal(x:get(2, 1, 1), r[5])   -- t[1][2][1]
  end)

  it("squeeze and unsqueeze", function()
    local s = L.zeros(1, 3, 1, 2)
    assert.equal("3x2", tostring(s:squeeze():size()))
    assert.equal("3x1x2", tostring(s:squeeze(1):size()))
    assert.equal("1x2x3x4", tostring(x:unsqueeze(1):size()))
    assert.equal("2x3x4x1", tostring(x:unsqueeze(4):size()))
    assert.equal("2x3x4x1", tostring(x:unsqueeze(-1):size()))
  end)

  it("expand repeats size-1 dimensions without copying", function()
    local col = L.tensor{{1}, {2}}
    local e = col:expand(2, 3)
    assert.same({{1, 1, 1}, {2, 2, 2}}, e:totable())
    assert.equal(0, e:stride(2))
    assert.same({{1, 1, 1}, {2, 2, 2}}, col:expand(-1, 3):totable())
    assert.has_error(function() e:fill(0) end)
  end)

  it("reads and writes elements with t[i], get and set", function()
    local m = L.zeros(2, 3)
    m[2][3] = 5
    m:set(1, 2, 7)
    assert.equal(5, m:get(2, 3))
    assert.equal(7, m[1][2])
    m[1] = 9
    assert.same({{9, 9, 9}, {0, 0, 5}}, m:totable())
    m[2] = L.tensor{1, 2, 3}
    assert.same({1, 2, 3}, m[2]:totable())
    assert.equal(2, #m)
  end)

  it("copy, clone, fill and zero", function()
    local a = L.zeros(2, 2)
    local b = L.tensor{{1, 2}, {3, 4}}
    assert.equal(a, a:copy(b))
    assert.same(b:totable(), a:totable())
    local c = b:clone()
    c:zero()
    assert.equal(10, b:sum())
    assert.equal(0, c:sum())
    assert.equal(8, c:fill(2):sum())
    a:copy(L.tensor{10, 20})          -- broadcast over rows
    assert.same({{10, 20}, {10, 20}}, a:totable())
  end)

  it("carries fields such as grad", function()
    local p = L.zeros(3)
    assert.is_nil(p.grad)
    p.grad = L.ones(3)
    assert.equal(3, p.grad:sum())
    p.name = "weight"
    assert.equal("weight", p.name)
  end)
end)
