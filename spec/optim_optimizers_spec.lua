-- SGD, Adam and AdamW against PyTorch 1.13: parameters of three shapes after each of 5 steps of fixed
-- gradients, for many option combinations, parameter groups, learning rates changed between steps and
-- parameters without a gradient at some steps (tools/make_optim_fixtures.py wrote the numbers).
local L = require "lightning"
local H = require "helpers"

local F = dofile("spec/fixtures/optim/optimizers.lua")
local TOL = 1e-4

local function fresh_params()
  local params = {}
  for i, shape in ipairs(F.shapes) do params[i] = L.tensor(F.init[i]):view(shape) end
  return params
end

local function contains(list, x)
  for _, v in ipairs(list or {}) do if v == x then return true end end
  return false
end

-- The optimizer of a case over params: one group, or the case's groups (1-based parameter indices).
local function make_optimizer(case, params)
  local arg = params
  if case.groups then
    arg = {}
    for gi, g in ipairs(case.groups) do
      local group = {}
      for k, v in pairs(g) do group[k] = v end
      group.params = {}
      for j, i in ipairs(g.params) do group.params[j] = params[i] end
      arg[gi] = group
    end
  end
  return L.optim[case.optimizer](arg, case.options)
end

-- Runs steps first..last of a case: sets learning rates and gradients as the generator did.
local function run_steps(case, opt, params, first, last, check)
  for k = first, last do
    for gi, lr in ipairs(case.lr_at and case.lr_at[k] or {}) do opt.param_groups[gi].lr = lr end
    for i, p in ipairs(params) do
      p.grad = not contains(case.skip and case.skip[k], i) and L.tensor(F.grads[k][i]):view(F.shapes[i]) or nil
    end
    opt:step()
    if check then
      for i, p in ipairs(params) do
        H.assert_close(p, case.params[k][i], TOL, ("%s: parameter %d after step %d"):format(case.name, i, k))
      end
    end
  end
end

local function check_state(case, opt)
  local sd = opt:state_dict()
  local count = 0
  for i, entry in pairs(case.state) do
    count = count + 1
    local got = sd.state[i]
    assert(got, ("%s: no state for parameter %d"):format(case.name, i))
    for key, want in pairs(entry) do
      if type(want) == "number" then
        assert.are.equal(want, got[key])
      else
        H.assert_close(got[key], want, TOL, ("%s: state %d.%s"):format(case.name, i, key))
      end
    end
  end
  local got_count = 0
  for _ in pairs(sd.state) do got_count = got_count + 1 end
  assert.are.equal(count, got_count)
end

describe("optimizers against PyTorch", function()
  for _, case in ipairs(F.cases) do
    it(case.name, function()
      local params = fresh_params()
      local opt = make_optimizer(case, params)
      run_steps(case, opt, params, 1, #F.grads, true)
      check_state(case, opt)
    end)
  end

  it("save after 3 steps, load into a fresh optimizer: 2 more steps equal 5 straight", function()
    for _, case in ipairs(F.cases) do
      local params = fresh_params()
      local opt = make_optimizer(case, params)
      run_steps(case, opt, params, 1, 3)
      local params2 = {}
      for i, p in ipairs(params) do params2[i] = p:clone() end
      local opt2 = make_optimizer(case, params2)
      opt2:load_state_dict(opt:state_dict())
      -- the first optimizer goes on too: loading copied its state, so the two do not interfere
      run_steps(case, opt, params, 4, 5, true)
      run_steps(case, opt2, params2, 4, 5, true)
      check_state(case, opt2)
    end
  end)
end)
