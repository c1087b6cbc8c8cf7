-- Sizes, offsets and indices that would overflow int64 (or leave the storage) are errors that name the
-- function, the argument and the limit; they never wrap, corrupt memory or hang. The first cases are the
-- ones issue 9 found; the asan run (see .busted) runs these under AddressSanitizer and UBSan, where a
-- wrapped signed product is itself a failure. fuzz/tensor_api_fuzz.c explores the same API at random.
local L = require "lightning"
local H = require "helpers"

local fails = H.fails

local huge = {math.mininteger, math.maxinteger, 1 << 62, 1 << 32, 1 << 31, -(1 << 62)}
local not_integers = {0 / 0, math.huge, -math.huge, 2 ^ 63, -(2 ^ 64), 1.5}

describe("overflow-proof tensors", function()
  it("narrow with math.mininteger as start is an error and leaves the tensor intact", function()
    local t = L.zeros(3, 4)
    fails("Tensor:narrow: start %-9223372036854775808 out of range %(indices start at 1%)", function()
      t:narrow(1, math.mininteger, 2):fill(7)
    end)
    assert.equal(0, t:sum())
  end)

  it("narrow with math.maxinteger as length is an error", function()
    fails("Tensor:narrow: range from 2 of length 9223372036854775807 out of bounds for dimension 1 of size 3",
      L.zeros(3, 4).narrow, L.zeros(3, 4), 1, 2, math.maxinteger)
  end)

  it("view of an empty tensor as 2^32 x 2^32 is an error naming the limit", function()
    fails("Tensor:view: cannot view a tensor of 0 elements %(0%) as 4294967296x4294967296: more than 2%^40 elements",
      function() return L.zeros(0):view(1 << 32, 1 << 32) end)
  end)

  it("expand to 2^62 is an error naming the limit", function()
    fails("Tensor:expand: sizes 3x4611686018427387904 are too large: their product overflows the limit of 2%^40",
      function() return L.zeros(3, 1):expand(3, 1 << 62) end)
  end)

  it("narrow and select refuse every extreme start, length and index", function()
    local t = L.arange(12):view(3, 4)
    for _, v in ipairs(huge) do
      assert.has_error(function() t:narrow(1, v, 1) end)
      assert.has_error(function() t:narrow(2, 1, v) end)
      assert.has_error(function() t:select(1, v) end)
      assert.has_error(function() return t[v] end)
      assert.has_error(function() t[v] = 1 end)
      assert.has_error(function() return t:get(1, v) end)
      assert.has_error(function() t:set(v, 1, 5) end)
    end
    assert.equal(66, t:sum())
  end)

  it("numbers that are not integers are refused where an integer is expected, and shown", function()
    local t = L.zeros(3, 4)
    for _, v in ipairs(not_integers) do
      fails("Tensor:narrow: start must be an integer, got", t.narrow, t, 1, v, 1)
      fails("Tensor:narrow: length must be an integer, got", t.narrow, t, 1, 1, v)
      fails("Tensor:select: index must be an integer, got", t.select, t, 1, v)
      fails("Tensor:view: size 1 must be an integer, got", t.view, t, v)
      fails("lightning.zeros: size 2 must be an integer, got", L.zeros, 2, v)
      fails("Tensor:size: dimension must be an integer, got", t.size, t, v)
    end
    fails("got 1.5", t.select, t, 1, 1.5)
    fails("got 9.2233720368548e%+18", t.select, t, 1, 2 ^ 63)
    fails("got %-?nan", t.select, t, 1, 0 / 0)
    fails("got inf", t.select, t, 1, math.huge)
  end)

  it("creation refuses sizes whose product overflows, even with a 0-sized dimension", function()
    fails("lightning.zeros: sizes 4611686018427387904x4 are too large", L.zeros, 1 << 62, 4)
    fails("lightning.zeros: sizes 3037000500x3037000500 are too large", L.zeros, 3037000500, 3037000500)
    fails("lightning.empty: sizes 0x2199023255552 are too large", L.empty, 0, 1 << 41)
    fails("lightning.ones: sizes 0x1048576x1048576x1048576 are too large", L.ones, 0, 1 << 20, 1 << 20, 1 << 20)
    fails("lightning.randn: sizes 2147483648x2147483648 are too large", L.randn, 1 << 31, 1 << 31)
    fails("lightning.arange: too many elements", L.arange, 0, 1e300)
  end)

  it("view and reshape refuse sizes whose product overflows, with or without -1", function()
    local t = L.zeros(4)
    for _, v in ipairs({1 << 62, math.maxinteger, 1 << 32}) do
      fails("Tensor:view: cannot view a tensor of 4 elements", t.view, t, v, v)
      fails("Tensor:view: cannot view a tensor of 4 elements", t.view, t, -1, v, v)
      fails("Tensor:reshape: cannot reshape a tensor of 4 elements", t.reshape, t, v, -1, v)
    end
    fails("Tensor:view: size 1 must be non%-negative or %-1, got %-9223372036854775808", t.view, t, math.mininteger)
  end)

  it("expand refuses results beyond the limit however they are reached", function()
    local one = L.ones(1, 1)
    fails("Tensor:expand: sizes 2147483648x2147483648 are too large", one.expand, one, 1 << 31, 1 << 31)
    fails("Tensor:expand: sizes 4x1099511627776x1 are too large", one.expand, one, 4, 1 << 40, 1)
    fails("Tensor:expand: size %-1 is not allowed for a new leading dimension", one.expand, one, -1, 1, 1)
    fails("Tensor:expand: size 1 must be non%-negative or %-1, got %-9223372036854775808", one.expand, one, math.mininteger, 1)
    -- at the limit it is a view (copying it would need 4 TB, which this spec does not try)
    local big = one:expand(1 << 20, 1 << 20)
    assert.equal(1 << 40, big:numel())
    assert.equal("1048576x1048576", tostring(big:size()))
    assert.truthy(tostring(big):find("Tensor of size 1048576x1048576", 1, true))
    fails("cannot write into an expanded tensor", big.fill, big, 1)
  end)

  it("broadcasting refuses shapes whose product is beyond the limit", function()
    local a, b = L.zeros(1 << 21, 1), L.zeros(1, 1 << 20)
    fails("Tensor:__add: sizes 2097152x1048576 are too large", function() return a + b end)
  end)

  it("resize refuses sizes whose product overflows and keeps the tensor", function()
    local t = L.arange(6)
    fails("Tensor:resize: sizes 4611686018427387904x4 are too large", t.resize, t, 1 << 62, 4)
    fails("Tensor:resize: size 1 must be non%-negative, got %-9223372036854775808", t.resize, t, math.mininteger)
    assert.same({0, 1, 2, 3, 4, 5}, t:totable())
  end)

  it("unsqueeze, permute, transpose and dimension arguments refuse extreme dimensions", function()
    local t = L.zeros(2, 3)
    for _, v in ipairs(huge) do
      assert.has_error(function() t:unsqueeze(v) end)
      assert.has_error(function() t:transpose(v, 1) end)
      assert.has_error(function() t:permute(v, 1) end)
      assert.has_error(function() t:sum(v) end)
      assert.has_error(function() t:size(v) end)
    end
  end)

  it("a table of sizes with an absurd length is refused, not truncated", function()
    local sizes = setmetatable({}, {__len = function() return (1 << 32) + 2 end, __index = function() return 1 end})
    fails("lightning.zeros: expected 1 to 8 sizes, got 4294967298", L.zeros, sizes)
  end)

  it("views at the edges still address the right elements", function()
    local t = L.arange(12):view(3, 4)
    assert.same({}, t:narrow(1, 4, 0):view(-1):totable())
    assert.same({8, 9, 10, 11}, t:narrow(1, 3, 1):view(-1):totable())
    assert.same({3, 7, 11}, t:select(2, 4):totable())
    assert.equal(11, t:get(3, 4))
    assert.equal(11, t:t():contiguous():get(4, 3))
  end)
end)
