-- resize keeps a view where it is, as PyTorch's resize_: the view's offset stays, the storage is reused
-- when offset + numel fits in it (views of it then see the new contents), and a new storage is made
-- otherwise. Before issue 9 it silently moved a view to the start of its storage.
local L = require "lightning"

describe("Tensor:resize", function()
  it("keeps a narrowed view's offset", function()
    local base = L.arange(10)
    local v = base:narrow(1, 4, 4)  -- elements 3, 4, 5, 6
    assert.equal(v, v:resize(2, 2))
    assert.same({{3, 4}, {5, 6}}, v:totable())
    v:fill(-1)
    assert.same({0, 1, 2, -1, -1, -1, -1, 7, 8, 9}, base:totable())
  end)

  it("reuses the storage from the offset when the new size still fits", function()
    local base = L.arange(10)
    local v = base:narrow(1, 8, 2)  -- 7, 8
    v:resize(3)                     -- 7, 8, 9: ends at the storage's end
    assert.same({7, 8, 9}, v:totable())
    v:zero()
    assert.same({0, 1, 2, 3, 4, 5, 6, 0, 0, 0}, base:totable())
  end)

  it("gets a new storage, and leaves the old one alone, when it does not fit from the offset", function()
    local base = L.arange(10)
    local v = base:narrow(1, 8, 2)
    v:resize(4)                     -- 7 + 4 > 10, although 4 <= 10
    v:fill(5)
    assert.same({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, base:totable())
    assert.same({5, 5, 5, 5}, v:totable())
  end)

  it("makes a non-contiguous view contiguous at the same offset", function()
    local base = L.arange(12):view(3, 4)
    local v = base:narrow(2, 2, 2):t()  -- 2x3, strides 1, 4, offset 1
    v:resize(2, 3)
    assert.equal("3x1", tostring(v:stride()))
    assert.same({{1, 2, 3}, {4, 5, 6}}, v:totable())
  end)

  it("resize_as does the same", function()
    local base = L.arange(10)
    local v = base:narrow(1, 3, 6)
    v:resize_as(L.zeros(2, 3))
    assert.same({{2, 3, 4}, {5, 6, 7}}, v:totable())
  end)

  it("to an empty size keeps the offset and the storage", function()
    local base = L.arange(4)
    local v = base:narrow(1, 3, 2)
    v:resize(0)
    assert.equal(0, v:numel())
    v:resize(2)
    assert.same({2, 3}, v:totable())
  end)
end)
