-- Gradient clipping against PyTorch 1.13's clip_grad_norm_ and clip_grad_value_
-- (tools/make_optim_fixtures.py), and its bad arguments.
local L = require "lightning"
local H = require "helpers"

local F = dofile("spec/fixtures/optim/clip.lua")
local TOL = 1e-4

-- The fixture's parameters with their gradients, and a fourth parameter without one.
local function params_with_grads()
  local params = {}
  for i, shape in ipairs(F.shapes) do
    params[i] = L.zeros(shape)
    params[i].grad = L.tensor(F.grads[i]):view(shape)
  end
  params[#params + 1] = L.zeros(4)
  return params
end

local function fails(pattern, f, ...)
  local msg = H.error_of(f, ...)
  assert.is_truthy(msg:find(pattern), ("error %q does not mention %q"):format(msg, pattern))
end

describe("clip_grad_norm", function()
  for _, case in ipairs(F.norm) do
    it(("max_norm %g, norm_type %g"):format(case.max_norm, case.norm_type), function()
      local params = params_with_grads()
      local total = L.optim.clip_grad_norm(params, case.max_norm, case.norm_type)
      H.assert_close(total, case.total_norm, TOL, "total norm")
      for i = 1, #F.shapes do H.assert_close(params[i].grad, case.grads[i], TOL, "gradient " .. i) end
      assert.is_nil(params[4].grad)
    end)
  end

  it("takes norm_type 2 by default, \"inf\" as math.huge, and one tensor as well as a list", function()
    local a, b = params_with_grads(), params_with_grads()
    assert.are.equal(L.optim.clip_grad_norm(a, 1.0), L.optim.clip_grad_norm(b, 1.0, 2))
    local c, d = params_with_grads(), params_with_grads()
    assert.are.equal(L.optim.clip_grad_norm(c, 0.3, "inf"), L.optim.clip_grad_norm(d, 0.3, math.huge))
    local p = L.zeros(3)
    p.grad = L.tensor{3, 4, 0}
    assert.is_true(math.abs(L.optim.clip_grad_norm(p, 1) - 5) < 1e-6)
    H.assert_close(p.grad, {0.6, 0.8, 0}, 1e-5)
  end)

  it("returns 0 when no parameter has a gradient", function()
    assert.are.equal(0, L.optim.clip_grad_norm({L.zeros(2), L.zeros(3)}, 1.0))
  end)

  it("is the same on one thread and on several, for large gradients", function()
    local n = L.get_num_threads()
    local g = L.randn(300000)
    local p1, p2 = L.zeros(300000), L.zeros(300000)
    p1.grad, p2.grad = g:clone(), g:clone()
    L.set_num_threads(1)
    local t1 = L.optim.clip_grad_norm({p1}, 1.0)
    L.set_num_threads(math.max(2, n))
    local t2 = L.optim.clip_grad_norm({p2}, 1.0)
    L.set_num_threads(n)
    assert.is_true(math.abs(t1 - t2) <= 1e-9 * t1)
    H.assert_close(p1.grad, p2.grad, 1e-6)
  end)

  it("propagates a NaN gradient (the total norm is NaN and every gradient becomes NaN, as in PyTorch)", function()
    local p, q = L.zeros(2), L.zeros(2)
    p.grad, q.grad = L.tensor{0 / 0, 1}, L.tensor{1, 2}
    local total = L.optim.clip_grad_norm({p, q}, 1.0)
    assert.is_true(total ~= total)
    assert.is_true(q.grad[1] ~= q.grad[1])
    p.grad = L.tensor{0 / 0, 1}
    fails("lightning.optim.clip_grad_norm: the total norm of order 2 of the gradients is non%-finite", L.optim.clip_grad_norm, {p}, 1.0, 2, true)
  end)

  it("rejects bad arguments with clear errors", function()
    local p = L.zeros(2)
    p.grad = L.ones(2)
    fails("lightning.optim.clip_grad_norm: argument 1 must be a tensor or a list of tensors, got number", L.optim.clip_grad_norm, 3, 1.0)
    fails("lightning.optim.clip_grad_norm: params%[2%] must be a tensor, got string", L.optim.clip_grad_norm, {p, "x"}, 1.0)
    fails("lightning.optim.clip_grad_norm: argument 2 %(max_norm%) must be a number, got nothing", L.optim.clip_grad_norm, {p})
    fails("argument 2 %(max_norm%) must be a non%-negative number, got %-1", L.optim.clip_grad_norm, {p}, -1)
    fails("argument 3 %(norm_type%) must be positive", L.optim.clip_grad_norm, {p}, 1.0, 0)
    fails("argument 3 %(norm_type%) must be a number or \"inf\", got string", L.optim.clip_grad_norm, {p}, 1.0, "two")
    fails("argument 4 %(error_if_nonfinite%) must be a boolean, got number", L.optim.clip_grad_norm, {p}, 1.0, 2, 1)
    local q = L.zeros(2)
    q.grad = "g"
    fails("params%[1%]%.grad must be a tensor or nil, got string", L.optim.clip_grad_norm, {q}, 1.0)
  end)
end)

describe("get_total_norm and clip_grads_with_norm (clipping whose norm stays where the gradients are)", function()
  for _, case in ipairs(F.norm) do
    it(("match PyTorch: max_norm %g, norm_type %g"):format(case.max_norm, case.norm_type), function()
      local params, grads = params_with_grads(), {}
      for i = 1, #F.shapes do grads[i] = params[i].grad end
      local total = L.optim.get_total_norm(grads, case.norm_type)
      assert.same({1}, total:size())
      H.assert_close(total[1], case.total_norm, TOL, "total norm")
      L.optim.clip_grads_with_norm(params, case.max_norm, total)
      for i = 1, #F.shapes do H.assert_close(params[i].grad, case.grads[i], TOL, "gradient " .. i) end
      assert.is_nil(params[4].grad)
    end)
  end

  it("take one tensor as well as a list, the empty list's norm is 0, and a NaN goes through", function()
    local p = L.zeros(3)
    p.grad = L.tensor{3, 4, 0}
    local total = L.optim.get_total_norm(p.grad)
    assert.is_true(math.abs(total[1] - 5) < 1e-6)
    L.optim.clip_grads_with_norm(p, 1, total)
    H.assert_close(p.grad, {0.6, 0.8, 0}, 1e-5)
    assert.equal(0, L.optim.get_total_norm({})[1])
    local q = L.zeros(2)
    q.grad = L.tensor{0 / 0, 1}
    local nan = L.optim.get_total_norm({q.grad})
    assert.is_true(nan[1] ~= nan[1])
    L.optim.clip_grads_with_norm({q}, 1, nan)
    assert.is_true(q.grad[2] ~= q.grad[2])
    local big = L.zeros(2)
    big.grad = L.tensor{0.3, 0.4}
    L.optim.clip_grads_with_norm({big}, 1, L.optim.get_total_norm(big.grad))   -- within max_norm: unchanged
    H.assert_close(big.grad, L.tensor{0.3, 0.4}, 0)
  end)

  it("reject bad arguments with clear errors", function()
    local p = L.zeros(2)
    p.grad = L.ones(2)
    fails("lightning.optim.get_total_norm: tensors%[2%] must be a tensor, got string", L.optim.get_total_norm, {p.grad, "x"})
    fails("lightning.optim.get_total_norm: argument 2 %(norm_type%) must be positive", L.optim.get_total_norm, {p.grad}, -1)
    fails("lightning.optim.clip_grads_with_norm: argument 3 %(total_norm%) must be a tensor", L.optim.clip_grads_with_norm,
      {p}, 1, 5)
    fails("the total norm must be a one%-element tensor, got 2", L.optim.clip_grads_with_norm, {p}, 1, L.ones(2))
    fails("argument 2 %(max_norm%) must be a non%-negative number", L.optim.clip_grads_with_norm, {p}, -1, L.ones(1))
  end)
end)

describe("clip_grad_value", function()
  for _, case in ipairs(F.value) do
    it(("clip_value %g"):format(case.clip_value), function()
      local params = params_with_grads()
      L.optim.clip_grad_value(params, case.clip_value)
      for i = 1, #F.shapes do H.assert_close(params[i].grad, case.grads[i], TOL, "gradient " .. i) end
    end)
  end

  it("rejects bad arguments with clear errors", function()
    local p = L.zeros(2)
    p.grad = L.ones(2)
    fails("lightning.optim.clip_grad_value: argument 2 %(clip_value%) must be a non%-negative number, got %-0%.5", L.optim.clip_grad_value, {p}, -0.5)
    fails("lightning.optim.clip_grad_value: argument 2 %(clip_value%) must be a number, got string", L.optim.clip_grad_value, {p}, "a")
    fails("lightning.optim.clip_grad_value: params%[1%] must be a tensor, got boolean", L.optim.clip_grad_value, {true}, 1)
  end)
end)
