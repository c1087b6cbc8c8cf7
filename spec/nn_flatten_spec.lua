-- Module:flatten_parameters: every parameter and gradient a view into one flat buffer each, values
-- preserved, optimizers, state_dict and clipping unchanged (bit for bit), and Tensor:set_ beneath it.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local nn = L.nn
local Precision = require "lightning.precision.precision"

local function net(seed)
  L.manual_seed(seed or 3)
  return nn.Sequential(nn.Conv2d(2, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
    nn.Linear(4 * 5 * 5, 3))
end

local function snapshot(m)
  local out = {}
  for name, t in pairs(m:state_dict()) do out[name] = t:clone() end
  return out
end

-- true when every tensor of a equals b's exactly
local function same(a, b)
  for name, t in pairs(a) do
    local d = (t - b[name]):abs():max()
    if d ~= 0 then return false, name end
  end
  return true
end

-- n training steps of m with optimizer opt on fixed data (grads from the layers' backward passes)
local function train(m, opt, n, clip)
  L.manual_seed(11)
  local crit = nn.CrossEntropyLoss()
  local plugin = Precision()
  for _ = 1, n do
    local x, y = L.randn(4, 2, 5, 5), L.tensor{1, 2, 3, 1}
    opt:zero_grad()
    local out = m:forward(x)
    crit:forward(out, y)
    m:backward(x, crit:backward(out, y))
    if clip then plugin:clip_grad_by_norm(opt, clip, m) end
    opt:step()
  end
end

describe("Tensor:set_", function()
  it("makes the tensor a view of another's storage, keeping its fields", function()
    local a = L.ones(2, 3)
    a.grad = L.zeros(2, 3)
    local buffer = L.zeros(10)
    local view = buffer:narrow(1, 3, 6):view(2, 3)
    assert.equal(a, a:set_(view))
    a:mul(5)
    assert.same({0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, buffer:totable())  -- values are not copied by set_
    a:fill(2)
    assert.same({0, 0, 2, 2, 2, 2, 2, 2, 0, 0}, buffer:totable())
    assert.same({2, 3}, {a:size(1), a:size(2)})
    assert.is_true(L.is_tensor(a.grad))
  end)

  it("refuses what is not a tensor", function()
    local a = L.ones(2)
    assert.matches("Tensor:set_: argument 1 must be a tensor, got number", H.error_of(a.set_, a, 3))
    assert.matches("Tensor:set_", H.error_of(a.set_, {}, a))
  end)
end)

describe("Module:flatten_parameters", function()
  -- the checks compare parameters as numbers ((a - b):abs():max()): outside autograd, as PyTorch's
  -- torch.no_grad() (with grad mode on, a reduction of a parameter is a recorded one-element tensor)
  local grad_before
  setup(function() grad_before = L.set_grad_enabled(false) end)
  teardown(function() L.set_grad_enabled(grad_before) end)
  it("preserves every value and makes parameters and gradients views of two flat buffers", function()
    local m = net()
    for _, p in ipairs(m:parameters()) do p.grad:uniform(-1, 1) end
    local before, grads = snapshot(m), {}
    for i, p in ipairs(m:parameters()) do grads[i] = p.grad:clone() end
    local params_list = m:parameters()
    assert.is_nil(m:flat_parameters())
    local flat_params, flat_grads = m:flatten_parameters()
    assert.equal(m:num_parameters(), flat_params:numel())
    assert.equal(flat_params:numel(), flat_grads:numel())
    assert.equal(flat_grads, flat_params.grad)
    assert.is_true(same(before, snapshot(m)))
    for i, p in ipairs(m:parameters()) do
      assert.equal(params_list[i], p)  -- the same tensors (userdata), now views
      assert.equal(0, (p.grad - grads[i]):abs():max())
    end
    -- writes go both ways
    flat_params:fill(0.25)
    for _, p in ipairs(m:parameters()) do assert.equal(0.25, p:max()) assert.equal(0.25, p:min()) end
    m:parameters()[1]:fill(-1)
    assert.equal(-1, flat_params:min())
    m:zero_grad()
    assert.equal(0, flat_grads:abs():max())
    flat_grads:fill(3)
    assert.equal(3, m:parameters()[2].grad[1])
    -- buffers (BatchNorm's running statistics) are not parameters: untouched
    assert.equal(0, (m[2].running_var - before["1.running_var"]):abs():max())
  end)

  it("returns the same buffers again, and none once a gradient is replaced", function()
    local m = net()
    local a, b = m:flatten_parameters()
    local c, d = m:flatten_parameters()
    assert.equal(a, c)
    assert.equal(b, d)
    local p, g = m:flat_parameters()
    assert.equal(a, p)
    assert.equal(b, g)
    local first = m:parameters()[1]
    first.grad = L.zeros(first:size())
    assert.is_nil(m:flat_parameters())
    local e = m:flatten_parameters()  -- flattens again, into new buffers, keeping the values
    assert.are_not.equal(a, e)
    assert.is_true(same(snapshot(m), (function()
      local t = {}
      for name, x in pairs(m:state_dict()) do t[name] = x end
      return t
    end)()))
  end)

  it("steps an optimizer bit for bit as the unflattened model does (SGD with momentum, Adam, AdamW)", function()
    for _, make in ipairs {
      function(ps) return L.optim.SGD(ps, {lr = 0.1, momentum = 0.9, weight_decay = 1e-3}) end,
      function(ps) return L.optim.Adam(ps, {lr = 1e-2}) end,
      function(ps) return L.optim.AdamW(ps, {lr = 1e-2, amsgrad = true}) end,
    } do
      local a, b = net(5), net(5)
      local opt_a, opt_b = make(a:parameters()), make(b:parameters())
      train(a, opt_a, 2)
      train(b, opt_b, 2)
      b:flatten_parameters()  -- after the optimizer was made and has state: it holds the same tensors
      train(a, opt_a, 3)
      train(b, opt_b, 3)
      local ok, name = same(snapshot(a), snapshot(b))
      assert.is_true(ok, name)
      -- and the optimizer's state_dict is unchanged by flattening
      local sa, sb = opt_a:state_dict(), opt_b:state_dict()
      for i, st in pairs(sa.state) do
        for key, v in pairs(st) do
          if L.is_tensor(v) then assert.equal(0, (v - sb.state[i][key]):abs():max()) else assert.equal(v, sb.state[i][key]) end
        end
      end
    end
  end)

  it("loads a state dict into the flat buffer", function()
    local source, m = net(7), net(8)
    local flat_params = m:flatten_parameters()
    m:load_state_dict(source:state_dict())
    assert.is_true(same(snapshot(source), snapshot(m)))
    local first = source:parameters()[1]:contiguous():view(-1)
    assert.equal(first[1], flat_params[1])
    assert.equal(flat_params, (m:flat_parameters()))
  end)

  -- The flat norm adds float partial sums over other blocks than the per-tensor one: equal within float
  -- rounding, not bit for bit; clipping by value is elementwise and stays exact.
  it("clips by global norm in one pass over the flat gradient, as over the separate gradients", function()
    local a, b = net(9), net(9)
    local opt_a, opt_b = L.optim.SGD(a:parameters(), {lr = 0.1}), L.optim.SGD(b:parameters(), {lr = 0.1})
    b:flatten_parameters()
    for _, m in ipairs {a, b} do
      L.manual_seed(4)
      for _, p in ipairs(m:parameters()) do p.grad:normal(0, 3) end
    end
    local plugin = Precision()
    local norm_a = plugin:clip_grad_by_norm(opt_a, 0.5, a)
    local norm_b = plugin:clip_grad_by_norm(opt_b, 0.5, b)
    assert.is_true(norm_a > 1)  -- so that clipping scales
    H.assert_close(norm_b, norm_a, 1e-6, "total norm")
    for i, p in ipairs(a:parameters()) do H.assert_close(b:parameters()[i].grad, p.grad, 1e-6, "clipped gradient") end
    assert.is_true(math.abs(L.optim.clip_grad_norm({b:flat_parameters()}, math.huge) - 0.5) < 1e-5)
    -- by value: exact
    for _, m in ipairs {a, b} do
      L.manual_seed(4)
      for _, p in ipairs(m:parameters()) do p.grad:normal(0, 3) end
    end
    plugin:clip_grad_by_value(opt_a, 0.01, a)
    plugin:clip_grad_by_value(opt_b, 0.01, b)
    for i, p in ipairs(a:parameters()) do assert.equal(0, (p.grad - b:parameters()[i].grad):abs():max()) end
    -- and training with clipping by norm stays within float rounding
    train(a, opt_a, 3, 0.1)
    train(b, opt_b, 3, 0.1)
    H.assert_close(b:parameters(), a:parameters(), 1e-5, "weights after clipped steps")
  end)

  it("trains through the Trainer as the unflattened model: exactly with accumulation, within rounding with clipping", function()
    local function fit(flatten, extra)
      local dir = H.tmpdir()
      L.manual_seed(1)
      local model = S.Regression{noise = false}(3)
      if flatten then model:flatten_parameters() end
      local opts = {max_epochs = 2, accumulate_grad_batches = 2}
      for k, v in pairs(extra or {}) do opts[k] = v end
      local trainer = L.Trainer(S.quiet(dir, opts))
      trainer:fit(model, S.Loader(S.regression_batches(5, 4, 3, 2)))
      H.rmdir(dir)
      return snapshot(model), model:flat_parameters()
    end
    local plain = fit(false)
    local flat_sd, still_flat = fit(true)
    assert.is_true(same(plain, flat_sd))
    assert.is_truthy(still_flat)
    local clipped = fit(false, {gradient_clip_val = 0.05})
    local clipped_flat = fit(true, {gradient_clip_val = 0.05})
    assert.is_false(same(plain, clipped))  -- clipping did something
    H.assert_close(clipped_flat.weight, clipped.weight, 1e-5, "weights")
    H.assert_close(clipped_flat.bias, clipped.bias, 1e-5, "bias")
  end)

  it("names what it cannot flatten", function()
    local m = net()
    m:parameters()[2].grad = nil
    assert.matches("Sequential:flatten_parameters: parameter 2 needs a gradient tensor p.grad of its size, got nil",
      H.error_of(m.flatten_parameters, m))
  end)
end)
