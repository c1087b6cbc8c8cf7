-- Indexing by tensors of indices (gather, scatter_add, index_select, index_add), masks (masked_fill,
-- where), joining (cat, stack) and the version counter that in-place methods bump: hand-computed values,
-- non-contiguous and empty operands, a plain Lua reference on random shapes, and every bad input.
local L = require "lightning"
local H = require "helpers"

-- ---- a plain Lua reference over nested tables ----

-- Every coordinate (1-based) of a shape, in row-major order.
local function coords(shape)
  local out, n = {}, 1
  for _, s in ipairs(shape) do n = n * s end
  for k = 0, n - 1 do
    local c, r = {}, k
    for d = #shape, 1, -1 do
      c[d] = r % shape[d] + 1
      r = r // shape[d]
    end
    out[#out + 1] = c
  end
  return out
end

local function get(t, c)
  for _, i in ipairs(c) do t = t[i] end
  return t
end

local function put(t, c, v)
  for d = 1, #c - 1 do t = t[c[d]] end
  t[c[#c]] = v
end

local function with(c, d, v)
  local cc = table.move(c, 1, #c, 1, {})
  cc[d] = v
  return cc
end

local function shape_of(t) return {table.unpack(t:size())} end

local function ref_gather(x, dim, index)
  local xs, ix, out = x:totable(), index:totable(), L.zeros(index:size()):totable()
  for _, c in ipairs(coords(shape_of(index))) do put(out, c, get(xs, with(c, dim, get(ix, c)))) end
  return out
end

local function ref_scatter_add(x, dim, index, src)
  local out, ix, sv = x:totable(), index:totable(), src:totable()
  for _, c in ipairs(coords(shape_of(index))) do
    local at = with(c, dim, get(ix, c))
    put(out, at, get(out, at) + get(sv, c))
  end
  return out
end

-- A tensor of the shape with random integer indices in 1..n (math.random: seeded by each spec).
local function random_index(shape, n)
  local t = L.zeros(shape)
  local flat = t:view(-1)
  for i = 1, flat:numel() do flat[i] = math.random(n) end
  return t
end

-- A non-contiguous tensor holding the values of a contiguous one of `shape`: a transposed copy.
local function transposed(shape)
  local rev = {}
  for d = #shape, 1, -1 do rev[#rev + 1] = shape[d] end
  local base = L.randn(rev)
  local order = {}
  for d = #shape, 1, -1 do order[#order + 1] = d end
  local t = base:permute(order)
  assert(not t:is_contiguous() or t:numel() <= 1)
  return t
end

-- ---- cat and stack ----

describe("lightning.cat", function()
  local a, b = L.tensor{{1, 2, 3}, {4, 5, 6}}, L.tensor{{7, 8, 9}}

  it("joins along the first dimension by default", function()
    local c = L.cat({a, b})
    assert.same({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, c:totable())
    assert.is_true(c:is_contiguous())
    assert.same({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, L.cat({a, b}, 1):totable())
    assert.same({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, L.cat({a, b}, -2):totable())
  end)

  it("joins along another dimension, and counts negative dimensions from the end", function()
    local c = L.tensor{{10}, {20}}
    assert.same({{1, 2, 3, 10}, {4, 5, 6, 20}}, L.cat({a, c}, 2):totable())
    assert.same({{10, 1, 2, 3, 10}, {20, 4, 5, 6, 20}}, L.cat({c, a, c}, -1):totable())
    assert.same({{1, 2, 3}}, L.cat({L.tensor{{1, 2, 3}}}, 1):totable())  -- one part: a copy
  end)

  it("reads non-contiguous parts (transposed views, expanded views)", function()
    local t = L.tensor{{1, 4}, {2, 5}, {3, 6}}:t()      -- {{1, 2, 3}, {4, 5, 6}}, transposed
    assert.is_false(t:is_contiguous())
    assert.same({{1, 2, 3}, {4, 5, 6}, {1, 2, 3}, {4, 5, 6}}, L.cat({t, a}):totable())
    assert.same({{1, 2, 3, 1, 2, 3}, {4, 5, 6, 4, 5, 6}}, L.cat({a, t}, 2):totable())
    local e = L.tensor{{7, 8, 9}}:expand(2, 3)
    assert.same({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {7, 8, 9}}, L.cat({a, e}):totable())
  end)

  it("joins 3-D tensors along the middle dimension as a Lua reference does", function()
    local x, y = transposed{2, 3, 4}, L.randn(2, 1, 4)
    local c = L.cat({x, y}, 2)
    assert.same({2, 4, 4}, shape_of(c))
    for _, co in ipairs(coords{2, 4, 4}) do
      local want = co[2] <= 3 and x:get(table.unpack(co)) or y:get(co[1], 1, co[3])
      assert.equal(want, c:get(table.unpack(co)))
    end
  end)

  it("takes parts of size 0 along the dimension, and skips 1-D empty parts", function()
    assert.same({{1, 2, 3}, {4, 5, 6}}, L.cat({L.zeros(0, 3), a, L.zeros(0, 3)}):totable())
    assert.same({{1, 2, 3}, {4, 5, 6}}, L.cat({L.zeros(0), a, L.zeros(0)}):totable())
    assert.same({0, 3}, shape_of(L.cat({L.zeros(0, 3), L.zeros(0, 3)})))
    assert.same({2, 0}, shape_of(L.cat({L.zeros(2, 0), L.zeros(2, 0)}, 2)))
    assert.same({0}, shape_of(L.cat({L.zeros(0), L.zeros(0)})))
    assert.same({3, 0}, shape_of(L.cat({L.zeros(1, 0), L.zeros(2, 0)})))
  end)

  it("makes a new tensor: writing it leaves the parts alone", function()
    local x = L.tensor{1, 2}
    local c = L.cat({x, x})
    c:fill(0)
    assert.same({1, 2}, x:totable())
  end)

  it("refuses bad input with errors that name it", function()
    H.fails("lightning%.cat: argument 1 must be a list of tensors, got tensor", L.cat, a)
    H.fails("lightning%.cat: argument 1 must be a list of tensors, got nil", L.cat)
    H.fails("lightning%.cat: expected a non%-empty list of tensors", L.cat, {})
    H.fails("lightning%.cat: element 2 of the list must be a tensor, got number", L.cat, {a, 5})
    H.fails("lightning%.cat: element 2 of the list must be a tensor, got nil", L.cat, {a, nil, b})
    H.fails("lightning%.cat: element 1 of the list is a bfloat16 tensor: call :float%(%) first", L.cat, {a:bfloat16(), a})
    local closed = L.zeros(2)
    closed:free()
    H.fails("lightning%.cat: element 1 of the list is a closed tensor", L.cat, {closed})
    H.fails("lightning%.cat: tensor 2 has shape 2x2 and tensor 1 2x3: sizes must match except in dimension 1", L.cat, {a, L.zeros(2, 2)})
    H.fails("lightning%.cat: tensor 2 has shape 3, expected 2 dimensions as tensor 1 %(2x3%)", L.cat, {a, L.zeros(3)})
    H.fails("lightning%.cat: dimension 3 out of range for joining 2%-D tensors %(1%.%.2%)", L.cat, {a, b}, 3)
    H.fails("lightning%.cat: dimension 0 out of range", L.cat, {a, b}, 0)
    H.fails("lightning%.cat: dimension %-3 out of range", L.cat, {a, b}, -3)
    H.fails("lightning%.cat: dimension must be an integer, got 1%.5", L.cat, {a, b}, 1.5)
    H.fails("lightning%.cat: dimension must be an integer, got string", L.cat, {a, b}, "x")
  end)
end)

describe("lightning.stack", function()
  it("stacks along a new first dimension by default", function()
    local s = L.stack({L.tensor{1, 2}, L.tensor{3, 4}, L.tensor{5, 6}})
    assert.same({{1, 2}, {3, 4}, {5, 6}}, s:totable())
    assert.is_true(s:is_contiguous())
  end)

  it("stacks along the last dimension (2, or -1) and the middle one", function()
    local x, y = L.tensor{1, 2}, L.tensor{3, 4}
    assert.same({{1, 3}, {2, 4}}, L.stack({x, y}, 2):totable())
    assert.same({{1, 3}, {2, 4}}, L.stack({x, y}, -1):totable())
    assert.same({{1, 2}, {3, 4}}, L.stack({x, y}, -2):totable())
    local m, n = L.tensor{{1, 2}, {3, 4}}, L.tensor{{5, 6}, {7, 8}}
    assert.same({{{1, 2}, {5, 6}}, {{3, 4}, {7, 8}}}, L.stack({m, n}, 2):totable())
    assert.same({{{1, 5}, {2, 6}}, {{3, 7}, {4, 8}}}, L.stack({m, n}, 3):totable())
  end)

  it("reads non-contiguous parts", function()
    local t = L.tensor{{1, 3}, {2, 4}}:t()   -- {{1, 2}, {3, 4}}
    assert.same({{{1, 2}, {3, 4}}, {{1, 2}, {3, 4}}}, L.stack({t, t:contiguous()}):totable())
  end)

  it("stacks empty tensors", function()
    assert.same({2, 0}, shape_of(L.stack({L.zeros(0), L.zeros(0)})))
    assert.same({0, 3}, shape_of(L.stack({L.zeros(0), L.zeros(0), L.zeros(0)}, 2)))
  end)

  it("refuses bad input with errors that name it", function()
    local x = L.zeros(2)
    H.fails("lightning%.stack: expected a non%-empty list of tensors", L.stack, {})
    H.fails("lightning%.stack: argument 1 must be a list of tensors, got number", L.stack, 3)
    H.fails("lightning%.stack: element 2 of the list must be a tensor, got string", L.stack, {x, "x"})
    H.fails("lightning%.stack: tensor 2 has shape 3, expected 2 %(the shape of tensor 1%)", L.stack, {x, L.zeros(3)})
    H.fails("lightning%.stack: tensor 2 has shape 1x2, expected 2", L.stack, {x, L.zeros(1, 2)})
    H.fails("lightning%.stack: dimension 3 out of range for stacking 1%-D tensors %(1%.%.2%)", L.stack, {x, x}, 3)
    H.fails("lightning%.stack: dimension %-3 out of range", L.stack, {x, x}, -3)
    H.fails("lightning%.stack: dimension must be an integer, got 1%.5", L.stack, {x, x}, 1.5)
    local eight = L.zeros(1, 1, 1, 1, 1, 1, 1, 1)
    H.fails("lightning%.stack: cannot stack 8%-D tensors: at most 8 dimensions", L.stack, {eight})
  end)
end)

-- ---- gather and scatter_add ----

describe("Tensor:gather", function()
  local t = L.tensor{{1, 2}, {3, 4}}

  it("picks along a dimension as torch.gather", function()
    -- out[i][j] = t[i][index[i][j]]
    assert.same({{1, 1}, {4, 3}}, t:gather(2, L.tensor{{1, 1}, {2, 1}}):totable())
    assert.same({{1, 1}, {4, 3}}, t:gather(-1, L.tensor{{1, 1}, {2, 1}}):totable())
    -- out[i][j] = t[index[i][j]][j]
    assert.same({{1, 4}, {3, 2}}, t:gather(1, L.tensor{{1, 2}, {2, 1}}):totable())
  end)

  it("takes an index smaller than the input in the other dimensions, or longer along dim", function()
    local m = L.tensor{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}
    assert.same({{3}, {4}}, m:gather(2, L.tensor{{3}, {1}}):totable())
    assert.same({{3, 3, 1, 2}}, m:gather(2, L.tensor{{3, 3, 1, 2}}):totable())
  end)

  it("reads transposed inputs and indices", function()
    local tt = t:t()                                    -- {{1, 3}, {2, 4}}
    assert.same({{3, 1}, {2, 2}}, tt:gather(2, L.tensor{{2, 1}, {1, 1}}):totable())
    local ix = L.tensor{{2, 2}, {1, 1}}:t()             -- {{2, 1}, {2, 1}}
    assert.same({{3, 1}, {4, 2}}, tt:gather(2, ix):totable())
  end)

  it("matches a Lua reference on 3-D tensors, contiguous or not, along each dimension", function()
    math.randomseed(7)
    for dim = 1, 3 do
      for _, x in ipairs{L.randn(3, 4, 5), transposed{3, 4, 5}} do
        local shape = {2, 3, 4}
        shape[dim] = 6
        local index = random_index(shape, x:size(dim))
        assert.same(ref_gather(x, dim, index), x:gather(dim, index):totable())
        assert.same(ref_gather(x, dim, index), x:gather(dim - 4, index:transpose(1, 3):contiguous():transpose(1, 3)):totable())
      end
    end
  end)

  it("gives an empty tensor for an empty index, even from an empty dimension", function()
    assert.same({2, 0}, shape_of(t:gather(2, L.zeros(2, 0))))
    assert.same({2, 0}, shape_of(L.zeros(2, 0):gather(2, L.zeros(2, 0))))
  end)

  it("refuses bad input with errors that name it", function()
    H.fails("Tensor:gather: index 3 out of range for dimension 2 of size 2", t.gather, t, 2, L.tensor{{1, 3}, {1, 1}})
    H.fails("Tensor:gather: index 0 out of range for dimension 1 of size 2", t.gather, t, 1, L.tensor{{0}})
    H.fails("Tensor:gather: index %-1 out of range", t.gather, t, 1, L.tensor{{-1}})
    H.fails("Tensor:gather: index inf out of range", t.gather, t, 1, L.tensor{{math.huge}})
    H.fails("Tensor:gather: index 1%.5 is not an integer", t.gather, t, 1, L.tensor{{1.5}})
    H.fails("Tensor:gather: index %-?nan is not an integer", t.gather, t, 1, L.tensor{{0 / 0}})
    H.fails("Tensor:gather: index has 1 dimensions %(2%), expected 2 as the input %(2x2%)", t.gather, t, 1, L.tensor{1, 2})
    H.fails("Tensor:gather: index of shape 3x1 is larger than the input %(2x2%) in dimension 1", t.gather, t, 2, L.ones(3, 1))
    H.fails("Tensor:gather: index 1 out of range for dimension 2 of size 0", L.zeros(2, 0).gather, L.zeros(2, 0), 2, L.ones(2, 1))
    H.fails("Tensor:gather: dimension 3 out of range for a 2%-D tensor", t.gather, t, 3, L.ones(2, 2))
    H.fails("Tensor:gather: dimension must be an integer, got nil", t.gather, t, nil, L.ones(2, 2))
    H.fails("Tensor:gather: argument 2 must be a tensor, got table", t.gather, t, 1, {{1}})
    H.fails("Tensor:gather: self must be a tensor", t.gather, 1, 1, L.ones(1, 1))
    H.fails("Tensor:gather: argument 2 is a bfloat16 tensor", t.gather, t, 1, L.ones(1, 1):bfloat16())
  end)
end)

describe("Tensor:scatter_add", function()
  it("adds along a dimension in place, as torch's scatter_add_, and returns self", function()
    local x = L.zeros(2, 3)
    -- x[i][index[i][j]] += src[i][j]
    local r = x:scatter_add(2, L.tensor{{1, 1}, {3, 1}}, L.tensor{{1, 2}, {3, 4}})
    assert.equal(x, r)
    assert.same({{3, 0, 0}, {4, 0, 3}}, x:totable())
    -- x[index[i][j]][j] += src[i][j]
    local y = L.ones(2, 2):scatter_add(1, L.tensor{{2, 2}, {2, 1}}, L.tensor{{1, 2}, {3, 4}})
    assert.same({{1, 5}, {5, 3}}, y:totable())
    assert.same({{1, 5}, {5, 3}}, L.ones(2, 2):scatter_add(-2, L.tensor{{2, 2}, {2, 1}}, L.tensor{{1, 2}, {3, 4}}):totable())
  end)

  it("uses the corner of src that the index covers", function()
    local x = L.zeros(3):scatter_add(1, L.tensor{3, 3}, L.tensor{1, 2, 100})
    assert.same({0, 0, 3}, x:totable())
  end)

  it("writes through a transposed view into its base", function()
    local base = L.zeros(3, 2)
    local v = base:t()                                  -- 2x3
    v:scatter_add(2, L.tensor{{3}, {1}}, L.tensor{{5}, {7}})
    assert.same({{0, 7}, {0, 0}, {5, 0}}, base:totable())
  end)

  it("reads its index and src before writing when they share self's memory", function()
    local x = L.tensor{1, 1, 1}
    x:scatter_add(1, x, L.ones(3))                     -- index 1, 1, 1 read first
    assert.same({4, 1, 1}, x:totable())
    local y = L.tensor{1, 2, 3}
    y:scatter_add(1, L.tensor{3, 3, 3}, y)             -- src 1, 2, 3 read first
    assert.same({1, 2, 9}, y:totable())
  end)

  it("matches a Lua reference on 3-D tensors, contiguous or not, along each dimension", function()
    math.randomseed(11)
    for dim = 1, 3 do
      for _, make in ipairs{function(s) return L.randn(s) end, transposed} do
        local x, src = make{3, 4, 5}, make{6, 5, 6}
        local shape = {2, 3, 4}
        shape[dim] = 5
        local index = random_index(shape, x:size(dim))
        local want = ref_scatter_add(x, dim, index, src)
        H.assert_close(x:scatter_add(dim, index, src), want, 1e-6)
      end
    end
  end)

  it("adds in the index's order: the same bits at any thread count", function()
    local index = random_index({4000, 3}, 5)
    local src = L.randn(4000, 3)
    local threads = L.get_num_threads()
    L.set_num_threads(1)
    local one = L.zeros(5, 3):scatter_add(1, index, src):totable()
    L.set_num_threads(math.max(2, threads))
    local many = L.zeros(5, 3):scatter_add(1, index, src):totable()
    L.set_num_threads(threads)
    assert.same(one, many)
  end)

  it("does nothing for an empty index", function()
    assert.same({1, 1}, L.ones(2):scatter_add(1, L.zeros(0), L.zeros(0)):totable())
  end)

  it("refuses bad input with errors that name it and changes nothing", function()
    local x = L.zeros(2, 3)
    local v = x:_version()
    H.fails("Tensor:scatter_add: index 4 out of range for dimension 2 of size 3", x.scatter_add, x, 2, L.tensor{{1, 4}}, L.ones(1, 2))
    H.fails("Tensor:scatter_add: index 2%.5 is not an integer", x.scatter_add, x, 2, L.tensor{{1, 2.5}}, L.ones(1, 2))
    H.fails("Tensor:scatter_add: index of shape 1x3 is larger than src %(1x2%) in dimension 2", x.scatter_add, x, 2,
            L.ones(1, 3), L.ones(1, 2))
    H.fails("Tensor:scatter_add: index of shape 3x1 is larger than self %(2x3%) in dimension 1", x.scatter_add, x, 2,
            L.ones(3, 1), L.ones(3, 1))
    H.fails("Tensor:scatter_add: self %(2x3%), index %(3%) and src must have the same number of dimensions", x.scatter_add,
            x, 1, L.ones(3), L.ones(3))
    H.fails("Tensor:scatter_add: dimension 0 out of range", x.scatter_add, x, 0, L.ones(1, 1), L.ones(1, 1))
    H.fails("Tensor:scatter_add: argument 3 must be a tensor, got number", x.scatter_add, x, 1, L.ones(1, 1), 1)
    H.fails("Tensor:scatter_add: argument 2 must be a tensor, got nil", x.scatter_add, x, 1, nil)
    local e = L.zeros(1, 3):expand(2, 3)
    H.fails("Tensor:scatter_add: cannot write into an expanded tensor", e.scatter_add, e, 1, L.ones(1, 1), L.ones(1, 1))
    assert.same({{0, 0, 0}, {0, 0, 0}}, x:totable())
    assert.equal(v, x:_version())
  end)
end)

-- ---- index_select and index_add ----

describe("Tensor:index_select", function()
  local m = L.tensor{{1, 2, 3}, {4, 5, 6}}

  it("picks whole slices along a dimension, repeated or reordered", function()
    assert.same({{4, 5, 6}, {1, 2, 3}, {4, 5, 6}}, m:index_select(1, L.tensor{2, 1, 2}):totable())
    assert.same({{3, 1}, {6, 4}}, m:index_select(2, L.tensor{3, 1}):totable())
    assert.same({{3, 1}, {6, 4}}, m:index_select(-1, L.tensor{3, 1}):totable())
    assert.same({5, 5, 4}, L.tensor{4, 5}:index_select(1, L.tensor{2, 2, 1}):totable())
  end)

  it("reads transposed inputs and strided indices", function()
    local t = m:t()                                     -- {{1, 4}, {2, 5}, {3, 6}}
    assert.same({{3, 6}, {1, 4}}, t:index_select(1, L.tensor{3, 1}):totable())
    local ix = L.tensor{{2, 9}, {1, 9}}:select(2, 1)  -- {2, 1}, stride 2
    assert.same({{4, 5, 6}, {1, 2, 3}}, m:index_select(1, ix):totable())
  end)

  it("matches gather with the index spread over the other dimensions", function()
    math.randomseed(3)
    for dim = 1, 3 do
      local x = transposed{3, 4, 5}
      local index = random_index({7}, x:size(dim))
      local shape = shape_of(x)
      shape[dim] = 7
      local view = {1, 1, 1}
      view[dim] = 7
      local spread = index:view(view):expand(shape):contiguous()
      assert.same(x:gather(dim, spread):totable(), x:index_select(dim, index):totable())
    end
  end)

  it("gives an empty dimension for an empty index", function()
    assert.same({2, 0}, shape_of(m:index_select(2, L.zeros(0))))
    assert.same({0, 3}, shape_of(L.zeros(0, 3):index_select(1, L.zeros(0))))
  end)

  it("refuses bad input with errors that name it", function()
    H.fails("Tensor:index_select: index 3 out of range for dimension 1 of size 2", m.index_select, m, 1, L.tensor{1, 3})
    H.fails("Tensor:index_select: index 0 out of range for dimension 2 of size 3", m.index_select, m, 2, L.tensor{0})
    H.fails("Tensor:index_select: index 0%.5 is not an integer", m.index_select, m, 2, L.tensor{0.5})
    H.fails("Tensor:index_select: index must be 1%-D, got shape 1x2", m.index_select, m, 2, L.tensor{{1, 2}})
    H.fails("Tensor:index_select: dimension 3 out of range for a 2%-D tensor", m.index_select, m, 3, L.tensor{1})
    H.fails("Tensor:index_select: argument 2 must be a tensor, got table", m.index_select, m, 1, {1})
  end)
end)

describe("Tensor:index_add", function()
  it("adds whole slices along a dimension in place, as torch's index_add_, and returns self", function()
    local x = L.zeros(3, 2)
    local r = x:index_add(1, L.tensor{1, 3, 1}, L.tensor{{1, 2}, {3, 4}, {5, 6}})
    assert.equal(x, r)
    assert.same({{6, 8}, {0, 0}, {3, 4}}, x:totable())
    local y = L.ones(2, 3):index_add(2, L.tensor{3, 3}, L.tensor{{1, 2}, {3, 4}})
    assert.same({{1, 1, 4}, {1, 1, 8}}, y:totable())
    assert.same({{1, 1, 4}, {1, 1, 8}}, L.ones(2, 3):index_add(-1, L.tensor{3, 3}, L.tensor{{1, 2}, {3, 4}}):totable())
  end)

  it("is index_select's backward: the sum of the gradients of each picked slice", function()
    math.randomseed(5)
    for dim = 1, 3 do
      local x = L.zeros(3, 4, 5)
      local index = random_index({6}, x:size(dim))
      local shape = shape_of(x)
      shape[dim] = 6
      local src = transposed(shape)
      local view, full = {1, 1, 1}, shape_of(x)
      view[dim] = 6
      full[dim] = 6
      local spread = index:view(view):expand(full):contiguous()
      H.assert_close(x:index_add(dim, index, src), ref_scatter_add(L.zeros(3, 4, 5), dim, spread, src), 1e-6)
    end
  end)

  it("writes through a transposed view, and reads src and index first when they share self's memory", function()
    local base = L.zeros(2, 3)
    base:t():index_add(1, L.tensor{2}, L.tensor{{1, 2}})   -- row 2 of the 3x2 view: column 2 of base
    assert.same({{0, 1, 0}, {0, 2, 0}}, base:totable())
    local x = L.tensor{1, 2, 3}
    x:index_add(1, L.tensor{1, 1, 1}, x)
    assert.same({7, 2, 3}, x:totable())
  end)

  it("refuses bad input with errors that name it and changes nothing", function()
    local x = L.zeros(3, 2)
    local v = x:_version()
    H.fails("Tensor:index_add: src has shape 2x2, expected 3x2", x.index_add, x, 1, L.tensor{1, 2, 3}, L.ones(2, 2))
    H.fails("Tensor:index_add: src has shape 6, expected 3x2", x.index_add, x, 1, L.tensor{1, 2, 3}, L.ones(6))
    H.fails("Tensor:index_add: index 4 out of range for dimension 1 of size 3", x.index_add, x, 1, L.tensor{4}, L.ones(1, 2))
    H.fails("Tensor:index_add: index 1%.25 is not an integer", x.index_add, x, 1, L.tensor{1.25}, L.ones(1, 2))
    H.fails("Tensor:index_add: index must be 1%-D, got shape 1x1", x.index_add, x, 1, L.tensor{{1}}, L.ones(1, 2))
    H.fails("Tensor:index_add: dimension 3 out of range", x.index_add, x, 3, L.tensor{1}, L.ones(1, 2))
    H.fails("Tensor:index_add: argument 3 must be a tensor, got nil", x.index_add, x, 1, L.tensor{1}, nil)
    local e = L.zeros(1, 2):expand(3, 2)
    H.fails("Tensor:index_add: cannot write into an expanded tensor", e.index_add, e, 1, L.tensor{1}, L.ones(1, 2))
    assert.same({{0, 0}, {0, 0}, {0, 0}}, x:totable())
    assert.equal(v, x:_version())
  end)
end)

-- ---- masks ----

describe("Tensor:masked_fill", function()
  local m = L.tensor{{1, 2, 3}, {4, 5, 6}}

  it("makes a new tensor with the value where the mask is not 0", function()
    local r = m:masked_fill(L.tensor{{1, 0, 0}, {0, 2, -1}}, 9)
    assert.same({{9, 2, 3}, {4, 9, 9}}, r:totable())
    assert.same({{1, 2, 3}, {4, 5, 6}}, m:totable())
    assert.is_true(r:is_contiguous())
  end)

  it("broadcasts the mask to the tensor", function()
    assert.same({{0, 2, 0}, {0, 5, 0}}, m:masked_fill(L.tensor{1, 0, 1}, 0):totable())
    assert.same({{1, 2, 3}, {-1, -1, -1}}, m:masked_fill(L.tensor{{0}, {1}}, -1):totable())
    assert.same({{7, 7, 7}, {7, 7, 7}}, m:masked_fill(L.tensor{1}, 7):totable())
  end)

  it("reads transposed tensors and masks, and empty ones", function()
    local t = m:t()                                       -- {{1, 4}, {2, 5}, {3, 6}}
    assert.same({{0, 4}, {2, 0}, {3, 6}}, t:masked_fill(L.tensor{{1, 0, 0}, {0, 1, 0}}:t(), 0):totable())
    assert.same({0, 3}, shape_of(L.zeros(0, 3):masked_fill(L.tensor{1, 0, 1}, 1)))
    local h = m:masked_fill(m:gt(3), math.huge)
    assert.same({{1, 2, 3}, {math.huge, math.huge, math.huge}}, h:totable())
  end)

  it("refuses bad input with errors that name it", function()
    H.fails("Tensor:masked_fill: mask of shape 2x3 cannot be broadcast to the tensor's shape 3", L.zeros(3).masked_fill,
            L.zeros(3), L.ones(2, 3), 0)
    H.fails("Tensor:masked_fill: mask of shape 2 cannot be broadcast to the tensor's shape 2x3", m.masked_fill, m, L.ones(2), 0)
    H.fails("Tensor:masked_fill: argument 1 must be a tensor, got boolean", m.masked_fill, m, true, 0)
    H.fails("Tensor:masked_fill: argument 2 must be a number, got nil", m.masked_fill, m, L.ones(3), nil)
  end)
end)

describe("lightning.where", function()
  it("picks a where cond is not 0 and b elsewhere", function()
    local c = L.tensor{{1, 0}, {0, -2}}
    local a, b = L.tensor{{1, 2}, {3, 4}}, L.tensor{{10, 20}, {30, 40}}
    assert.same({{1, 20}, {30, 4}}, L.where(c, a, b):totable())
    assert.same({{1, 0}, {0, -2}}, c:totable())
  end)

  it("takes numbers for a or b", function()
    local c, a = L.tensor{1, 0, 1}, L.tensor{5, 6, 7}
    assert.same({5, -1, 7}, L.where(c, a, -1):totable())
    assert.same({0, 6, 0}, L.where(c, 0, a):totable())
    assert.same({2, 3, 2}, L.where(c, 2, 3):totable())
  end)

  it("broadcasts cond, a and b together", function()
    local c = L.tensor{{1}, {0}}                          -- 2x1
    local a = L.tensor{1, 2, 3}                           -- 3
    assert.same({{1, 2, 3}, {0, 0, 0}}, L.where(c, a, 0):totable())
    assert.same({{1, 2, 3}, {7, 8, 9}}, L.where(c, a, L.tensor{{7, 8, 9}}):totable())
    assert.same({{9, 9, 9}, {1, 2, 3}}, L.where(c, 9, a):totable())
    assert.same({2, 2, 3}, shape_of(L.where(L.ones(2, 1, 1), L.zeros(2, 3), 1)))
  end)

  it("reads transposed operands and empty ones", function()
    local a = L.tensor{{1, 3}, {2, 4}}:t()                -- {{1, 2}, {3, 4}}
    local c = L.tensor{{1, 1}, {0, 0}}:t()                -- {{1, 0}, {1, 0}}
    assert.same({{1, 0}, {3, 0}}, L.where(c, a, 0):totable())
    assert.same({0, 2}, shape_of(L.where(L.zeros(0, 1), L.ones(1, 2), 1)))
  end)

  it("refuses bad input with errors that name it", function()
    local c = L.ones(2)
    H.fails("lightning%.where: shapes 2 and 3 do not match", L.where, c, L.ones(3), 0)
    H.fails("lightning%.where: shapes 2 and 3 do not match", L.where, c, 0, L.ones(3))
    H.fails("lightning%.where: argument 1 must be a tensor, got number", L.where, 1, c, c)
    H.fails("lightning%.where: argument 2 must be a tensor or a number, got string", L.where, c, "a", c)
    H.fails("lightning%.where: argument 3 must be a tensor or a number, got nil", L.where, c, c, nil)
    H.fails("lightning%.where: argument 2 is a bfloat16 tensor", L.where, c, c:bfloat16(), c)
  end)
end)

-- ---- the version counter ----

describe("Tensor:_version", function()
  it("starts at 0 and grows by one with each in-place method", function()
    local function fresh() return L.tensor{{0.5, 0.25}, {0.75, 1}} end
    local cases = {
      copy = function(t) t:copy(L.ones(2, 2)) end,
      copy_bf16 = function(t) t:copy(L.ones(2, 2):bfloat16()) end,
      fill = function(t) t:fill(2) end,
      zero = function(t) t:zero() end,
      uniform = function(t) t:uniform() end,
      normal = function(t) t:normal() end,
      set = function(t) t:set(1, 2, 5) end,
      resize = function(t) t:resize(4) end,
      resize_as = function(t) t:resize_as(L.zeros(4)) end,
      newindex_number = function(t) t:view(4)[2] = 5 end,
      newindex_slice = function(t) t[1] = 5 end,
      newindex_tensor = function(t) t[2] = L.tensor{1, 2} end,
      add = function(t) t:add(1) end,
      add_tensor = function(t) t:add(L.ones(2), 2) end,
      sub = function(t) t:sub(1) end,
      mul = function(t) t:mul(2) end,
      div = function(t) t:div(2) end,
      cmul = function(t) t:cmul(t) end,
      cdiv = function(t) t:cdiv(L.ones(2, 2)) end,
      addcmul = function(t) t:addcmul(t, t) end,
      pow = function(t) t:pow(2) end,
      sqrt = function(t) t:sqrt() end,
      exp = function(t) t:exp() end,
      log = function(t) t:log() end,
      abs = function(t) t:abs() end,
      neg = function(t) t:neg() end,
      sign = function(t) t:sign() end,
      tanh = function(t) t:tanh() end,
      sigmoid = function(t) t:sigmoid() end,
      clamp = function(t) t:clamp(0, 0.5) end,
      addmm = function(t) t:addmm(L.ones(2, 3), L.ones(3, 2)) end,
      scatter_add = function(t) t:scatter_add(1, L.tensor{{2, 1}}, L.ones(1, 2)) end,
      index_add = function(t) t:index_add(2, L.tensor{2}, L.ones(2, 1)) end,
    }
    for name, f in pairs(cases) do
      local t = fresh()
      assert.equal(0, t:_version(), name)
      f(t)
      assert.equal(1, t:_version(), name)
      f(t)
      assert.equal(2, t:_version(), name)
    end
  end)

  it("is shared by views, since it belongs to the storage", function()
    local x = L.zeros(2, 3)
    local views = {x:view(6), x:t(), x:narrow(2, 2, 2), x:select(1, 2), x[1], x:reshape(3, 2), x:unsqueeze(1)}
    for i, v in ipairs(views) do
      v:add(1)
      assert.equal(i, x:_version())
      for _, w in ipairs(views) do assert.equal(i, w:_version()) end
    end
    x:zero()
    assert.equal(#views + 1, views[3]:_version())
  end)

  it("is not bumped by methods that make new tensors or only read", function()
    local x, m = L.tensor{{1, 2}, {3, 4}}, L.tensor{{1, 0}, {0, 1}}
    local reads = {
      function() return x:clone() end, function() return x + 1 end, function() return -x end,
      function() return x:eq(1) end, function() return x:sum() end, function() return x:max(1) end,
      function() return x:view(4) end, function() return x:t():contiguous() end, function() return x:totable() end,
      function() return L.mm(x, x) end, function() return L.addmm(x, x, x) end,
      function() return x:gather(1, L.ones(1, 2)) end, function() return x:index_select(2, L.tensor{2}) end,
      function() return x:masked_fill(m, 0) end, function() return L.where(m, x, x) end,
      function() return L.cat({x, x}) end, function() return L.stack({x, x}) end,
      function() return x:get(1, 1), x:item() end,
    }
    for i, f in ipairs(reads) do
      pcall(f)
      assert.equal(0, x:_version(), "read " .. i)
      assert.equal(0, m:_version(), "read " .. i)
    end
    local parts = {L.ones(2), L.ones(2)}
    local c = L.cat(parts)
    assert.same({0, 0, 0}, {parts[1]:_version(), parts[2]:_version(), c:_version()})
  end)

  it("counts the target of a copy, not its source", function()
    local a, b = L.zeros(2), L.ones(2)
    a:copy(b)
    assert.same({1, 0}, {a:_version(), b:_version()})
    local x = L.zeros(2, 2)
    x:scatter_add(1, L.ones(1, 2), b:view(1, 2))
    assert.same({1, 0}, {x:_version(), b:_version()})
  end)

  it("is not bumped by an in-place method that fails", function()
    local x = L.zeros(2, 2)
    assert.is_false(pcall(x.add, x, L.zeros(3)))
    assert.is_false(pcall(x.copy, x, L.zeros(5)))
    assert.is_false(pcall(x.fill, x, "a"))
    assert.is_false(pcall(x.set, x, 3, 1, 0))
    assert.is_false(pcall(x.index_add, x, 1, L.tensor{9}, L.ones(1, 2)))
    assert.equal(0, x:_version())
  end)

  it("keeps counting when resize moves the tensor to a new storage", function()
    local x = L.zeros(2)
    x:add(1):add(1)
    x:resize(1000)                                       -- too large for the old storage
    assert.equal(3, x:_version())
  end)

  it("reads bfloat16 tensors and names itself when misused", function()
    assert.equal(0, L.ones(2):bfloat16():_version())
    H.fails("Tensor:_version: self must be a tensor", L.ones(1)._version, 5)
  end)
end)

-- ---- Lua allocation failures inside the bindings ----

describe("the indexing bindings when Lua's allocations fail", function()
  it("raise at every failure point and leak nothing", function()
    local T = require("lightning.core").testing
    local m, ix = L.tensor{{1, 2, 3}, {4, 5, 6}}, L.tensor{{2, 1, 3}}
    local calls = {
      function() return L.cat({m, m:t():t(), m}, 2) end,
      function() return L.stack({m, m}, -1) end,
      function() return m:gather(2, ix) end,
      function() return m:clone():scatter_add(2, ix, m) end,
      function() return m:index_select(2, L.tensor{3, 3}) end,
      function() return m:clone():index_add(1, L.tensor{2}, ix) end,
      function() return m:masked_fill(L.tensor{1, 0, 1}, 0) end,
      function() return L.where(m:gt(2), m, 0) end,
      function() return m:_version() end,
    }
    local function every_failure_point(f)
      local err
      for n = 0, 1000 do
        local ok
        ok, err = T.with_failing_allocations(n, f)
        if ok then return end
      end
      error("never completed: " .. tostring(err))
    end
    local function round()
      for _, f in ipairs(calls) do every_failure_point(f) end
    end
    round()  -- warm up: interned strings, grown tables
    collectgarbage()
    collectgarbage()
    local before = T.heap_bytes()
    for _ = 1, 5 do round() end
    collectgarbage()
    collectgarbage()
    if before then  -- glibc's count (nil elsewhere, 0 under AddressSanitizer)
      local grown = T.heap_bytes() - before
      assert.is_true(grown < 256 * 1024, ("the C heap grew by %d bytes over 5 rounds"):format(grown))
    end
  end)
end)
