-- An optimizer's step over flat parameters (Module:flatten_parameters): one update for a group that holds
-- exactly one flattening's parameters (lightning/optim/flat_step.lua), the bits of the step parameter
-- by parameter, state per parameter as views of flat buffers, and the per-parameter step wherever the
-- group or its state is not uniform.
local L = require "lightning"
local nn = L.nn

local CASES = {
  {"Adam", L.optim.Adam, {lr = 1e-2}},
  {"AdamW with amsgrad", L.optim.AdamW, {lr = 1e-2, weight_decay = 0.1, amsgrad = true}},
  {"Adam with L2 weight decay, maximize", L.optim.Adam, {lr = 1e-2, weight_decay = 0.05, maximize = true}},
  {"SGD with Nesterov momentum", L.optim.SGD, {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 1e-3}},
  {"SGD with dampened momentum", L.optim.SGD, {lr = 0.1, momentum = 0.5, dampening = 0.1}},
  {"plain SGD", L.optim.SGD, {lr = 0.1}},
}

local function model()
  L.manual_seed(7)
  return nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3))
end

local X, Y = nil, nil
local function batch()
  if not X then
    L.manual_seed(8)
    X, Y = L.randn(4, 5), L.tensor{1, 3, 2, 3}
  end
  return X, Y
end

-- steps of training; flatten: the parameters flattened first. Counts the optimizer's updates.
local function train(Opt, opts, flatten, steps, m, opt)
  m = m or model()
  if flatten then m:flatten_parameters() end
  opt = opt or Opt(m:parameters(), opts)
  local updates, update = 0, opt._update
  opt._update = function(...) updates = updates + 1 return update(...) end
  local crit = nn.CrossEntropyLoss()
  local x, y = batch()
  for _ = 1, steps do
    opt:zero_grad()
    crit(m(x), y):backward()
    opt:step()
  end
  opt._update = nil
  return m, opt, updates
end

local function same_bits(a, b, what)
  assert.equal(#a, #b, what)
  for i = 1, #a do
    assert.same(a[i]:size(), b[i]:size(), what)
    local x, y = a[i]:contiguous():view(-1):totable(), b[i]:contiguous():view(-1):totable()
    for j = 1, #x do
      if string.pack("f", x[j]) ~= string.pack("f", y[j]) then
        error(("%s: tensor %d element %d: %.9g and %.9g"):format(what, i, j, x[j], y[j]), 2)
      end
    end
  end
end

local function state_tensors(opt)
  local list = {}
  for i, s in ipairs(opt:state_dict().state) do
    for _, key in ipairs {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"} do
      if s[key] then list[#list + 1] = s[key] end
    end
    list[#list + 1] = L.tensor{s.step or -1, i}
  end
  return list
end

describe("an optimizer over flat parameters", function()
  for _, case in ipairs(CASES) do
    it(case[1] .. ": one update a step, the bits of the step parameter by parameter", function()
      local m1, o1, u1 = train(case[2], case[3], false, 3)
      local m2, o2, u2 = train(case[2], case[3], true, 3)
      assert.equal(3 * 4, u1)   -- four parameters
      assert.equal(3, u2)
      same_bits(m1:parameters(), m2:parameters(), "parameters")
      same_bits(state_tensors(o1), state_tensors(o2), "state")
    end)
  end

  it("keeps a state tensor per parameter, each a view of the flat state", function()
    local m, opt = train(L.optim.Adam, {lr = 1e-2}, true, 2)
    local p = m:parameters()
    local s1, s2 = opt.state[p[1]], opt.state[p[2]]
    assert.equal(2, s1.step)
    assert.same(p[2]:size(), s2.exp_avg:size())
    -- a view: writing the flat buffer shows through
    local rec = opt._flat_records[next(opt._flat_records)]
    rec.state.exp_avg:fill(0.25)
    assert.equal(0.25, s2.exp_avg:view(-1)[1])
  end)

  it("resumes from a state_dict into flat parameters as the uninterrupted run", function()
    local straight = train(L.optim.AdamW, {lr = 1e-2, amsgrad = true}, true, 5)
    local m, opt = train(L.optim.AdamW, {lr = 1e-2, amsgrad = true}, false, 2)
    local m2 = model()
    m2:load_state_dict(m:state_dict())
    local opt2 = L.optim.AdamW(m2:parameters(), {lr = 1e-2, amsgrad = true})
    opt2:load_state_dict(opt:state_dict())
    local _, _, updates = train(nil, nil, true, 3, m2, opt2)
    assert.equal(3, updates)
    same_bits(straight:parameters(), m2:parameters(), "resumed")
  end)

  it("steps parameter by parameter where a group is not one flattening or a parameter is frozen", function()
    local m = model()
    m:flatten_parameters()
    local p = m:parameters()
    local opt = L.optim.SGD({{params = {p[1], p[2]}}, {params = {p[3], p[4]}, lr = 0.01}}, {lr = 0.1, momentum = 0.9})
    local _, _, updates = train(nil, nil, false, 2, m, opt)
    assert.equal(8, updates)
    local ref = train(L.optim.SGD, {lr = 0.1, momentum = 0.9}, false, 0)
    local ropt = L.optim.SGD({{params = {ref:parameters()[1], ref:parameters()[2]}},
      {params = {ref:parameters()[3], ref:parameters()[4]}, lr = 0.01}}, {lr = 0.1, momentum = 0.9})
    train(nil, nil, false, 2, ref, ropt)
    same_bits(ref:parameters(), m:parameters(), "two groups")

    local f = model()
    f:flatten_parameters()
    f:parameters()[3].requires_grad = false
    local fopt = L.optim.Adam(f:parameters(), {lr = 1e-2})
    local before = f:parameters()[3]:clone()
    local _, _, u = train(nil, nil, false, 2, f, fopt)
    assert.equal(2 * 3, u)
    same_bits({before}, {f:parameters()[3]}, "frozen")
  end)

  it("zero_grad(): one fill of the flat gradient; zero_grad(true) still drops each gradient", function()
    local m = train(L.optim.SGD, {lr = 0.1}, true, 1)
    local opt = L.optim.SGD(m:parameters(), {lr = 0.1})
    local flat_params, flat_grads = m:flatten_parameters()
    flat_grads:fill(3)
    opt:zero_grad()
    assert.equal(0, flat_grads:abs():max())
    opt:zero_grad(true)
    for _, p in ipairs(m:parameters()) do assert.is_nil(p.grad) end
    assert.is_not_nil(flat_params)
  end)
end)
