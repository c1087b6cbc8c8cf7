-- L.plot.make_grid against torchvision.utils.make_grid (fixtures by tools/make_plot_fixtures.py).
local L = require "lightning"
local H = require "helpers"

local F = dofile("spec/fixtures/plot/make_grid.lua")

local function tensor_of(spec)
  return L.tensor(spec.data):view(spec.shape)
end

describe("plot: make_grid", function()
  for _, case in ipairs(F.cases) do
    it("matches torchvision for " .. case.name, function()
      local input = tensor_of(F.inputs[case.input])
      local before = input:clone()
      local grid = L.plot.make_grid(input, case.opts)
      assert.same(case.expected.shape, grid:size())
      H.assert_close(grid, tensor_of(case.expected), 1e-6, case.name)
      H.assert_close(input, before, 0, "the input is left as it was")
    end)
  end

  it("takes a single (C, H, W) image and gives a tensor write_png takes", function()
    local grid = L.plot.make_grid(L.rand(1, 5, 6))
    assert.equal("3x5x6", tostring(grid:size()))
    local dir = H.tmpdir()
    L.data.write_png(dir .. "/grid.png", L.plot.make_grid(L.rand(10, 3, 8, 8), {nrow = 5}))
    assert.equal("3x22x52", tostring(L.data.read_png(dir .. "/grid.png"):size()))
    H.rmdir(dir)
  end)

  it("rejects what it cannot lay out", function()
    local f = L.plot.make_grid
    assert.matches("lightning.plot.make_grid: images must be a %(B, C, H, W%) tensor with C = 1 or 3, got a tensor of size 2x4x3x3",
      H.error_of(f, L.zeros(2, 4, 3, 3)))
    assert.matches('images must be a %(B, C, H, W%) tensor, got "x"', H.error_of(f, "x"))
    assert.matches("images is empty", H.error_of(f, L.zeros(0, 3, 2, 2)))
    assert.matches("nrow must be positive, got 0", H.error_of(f, L.zeros(2, 3, 2, 2), {nrow = 0}))
    assert.matches("value_range must be {lo, hi}", H.error_of(f, L.zeros(2, 3, 2, 2), {normalize = true, value_range = 1}))
    assert.matches("unknown option 'pad'", H.error_of(f, L.zeros(2, 3, 2, 2), {pad = 1}))
  end)
end)
