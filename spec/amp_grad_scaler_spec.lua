-- L.amp.GradScaler on the host (torch.amp.GradScaler's semantics: the scaler runs on any device; the
-- Trainer's "16-mixed" uses it on a GPU, spec/cuda_mixed_spec.lua) and its two kernels,
-- lightning.core.optim.amp_unscale and amp_update_scale.
local L = require "lightning"
local H = require "helpers"

local C = L.core.optim

local function linear_problem()
  L.manual_seed(3)
  local model = L.nn.Linear(4, 3)
  local opt = L.optim.SGD(model:parameters(), {lr = 0.1})
  local x, y = L.randn(6, 4), L.tensor{1, 2, 3, 1, 2, 3}
  return model, opt, x, y, L.nn.CrossEntropyLoss()
end

describe("the loss scaler's kernels", function()
  it("unscale multiplies every gradient and raises the flag for an inf or a NaN, never lowering it", function()
    local a, b = L.tensor{2, -4, 6}, L.tensor{{8, 10}, {12, 14}}
    local found = L.zeros(1)
    C.amp_unscale({a, b}, L.tensor{0.5}, found)
    H.assert_close(a, L.tensor{1, -2, 3}, 0)
    H.assert_close(b, L.tensor{{4, 5}, {6, 7}}, 0)
    assert.equal(0, found[1])
    for _, bad in ipairs {math.huge, -math.huge, 0 / 0} do
      local g = L.tensor{1, bad, 3}
      found:zero()
      C.amp_unscale(g, L.tensor{0.25}, found)
      assert.equal(1, found[1])
      assert.equal(0.25, g[1])
      C.amp_unscale(L.tensor{1, 2}, L.tensor{1}, found)   -- a clean tensor after leaves it raised
      assert.equal(1, found[1])
    end
    -- a large gradient (2^20 elements: the threaded pass) with one inf near its end
    local big = L.ones(1048576)
    big[1048000] = math.huge
    found:zero()
    C.amp_unscale(big, L.tensor{0.5}, found)
    assert.equal(1, found[1])
    assert.equal(0.5, big[1048575])
  end)

  it("update backs off after an inf, grows after growth_interval clean steps, and keeps a finite scale", function()
    local scale, tracker, found = L.tensor{1024}, L.zeros(1), L.zeros(1)
    local function step(inf)
      found:fill(inf and 1 or 0)
      C.amp_update_scale(scale, tracker, found, 2, 0.5, 3)
      return scale[1], tracker[1]
    end
    assert.same({1024, 1}, {step()})
    assert.same({1024, 2}, {step()})
    assert.same({2048, 0}, {step()})
    assert.same({2048, 1}, {step()})
    assert.same({1024, 0}, {step(true)})
    assert.same({1024, 1}, {step()})
    scale:fill(2 ^ 127)   -- growing would overflow float32: the scale stays
    tracker:fill(2)
    assert.same({2 ^ 127, 0}, {step()})
  end)

  it("refuses bad arguments with clear errors", function()
    local one, bad = L.ones(1), L.ones(2)
    assert.matches("amp_unscale: the inverse scale must be a one%-element float32 tensor, got a float32 tensor of size 2",
      H.error_of(C.amp_unscale, {L.ones(3)}, bad, L.zeros(1)))
    assert.matches("amp_unscale: gradient 2 must be a contiguous float32 tensor, got float32 %(not contiguous%)",
      H.error_of(C.amp_unscale, {L.ones(3), L.ones(3, 4):t()}, one, L.zeros(1)))
    assert.matches("amp_unscale: argument 3 %(found_inf%) must be a tensor, got no value", H.error_of(C.amp_unscale, {}, one))
    assert.matches("growth_factor must be a finite number above 1, got 1",
      H.error_of(C.amp_update_scale, one, L.zeros(1), L.zeros(1), 1, 0.5, 10))
    assert.matches("backoff_factor must be between 0 and 1, got 1",
      H.error_of(C.amp_update_scale, one, L.zeros(1), L.zeros(1), 2, 1, 10))
    assert.matches("growth_interval must be between 1 and 16777216, got 0",
      H.error_of(C.amp_update_scale, one, L.zeros(1), L.zeros(1), 2, 0.5, 0))
    assert.matches("%(growth_interval%) must be an integer, got number",
      H.error_of(C.amp_update_scale, one, L.zeros(1), L.zeros(1), 2, 0.5, 1.5))
    assert.matches("the scale must be a one%-element float32 tensor",
      H.error_of(C.amp_update_scale, bad, L.zeros(1), L.zeros(1), 2, 0.5, 10))
  end)
end)

describe("L.amp.GradScaler", function()
  it("scales the loss, unscales the gradients to the unscaled run's, and steps as the optimizer would", function()
    local model, opt, x, y, crit = linear_problem()
    local ref_model, ref_opt = linear_problem()
    local scaler = L.amp.GradScaler{init_scale = 1024}
    local loss = crit(model(x), y)
    local scaled = scaler:scale(loss)
    H.assert_close(scaled, loss * 1024, 1e-6)
    scaled:backward()
    H.assert_close(model.weight.grad, (function()
      local l = crit(ref_model(x), y)
      l:backward()
      return ref_model.weight.grad * 1024
    end)(), 1e-5)
    scaler:step(opt)
    ref_opt:step()
    H.assert_close(model.weight, ref_model.weight, 1e-6)
    scaler:update()
    assert.equal(1024, scaler:get_scale())
  end)

  it("skips the step whose gradients overflowed, halves the scale, and grows it after clean steps", function()
    local model, opt, x, y, crit = linear_problem()
    local scaler = L.amp.GradScaler{init_scale = 256, growth_interval = 2}
    local scales, changed = {}, {}
    for i = 1, 5 do
      opt:zero_grad()
      scaler:scale(crit(model(x), y)):backward()
      if i == 2 then model.bias.grad[2] = 0 / 0 end
      local before = model.weight:clone()
      local result = scaler:step(opt)
      scaler:update()
      changed[i] = (model.weight - before):abs():sum() > 0
      scales[i] = scaler:get_scale()
      if i == 2 then assert.is_nil(result) end
    end
    assert.same({true, false, true, true, true}, changed)
    assert.same({256, 128, 128, 256, 256}, scales)
  end)

  it("unscale_ before clipping: the clip sees the true gradients, and step does not unscale twice", function()
    local model, opt, x, y, crit = linear_problem()
    local ref_model, ref_opt = linear_problem()
    local scaler = L.amp.GradScaler{init_scale = 4096}
    scaler:scale(crit(model(x), y)):backward()
    scaler:unscale_(opt)
    local norm = L.optim.clip_grad_norm(model:parameters(), 0.1)
    crit(ref_model(x), y):backward()
    local ref_norm = L.optim.clip_grad_norm(ref_model:parameters(), 0.1)
    assert.near(ref_norm, norm, 1e-5 * ref_norm)
    scaler:step(opt)
    ref_opt:step()
    H.assert_close(model.weight, ref_model.weight, 1e-6)
  end)

  it("scales a table of losses, and starts a criterion's backward from the scale", function()
    local scaler = L.amp.GradScaler{init_scale = 8}
    local out = scaler:scale({a = L.tensor{1}, b = {L.tensor{2, 3}}})
    H.assert_close(out.a, L.tensor{8}, 0)
    H.assert_close(out.b[1], L.tensor{16, 24}, 0)
    local crit = L.nn.CrossEntropyLoss()
    local x, y = L.randn(3, 4), L.tensor{1, 2, 3}
    crit:forward(x, y)
    local plain = crit:backward(x, y):clone()
    local scaled = crit:backward(x, y, scaler:loss_gradient(x)):clone()
    H.assert_close(scaled, plain * 8, 1e-6)
    assert.matches("grad_output must be a number or a one%-element tensor %(the loss's gradient%), got a tensor of 2 " ..
      "elements", H.error_of(crit.backward, crit, x, y, L.ones(2)))
  end)

  it("saves and loads PyTorch's state entries; a disabled scaler passes everything through", function()
    local model, opt, x, y, crit = linear_problem()
    local scaler = L.amp.GradScaler{init_scale = 64, growth_interval = 10}
    scaler:scale(crit(model(x), y)):backward()
    scaler:step(opt)
    scaler:update()
    local state = scaler:state_dict()
    assert.same({scale = 64, growth_factor = 2, backoff_factor = 0.5, growth_interval = 10, _growth_tracker = 1}, state)
    local other = L.amp.GradScaler()
    other:load_state_dict({scale = 64.0, growth_factor = 2.0, backoff_factor = 0.5, growth_interval = 10.0,
      _growth_tracker = 1.0})   -- (numbers read back from JSON)
    assert.same(state, other:state_dict())
    assert.matches("unknown entry 'scales'", H.error_of(other.load_state_dict, other, {scales = 1}))
    assert.matches("scale must be a number > 0, got %-1", H.error_of(other.load_state_dict, other,
      {scale = -1, growth_factor = 2, backoff_factor = 0.5, growth_interval = 10, _growth_tracker = 0}))
    assert.matches("the state is empty, possibly because it was saved from a disabled GradScaler",
      H.error_of(other.load_state_dict, other, {}))
    local off = L.amp.GradScaler{enabled = false}
    local loss = L.tensor{3}
    assert.equal(loss, off:scale(loss))
    assert.same({}, off:state_dict())
    assert.equal(1, off:get_scale())
    assert.matches("disabled", H.error_of(off.load_state_dict, off, state))
  end)

  it("update(new_scale) sets the scale, and the call order is checked as PyTorch checks it", function()
    local model, opt, x, y, crit = linear_problem()
    local scaler = L.amp.GradScaler()
    assert.matches("GradScaler: unknown option 'init_scales' %(did you mean 'init_scale'%?%)",
      H.error_of(L.amp.GradScaler, {init_scales = 2}))
    assert.matches("growth_factor must be a number > 1, got 0%.5", H.error_of(L.amp.GradScaler, {growth_factor = 0.5}))
    assert.matches("call scale%(%) %(or loss_gradient%(%)%) before unscaling", H.error_of(scaler.unscale_, scaler, opt))
    scaler:scale(crit(model(x), y)):backward()
    scaler:unscale_(opt)
    assert.matches("unscale_%(%) has already been called on this optimizer since the last update%(%)",
      H.error_of(scaler.unscale_, scaler, opt))
    scaler:step(opt)
    assert.matches("unscale_%(%) is being called after step%(%)", H.error_of(scaler.unscale_, scaler, opt))
    assert.matches("step%(%) has already been called since the last update%(%)", H.error_of(scaler.step, scaler, opt))
    scaler:update(32)
    assert.equal(32, scaler:get_scale())
    scaler:update(L.tensor{16})
    assert.equal(16, scaler:get_scale())
    assert.matches("new_scale must be a positive finite number, got inf", H.error_of(scaler.update, scaler, math.huge))
    assert.matches("GradScaler:step: expected an optimizer, got nil", H.error_of(scaler.step, scaler))
  end)
end)
