-- Tensors with a 0-sized dimension anywhere are ordinary: they are created, copied, filled, combined,
-- reduced where the reduction is defined, viewed and printed, and every operation on them does nothing
-- (issue 9). Reductions follow PyTorch: a sum over no elements is 0, a mean or a spread NaN, a max an error.
local L = require "lightning"
local H = require "helpers"

local shapes = {{0}, {3, 0}, {0, 3}, {2, 0, 3}, {2, 3, 0}, {1, 0, 1}}

local function empty_like(size) return L.zeros(table.unpack(size)) end

describe("empty tensors", function()
  it("are created by every creation function, with the sizes asked", function()
    for _, size in ipairs(shapes) do
      local shape = table.concat(size, "x")
      for _, make in ipairs({L.zeros, L.ones, L.empty, L.rand, L.randn}) do
        local t = make(table.unpack(size))
        assert.equal(shape, tostring(t:size()))
        assert.equal(0, t:numel())
        assert.is_true(t:is_contiguous())
      end
      assert.equal(shape, tostring(L.full(size, 2):size()))
    end
    assert.equal("0", tostring(L.arange(0):size()))
    assert.equal("2x0", tostring(L.tensor{{}, {}}:size()))
  end)

  it("have PyTorch's strides, where a 0-sized dimension counts as 1", function()
    assert.equal("1x1", tostring(L.zeros(3, 0):stride()))
    assert.equal("3x3x1", tostring(L.zeros(2, 0, 3):stride()))
  end)

  it("clone, fill, zero, copy and random fills do nothing, whatever the layout", function()
    for _, size in ipairs(shapes) do
      local t = empty_like(size)
      local views = {t, t:unsqueeze(1), t:transpose(1, #size)}
      for _, v in ipairs(views) do
        assert.equal(0, v:clone():numel())
        assert.equal(v, v:fill(7))
        assert.equal(v, v:zero())
        assert.equal(v, v:copy(L.zeros(1)))
        assert.equal(v, v:uniform())
        assert.equal(v, v:normal())
        assert.equal(0, v:contiguous():numel())
      end
    end
    local transposed = L.zeros(2, 0, 3):transpose(1, 3)
    assert.equal("3x0x2", tostring(transposed:clone():size()))
  end)

  it("take part in arithmetic and comparisons, in place and as new tensors", function()
    local a, b = L.zeros(3, 0), L.ones(3, 0)
    for _, t in ipairs({a + b, a - 1, 2 * a, a / b, a ^ 2, -a, a:eq(b), a:gt(0)}) do
      assert.equal("3x0", tostring(t:size()))
    end
    assert.equal("3x0", tostring((L.zeros(3, 1) + L.zeros(1, 0)):size()))
    for _, f in ipairs({"add", "sub", "mul", "div", "pow"}) do assert.equal(a, a[f](a, 2)) end
    for _, f in ipairs({"neg", "abs", "exp", "log", "sqrt", "sign", "tanh", "sigmoid"}) do assert.equal(a, a[f](a)) end
    assert.equal(a, a:clamp(0, 1))
    assert.equal(a, a:addcmul(a, b))
    assert.equal(a, a:cmul(b))
  end)

  it("reduce as PyTorch does", function()
    local t = L.zeros(3, 0)
    assert.equal(0, t:sum())
    assert.equal(0, t:norm())
    assert.is_true(t:mean() ~= t:mean())
    assert.is_true(t:std() ~= t:std())
    assert.same({0, 0, 0}, t:sum(2):totable())       -- over the empty dimension: one 0 per row
    assert.same({0, 0, 0}, t:norm(2, 2):totable())
    local means = t:mean(2):totable()
    for i = 1, 3 do assert.is_true(means[i] ~= means[i]) end
    assert.equal("0", tostring(t:sum(1):size()))     -- over the other one: nothing
    local values, indices = t:max(1)
    assert.equal(0, values:numel())
    assert.equal(0, indices:numel())
    assert.truthy(H.error_of(t.max, t):find("cannot take the max of an empty tensor"))
    assert.truthy(H.error_of(t.max, t, 2):find("cannot take the max of an empty tensor"))
    assert.truthy(H.error_of(t.min, t):find("cannot take the min of an empty tensor"))
  end)

  it("multiply as matrices of an empty inner dimension give zeros", function()
    local p = L.mm(L.ones(3, 0), L.ones(0, 4))
    assert.same({{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}}, p:totable())
    assert.equal("0x4", tostring(L.mm(L.ones(0, 3), L.ones(3, 4)):size()))
    assert.equal(0, L.matmul(L.ones(2, 3, 0), L.ones(0, 4)):abs():sum())
    assert.equal(12, L.addmm(L.ones(3, 4), L.ones(3, 0), L.ones(0, 4)):sum())
  end)

  it("are viewed, narrowed and expanded like any tensor", function()
    local t = L.zeros(3, 0)
    assert.equal("0x5", tostring(t:view(0, 5):size()))
    assert.equal("0", tostring(t:view(-1):size()))
    assert.equal("0x3", tostring(t:t():size()))
    assert.equal("3x0x1", tostring(t:unsqueeze(3):size()))
    assert.equal("0", tostring(L.zeros(1, 0):squeeze():size()))
    assert.equal("4x3x0", tostring(t:expand(4, 3, 0):size()))
    assert.equal("3x0", tostring(L.arange(12):view(3, 4):narrow(2, 5, 0):size()))
    assert.equal("0x4", tostring(L.arange(12):view(3, 4):narrow(1, 2, 0):size()))
    assert.truthy(H.error_of(t.view, t, -1, 0):find("cannot view a tensor of 0 elements"))
  end)

  it("print as tensor([]) with their shape, and convert to nested tables", function()
    assert.equal("tensor([])\n[Tensor of size 3x0]", tostring(L.zeros(3, 0)))
    assert.equal("tensor([])\n[Tensor of size 0x2x3]", tostring(L.zeros(0, 2, 3)))
    assert.same({{}, {}, {}}, L.zeros(3, 0):totable())
    assert.same({}, L.zeros(0, 3):totable())
  end)
end)
