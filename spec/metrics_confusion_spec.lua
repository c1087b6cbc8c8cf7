-- lightning.metrics: the C confusion matrix and the scores derived from it, against PyTorch
-- (tools/make_metrics_fixtures.py) and hand computations in scikit-learn's definitions.
local L = require "lightning"
local H = require "helpers"
local metrics = require "lightning.metrics"
local cjson = require "cjson"

local reference = cjson.decode(H.read_file("spec/fixtures/trainer/metrics_reference.json"))

local function close(a, b, what) H.assert_close(a, b, 1e-12, what) end

describe("metrics.ConfusionMatrix against PyTorch", function()
  for i, case in ipairs(reference.cases) do
    it("case " .. i .. " (" .. case.num_classes .. " classes)", function()
      local cm = metrics.ConfusionMatrix(case.num_classes)
      if case.logits then
        cm:update(L.tensor(case.logits), L.tensor(case.target))
      else
        -- in two batches, to check that updates add up
        local half = #case.pred // 2
        local p1, p2, t1, t2 = {}, {}, {}, {}
        for j = 1, #case.pred do
          if j <= half then p1[#p1 + 1], t1[#t1 + 1] = case.pred[j], case.target[j]
          else p2[#p2 + 1], t2[#t2 + 1] = case.pred[j], case.target[j] end
        end
        cm:update(L.tensor(p1), L.tensor(t1))
        cm:update(L.tensor(p2), L.tensor(t2))
      end
      assert.same(case.counts, cm:counts())
      assert.equal(#case.target, cm:total())
      for _, average in ipairs {"macro", "weighted", "micro"} do
        local s = cm:compute(average)
        close(s.accuracy, case.accuracy, average .. " accuracy")
        close(s.precision, case[average].precision, average .. " precision")
        close(s.recall, case[average].recall, average .. " recall")
        close(s.f1, case[average].f1, average .. " f1")
      end
      local per = cm:per_class()
      close(per.precision, case.per_class.precision, "per-class precision")
      close(per.recall, case.per_class.recall, "per-class recall")
      close(per.f1, case.per_class.f1, "per-class f1")
      assert.same(case.per_class.support, per.support)
    end)
  end
end)

describe("metrics.ConfusionMatrix by hand", function()
  it("follows scikit-learn's definitions on a small example", function()
    -- targets 1 1 2 2 3, predictions 1 2 2 2 1
    local cm = metrics.ConfusionMatrix(3):update(L.tensor{1, 2, 2, 2, 1}, L.tensor{1, 1, 2, 2, 3})
    assert.same({{1, 1, 0}, {0, 2, 0}, {1, 0, 0}}, cm:counts())
    local s = cm:compute()
    close(s.accuracy, 3 / 5)
    -- precision: 1/2, 2/3, 0 ; recall: 1/2, 1, 0 ; f1: 2/4, 4/5, 0
    close(s.precision, (1 / 2 + 2 / 3 + 0) / 3)
    close(s.recall, (1 / 2 + 1 + 0) / 3)
    close(s.f1, (2 / 4 + 4 / 5 + 0) / 3)
  end)

  it("leaves classes that never occur out of the macro average", function()
    local cm = metrics.ConfusionMatrix(5):update(L.tensor{1, 2}, L.tensor{1, 2})
    local s = cm:compute("macro")
    assert.equal(1, s.precision)
    assert.equal(1, s.f1)
  end)

  it("takes the argmax of logits, NaN as the largest value and the first maximum on ties", function()
    local cm = metrics.ConfusionMatrix(3)
    cm:update(L.tensor{{0, 5, 5}, {0 / 0, 9, 1}, {1, 0 / 0, 2}}, L.tensor{2, 1, 2})
    assert.same({{1, 0, 0}, {0, 2, 0}, {0, 0, 0}}, cm:counts())
  end)

  it("reads non-contiguous logits", function()
    local logits = L.tensor{{0, 1}, {1, 0}, {0, 1}}:t():contiguous():t()
    local cm = metrics.ConfusionMatrix(2):update(logits, L.tensor{2, 1, 1})
    assert.same({{1, 1}, {0, 1}}, cm:counts())
  end)

  it("gives zeros for an empty matrix, resets and restores counts", function()
    local cm = metrics.ConfusionMatrix(2)
    assert.same({accuracy = 0, precision = 0, recall = 0, f1 = 0}, cm:compute())
    cm:update(L.tensor{1, 2}, L.tensor{1, 1})
    cm:reset()
    assert.equal(0, cm:total())
    cm:set_counts({{3, 1}, {0, 2}})
    assert.equal(6, cm:total())
    close(cm:compute().accuracy, 5 / 6)
    assert.matches("ConfusionMatrix%(num_classes=2, total=6%)", tostring(cm))
  end)

  it("clone() copies the counts; snapshot() copies an EpochMetrics' state, both then go their own way", function()
    local cm = metrics.ConfusionMatrix(3)
    cm:update(L.tensor{1, 2, 2}, L.tensor{1, 2, 3})
    local copy = cm:clone()
    cm:update(L.tensor{3}, L.tensor{3})
    assert.equal(3, copy:total())
    assert.equal(4, cm:total())
    assert.same(copy:counts()[2], {0, 1, 0})
    local m = metrics.EpochMetrics(3)
    m:update(L.tensor{{0, 1, 0}}, L.tensor{2}, 0.5)
    local snap = m:snapshot()
    m:update(L.tensor{{1, 0, 0}}, L.tensor{3}, 1.5)
    assert.same({counts = {{0, 0, 0}, {0, 1, 0}, {0, 0, 0}}, loss_sum = 0.5, samples = 1}, snap:state_dict())
    assert.equal(1, snap:compute().accuracy)
    assert.equal(0.5, m:compute().accuracy)
  end)

  it("keeps an epoch's loss weighted by batch size (EpochMetrics)", function()
    local m = metrics.EpochMetrics(2)
    m:update(L.tensor{{1, 0}, {1, 0}, {1, 0}}, L.tensor{1, 1, 2}, 1.0)
    m:update(L.tensor{{0, 1}}, L.tensor{2}, 3.0)
    local s = m:compute()
    close(s.loss, (1.0 * 3 + 3.0 * 1) / 4)
    close(s.accuracy, 3 / 4)
    m:reset()
    assert.is_nil(m:compute().loss)
  end)

  it("counts NaN and infinite values", function()
    assert.equal(0, metrics.count_nonfinite(L.ones(3, 3)))
    local t = L.zeros(2, 3)
    t[1][2] = 0 / 0
    t[2][3] = math.huge
    assert.equal(2, metrics.count_nonfinite(t))
    assert.equal(1, metrics.count_nonfinite(t:t():select(1, 3)))
  end)
end)

describe("metrics.ConfusionMatrix errors", function()
  local cm = metrics.ConfusionMatrix(3)
  local cases = {
    {"num_classes 0", function() metrics.ConfusionMatrix(0) end, "ConfusionMatrix: num_classes must be 1 to"},
    {"num_classes not a number", function() metrics.ConfusionMatrix("x") end, "argument 1 must be an integer, got string"},
    {"logits of the wrong width", function() cm:update(L.zeros(2, 4), L.tensor{1, 2}) end,
      "ConfusionMatrix:update: logits must be %(B, 3%), got 2x4"},
    {"targets of the wrong length", function() cm:update(L.zeros(2, 3), L.tensor{1, 2, 3}) end,
      "target has 3 elements but the batch has 2"},
    {"2-D targets", function() cm:update(L.zeros(2, 3), L.zeros(2, 1)) end, "target must be 1%-D %(B%), got 2x1"},
    {"a target out of range", function() cm:update(L.zeros(2, 3), L.tensor{1, 4}) end,
      "target 2 is 4, expected a class index in 1..3"},
    {"a 0 target (0-based by mistake)", function() cm:update(L.tensor{1, 1}, L.tensor{0, 1}) end,
      "target 1 is 0, expected a class index in 1..3"},
    {"a fractional prediction", function() cm:update(L.tensor{1.5}, L.tensor{1}) end,
      "prediction 1 is 1.5, expected a class index in 1..3"},
    {"a NaN target", function() cm:update(L.tensor{1}, L.tensor{0 / 0}) end, "target 1 is [-]?nan"},
    {"no tensor", function() cm:update({1, 2}, L.tensor{1, 2}) end, "argument 1 must be a tensor of logits"},
    {"no target", function() cm:update(L.tensor{1}) end, "argument 2 must be a tensor of targets %(B%), got no value"},
    {"an unknown average", function() cm:compute("mean") end,
      "average must be \"macro\", \"micro\" or \"weighted\", got \"mean\""},
    {"a method called with a dot", function() cm.update(L.tensor{1}, L.tensor{1}) end,
      "self must be a ConfusionMatrix, got tensor"},
    {"set_counts with a wrong shape", function() cm:set_counts({{1, 2, 3}}) end, "expected 3 rows, got 1"},
    {"set_counts with a negative count", function() cm:set_counts({{1, 2, 3}, {1, -1, 0}, {0, 0, 0}}) end,
      "count %[2%]%[2%] must be a non%-negative integer"},
  }
  for _, c in ipairs(cases) do
    it("reports " .. c[1], function()
      assert.matches(c[3], H.error_of(c[2]))
    end)
  end

  it("leaves the matrix unchanged after a bad batch", function()
    local m = metrics.ConfusionMatrix(3)
    m:update(L.tensor{1}, L.tensor{1})
    pcall(m.update, m, L.tensor{1, 2}, L.tensor{2, 7})
    assert.equal(1, m:total())
  end)
end)
