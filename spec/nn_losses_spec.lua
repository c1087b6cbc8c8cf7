-- Losses against PyTorch (fixtures from tools/make_nn_fixtures.py), and their bad inputs.
local L = require "lightning"
local H = require "helpers"
local nn = L.nn

local function T(f) return L.tensor(f.data):view(f.shape) end
local cases = dofile("spec/fixtures/nn/loss.lua")

local function criterion(c)
  local o = {}
  for k, v in pairs(c.options or {}) do o[k] = type(v) == "table" and v.shape and T(v) or v end
  if c.kind == "cross_entropy" then return nn.CrossEntropyLoss(o) end
  if c.kind == "nll" then return nn.NLLLoss(o) end
  return nn.MSELoss(o)
end

describe("losses", function()
  for name, c in pairs(cases) do
    it("match PyTorch: " .. name, function()
      local crit = criterion(c)
      local x, t = T(c.input), T(c.target)
      local loss = crit:forward(x, t)
      local none = crit.reduction == "none"
      H.assert_close(loss, none and T(c.loss) or c.loss.data[1], 1e-4, name .. " loss")
      local g = crit:backward(x, t, none and T(c.grad_output) or nil)
      H.assert_close(g, T(c.grad_input), 1e-4, name .. " grad_input")
    end)
  end

  it("are finite for huge logits", function()
    local crit = nn.CrossEntropyLoss()
    local loss = crit:forward(L.tensor{{1e30, -1e30}, {-1e30, 1e30}}, L.tensor{1, 2})
    assert.equal(0, loss)
    local g = crit:backward(L.tensor{{1e30, -1e30}, {-1e30, 1e30}}, L.tensor{1, 2})
    assert.equal(0, g:abs():sum())
  end)

  it("scale gradients by a number given to backward", function()
    local crit = nn.MSELoss()
    local x, t = L.tensor{1, 2}, L.tensor{0, 0}
    crit:forward(x, t)
    H.assert_close(crit:backward(x, t, 3):clone(), (crit:backward(x, t) * 3), 1e-6)
  end)

  it("give the probabilities of the last forward pass", function()
    local crit = nn.CrossEntropyLoss()
    crit:forward(L.tensor{{0, 0}, {math.log(3), 0}}, L.tensor{1, 1})
    H.assert_close(crit:probabilities(), {{0.5, 0.5}, {0.75, 0.25}}, 1e-6)
  end)

  it("reject bad targets and options with clear errors", function()
    local crit = nn.CrossEntropyLoss()
    local x = L.randn(3, 4)
    assert.matches("CrossEntropyLoss:forward: target 5 at position 2 is not a class index in 1..4",
      H.error_of(crit.forward, crit, x, L.tensor{1, 5, 2}))
    assert.matches("target 0 at position 1 is not a class index",
      H.error_of(crit.forward, crit, x, L.tensor{0, 1, 2}))
    assert.matches("target 1.5 at position 1", H.error_of(crit.forward, crit, x, L.tensor{1.5, 1, 2}))
    assert.matches("target must be a vector of 3 class indices, got 2",
      H.error_of(crit.forward, crit, x, L.tensor{1, 2}))
    assert.matches("expected a 2%-D input %(batch x classes%)", H.error_of(crit.forward, crit, L.randn(4), L.tensor{1}))
    assert.matches("CrossEntropyLoss:forward: input must be a tensor, got table",
      H.error_of(crit.forward, crit, {}, L.tensor{1}))
    assert.matches("class weights must be a vector of 4 elements",
      H.error_of(function() nn.CrossEntropyLoss{weight = L.ones(3)}:forward(x, L.tensor{1, 2, 3}) end))
    assert.matches("CrossEntropyLoss: unknown option 'label_smooth'",
      H.error_of(nn.CrossEntropyLoss, {label_smooth = 0.1}))
    assert.matches('reduction must be "mean", "sum" or "none", got "avg"',
      H.error_of(nn.CrossEntropyLoss, {reduction = "avg"}))
    assert.matches("label_smoothing must be a number in %[0, 1%]", H.error_of(nn.CrossEntropyLoss, {label_smoothing = 2}))
    assert.matches("MSELoss:forward: target 3 must have the input's shape 2",
      H.error_of(function() nn.MSELoss():forward(L.zeros(2), L.zeros(3)) end))
    local none = nn.CrossEntropyLoss{reduction = "none"}
    none:forward(x, L.tensor{1, 2, 3})
    assert.matches("with reduction 'none' pass the gradient of each sample as a tensor",
      H.error_of(none.backward, none, x, L.tensor{1, 2, 3}))
  end)
end)
