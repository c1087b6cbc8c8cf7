-- L.eigh: the symmetric eigendecomposition (csrc/core/tensor/linalg.c, cyclic Jacobi in double precision)
-- against torch.linalg.eigh (fixtures by tools/make_airnet_fixtures.py), with its sign convention and
-- its errors.
local L = require "lightning"
local H = require "helpers"

local function T(f) return L.tensor(f.data):view(f.shape) end
local parts = dofile("spec/fixtures/nn/airnet_parts.lua")

-- Each column of `got` against the same column of `want`, up to its sign (an eigenvector's sign is
-- arbitrary: LAPACK's, hence torch's, is not ours).
local function assert_columns_close(got, want, tol, what)
  local n = want:size(2)
  for j = 1, n do
    local g, w = got:select(2, j):clone(), want:select(2, j):clone()
    local sign = (g * w):sum() < 0 and -1 or 1
    H.assert_close(g:mul(sign), w, tol, ("%s column %d"):format(what, j))
  end
end

describe("L.eigh", function()
  it("matches torch.linalg.eigh: ascending eigenvalues, unit eigenvectors as columns (up to sign)", function()
    for _, name in ipairs{"eigh_12", "eigh_5_spread", "eigh_1"} do
      local c = parts[name]
      local values, vectors = L.eigh(T(c.input))
      assert.same(c.values.shape, {values:size(1)})
      H.assert_close(values, T(c.values), 2e-6, name .. " values")
      assert_columns_close(vectors, T(c.vectors), 2e-6, name)
    end
  end)

  it("decomposes: A V = V diag(values) and V^T V = I", function()
    local a = T(parts.eigh_12.input)
    local values, vectors = L.eigh(a)
    local av = L.mm(a, vectors)
    for j = 1, 12 do
      H.assert_close(av:select(2, j), vectors:select(2, j):clone():mul(values[j]), 1e-5, "column " .. j)
    end
    local eye = L.mm(vectors:t(), vectors)
    for i = 1, 12 do
      for j = 1, 12 do assert(math.abs(eye[i][j] - (i == j and 1 or 0)) < 1e-6, ("V^T V at %d, %d"):format(i, j)) end
    end
  end)

  it("gives each eigenvector the sign that makes its largest component positive", function()
    local _, vectors = L.eigh(T(parts.eigh_12.input))
    for j = 1, 12 do
      local col = vectors:select(2, j):clone()
      local big, at = -1, 0
      for i = 1, 12 do
        if math.abs(col[i]) > big then big, at = math.abs(col[i]), i end
      end
      assert(col[at] > 0, "column " .. j)
    end
    local v, V = L.eigh(L.tensor{{2, 1}, {1, 2}})
    assert.same({1, 3}, v:totable())
    H.assert_close(V, L.tensor{{1, 1}, {-1, 1}}:mul(1 / math.sqrt(2)), 1e-7)   -- a tie: the first is positive
  end)

  it("reads the lower triangle only, as torch's default UPLO = 'L'", function()
    local a = T(parts.eigh_12.input)
    local upper_garbage = a:clone()
    for i = 1, 12 do for j = i + 1, 12 do upper_garbage[i][j] = 1000 + i * j end end
    local v1, V1 = L.eigh(a)
    local v2, V2 = L.eigh(upper_garbage)
    H.assert_close(v2, v1, 0)
    H.assert_close(V2, V1, 0)
  end)

  it("takes any strides, repeated eigenvalues and the empty matrix", function()
    local a = T(parts.eigh_12.input)
    local v1 = L.eigh(a)
    H.assert_close(L.eigh(a:t()), v1, 0)                                  -- (a is symmetric)
    local v, V = L.eigh(L.tensor{{3, 0, 0}, {0, 3, 0}, {0, 0, 1}})
    assert.same({1, 3, 3}, v:totable())
    H.assert_close(L.mm(V:t(), V), L.tensor{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, 0)
    local e, E = L.eigh(L.empty(0, 0))
    assert.equal(0, e:numel())
    assert.equal(0, E:numel())
  end)

  it("refuses what is no symmetric matrix it can decompose, naming itself", function()
    assert.matches("lightning.eigh: expected a square matrix, got 2x3", H.error_of(L.eigh, L.zeros(2, 3)))
    assert.matches("lightning.eigh: expected a square matrix, got 2x2x2", H.error_of(L.eigh, L.zeros(2, 2, 2)))
    assert.matches("lightning.eigh: expected a square matrix, got 4", H.error_of(L.eigh, L.zeros(4)))
    local nan = L.zeros(3, 3)
    nan[3][2] = 0 / 0
    assert.matches("lightning.eigh: the matrix has a non%-finite value at %(3, 2%)", H.error_of(L.eigh, nan))
    local inf = L.zeros(2, 2)
    inf[1][2] = math.huge   -- the upper triangle is not read
    assert.same({0, 0}, (L.eigh(inf)):totable())
    assert.matches("this Jacobi solver is for matrices up to 1024x1024", H.error_of(L.eigh, L.empty(1025, 1025)))
    assert.matches("lightning.eigh", H.error_of(L.eigh, "a"))
    assert.matches("bfloat16", H.error_of(L.eigh, L.zeros(2, 2):bfloat16()))
  end)
end)
