-- Every layer's backward pass checks what it is given against what its forward pass saw: a backward pass
-- before any forward pass is an error, and so are an input or a grad_output of another shape (some of
-- which wrote out of bounds once: run this under the ASan build too, see .ci/run).
local L = require "lightning"
local H = require "helpers"
local nn = L.nn

local BEFORE = "backward before forward: there is no successful forward pass to go back through"

-- "%-" escapes for assert.matches
local function literal(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

local function expect(what, want, got, whose)
  return literal(("%s must be %s, got %s (the shape of the forward pass's %s)"):format(what, want, got, whose))
end

-- For one layer: make(), its input x, an input of another shape x2 (that the layer would take in a
-- forward pass), the shape of a grad_output unlike its output's, and an input its kernel refuses (bad;
-- nil where every input of the right dimensions passes).
local cases = {
  {name = "Conv2d", make = function() return nn.Conv2d(3, 4, 3, {padding = 1}) end,
   x = {2, 3, 5, 5}, x2 = {2, 3, 4, 4}, g2 = {2, 4, 4, 4}, bad = {2, 4, 5, 5}},
  {name = "Linear", make = function() return nn.Linear(4, 3) end, x = {2, 4}, x2 = {5, 4}, g2 = {5, 3}, bad = {2, 5}},
  {name = "BatchNorm1d", make = function() return nn.BatchNorm1d(3) end, x = {4, 3}, x2 = {5, 3}, g2 = {5, 3}, bad = {1, 3}},
  {name = "BatchNorm2d", make = function() return nn.BatchNorm2d(3) end,
   x = {2, 3, 4, 4}, x2 = {2, 3, 2, 2}, g2 = {2, 3, 2, 2}, bad = {1, 3, 1, 1}},
  {name = "BatchNormAct2d", make = function() return nn.BatchNormAct2d(3, {activation = "gelu"}) end,
   x = {2, 3, 4, 4}, x2 = {2, 3, 2, 2}, g2 = {2, 3, 2, 2}, bad = {1, 3, 1, 1}},
  {name = "BatchNormReLUMaxPool2d", make = function() return nn.BatchNormReLUMaxPool2d(nn.BatchNorm2d(3)) end,
   x = {2, 3, 4, 4}, x2 = {2, 3, 2, 2}, g2 = {2, 3, 1, 1}, bad = {2, 3, 1, 1}},
  {name = "ReLU", make = function() return nn.ReLU() end, x = {2, 3}, x2 = {3, 3}, g2 = {3, 3}},
  {name = "LeakyReLU", make = function() return nn.LeakyReLU(0.1) end, x = {2, 3}, x2 = {3, 3}, g2 = {3, 3}},
  {name = "Dropout", make = function() return nn.Dropout(0.5) end, x = {2, 3}, x2 = {3, 3}, g2 = {3, 3}},
  {name = "MaxPool2d", make = function() return nn.MaxPool2d(2) end, x = {2, 3, 4, 4}, x2 = {2, 3, 2, 2}, g2 = {2, 3, 1, 1}, bad = {2, 3, 1, 1}},
  {name = "MaxPool2d", label = "MaxPool2d 3x3 stride 1", make = function() return nn.MaxPool2d(3, {stride = 1}) end,
   x = {1, 2, 5, 5}, x2 = {1, 2, 4, 4}, g2 = {1, 2, 2, 2}, bad = {1, 2, 2, 2}},
  {name = "ReLUMaxPool2d", make = function() return nn.ReLUMaxPool2d(2) end,
   x = {2, 3, 4, 4}, x2 = {2, 3, 2, 2}, g2 = {2, 3, 1, 1}, bad = {2, 3, 1, 1}},
  {name = "AvgPool2d", make = function() return nn.AvgPool2d(2) end, x = {2, 3, 4, 4}, x2 = {2, 3, 6, 6}, g2 = {2, 3, 3, 3}, bad = {2, 3, 1, 1}},
  {name = "AdaptiveAvgPool2d", make = function() return nn.AdaptiveAvgPool2d(2) end,
   x = {2, 3, 4, 4}, x2 = {2, 3, 6, 6}, g2 = {2, 3, 3, 3}},
  {name = "Softmax", make = function() return nn.Softmax(2) end, x = {2, 3}, x2 = {2, 4}, g2 = {2, 4}},
  {name = "LogSoftmax", make = function() return nn.LogSoftmax() end, x = {2, 3}, x2 = {2, 4}, g2 = {2, 4}},
}

local function shape(t) return table.concat(t, "x") end

-- A fresh layer of case c after a forward pass: the layer, its input and its output.
local function forwarded(c, seed)
  L.manual_seed(seed)
  local m = c.make()
  local x = L.randn(c.x)
  return m, x, m:forward(x)
end

for _, c in ipairs(cases) do
  describe(c.label or c.name, function()
    it("refuses a backward pass before any forward pass", function()
      local m = c.make()
      local msg = H.error_of(m.backward, m, L.randn(c.x), L.randn(c.x))
      assert.matches(c.name .. ":backward: " .. literal(BEFORE), msg)
    end)

    it("refuses a grad_output unlike the forward pass's output, saying what it expected and got", function()
      local m, x, y = forwarded(c, 1)
      local msg = H.error_of(m.backward, m, x, L.randn(c.g2))
      assert.matches(c.name .. ":backward: " .. expect("grad_output", tostring(y:size()), shape(c.g2), "output"), msg)
    end)

    it("refuses an input unlike the forward pass's, even one the layer would take", function()
      local m, x, y = forwarded(c, 2)
      local g = L.randn(y:size())
      local msg = H.error_of(m.backward, m, L.randn(c.x2), g)
      assert.matches(c.name .. ":backward: " .. expect("input", shape(c.x), shape(c.x2), "input"), msg)
      -- and still goes back through the forward pass it had
      assert.is_true(L.is_tensor(m:backward(x, g)) or c.name == "Conv2d")
    end)

    if c.bad then
      it("refuses a backward pass after a forward pass that failed in its kernel", function()
        local m, x, y = forwarded(c, 3)
        local g = L.randn(y:size())
        H.error_of(m.forward, m, L.randn(c.bad))
        assert.matches(literal(BEFORE), H.error_of(m.backward, m, x, g))
      end)
    end
  end)
end

describe("Dropout outside training", function()
  it("passes gradients through but still checks them against the forward pass", function()
    local d = nn.Dropout(0.5)
    d:eval()
    local x = L.randn(2, 3)
    assert.is_true(rawequal(x, d:forward(x)))
    local g = L.randn(2, 3)
    assert.is_true(rawequal(g, d:backward(x, g)))
    assert.matches(expect("grad_output", "2x3", "3x2", "output"), H.error_of(d.backward, d, x, L.randn(3, 2)))
  end)
end)

describe("losses", function()
  local function class_target(n) local t = L.zeros(n) for i = 1, n do t[i] = (i - 1) % 3 + 1 end return t end
  for _, c in ipairs{
    {name = "CrossEntropyLoss", make = function(o) return nn.CrossEntropyLoss(o) end},
    {name = "NLLLoss", make = function(o) return nn.NLLLoss(o) end},
  } do
    it(c.name .. " refuses backward before forward and inputs or targets unlike the forward pass's", function()
      local crit = c.make()
      local x, t = L.randn(4, 3), class_target(4)
      assert.matches(c.name .. ":backward: " .. literal(BEFORE), H.error_of(crit.backward, crit, x, t))
      crit:forward(x, t)
      assert.matches(expect("input", "4x3", "5x3", "input"), H.error_of(crit.backward, crit, L.randn(5, 3), class_target(5)))
      assert.matches(expect("target", "4", "5", "target"), H.error_of(crit.backward, crit, x, class_target(5)))
      local none = c.make({reduction = "none"})
      none:forward(x, t)
      assert.matches(expect("grad_output", "4", "3", "output"), H.error_of(none.backward, none, x, t, L.randn(3)))
    end)
  end

  it("MSELoss refuses backward before forward and inputs unlike the forward pass's", function()
    local crit = nn.MSELoss()
    local x, t = L.randn(2, 3), L.randn(2, 3)
    assert.matches("MSELoss:backward: " .. literal(BEFORE), H.error_of(crit.backward, crit, x, t))
    crit:forward(x, t)
    assert.matches(expect("input", "2x3", "3x3", "input"), H.error_of(crit.backward, crit, L.randn(3, 3), L.randn(3, 3)))
    local none = nn.MSELoss{reduction = "none"}
    none:forward(x, t)
    assert.matches(expect("grad_output", "2x3", "3x2", "output"), H.error_of(none.backward, none, x, t, L.randn(3, 2)))
  end)
end)

describe("the max poolings with an input of other planes", function()
  -- these wrote out of bounds before the backward passes checked their input (found under ASan)
  for _, make in ipairs{function() return nn.MaxPool2d(2) end, function() return nn.ReLUMaxPool2d(2) end} do
    it("are refused, not computed", function()
      local m = make()
      m:forward(L.randn(2, 3, 4, 4))
      local msg = H.error_of(m.backward, m, L.randn(2, 3, 2, 2), L.randn(2, 3, 2, 2))
      assert.matches(expect("input", "2x3x4x4", "2x3x2x2", "input"), msg)
      msg = H.error_of(m.backward, m, L.randn(4, 3, 4, 4), L.randn(4, 3, 2, 2))
      assert.matches(expect("input", "2x3x4x4", "4x3x4x4", "input"), msg)
    end)
  end
end)
