-- Learning-rate schedulers against PyTorch 1.13: the lr of two parameter groups after construction
-- and after each step (20+ steps), OneCycleLR's momentum too (tools/make_optim_fixtures.py).
local L = require "lightning"
local H = require "helpers"

local S = L.optim.lr_scheduler
local F = dofile("spec/fixtures/optim/schedulers.lua")
local TOL = 1e-4

-- An optimizer like the generator's: two groups with lrs 0.1 and 0.05.
local function make_optimizer(kind)
  local groups = {{params = {L.zeros(2)}, lr = 0.1}, {params = {L.zeros(3)}, lr = 0.05}}
  if kind == "SGD" then return L.optim.SGD(groups, {lr = 0.1, momentum = 0.9}) end
  return L.optim.Adam(groups)
end

-- Builds {Name = options} (nested for SequentialLR / ChainedScheduler), as the generator did.
local function build(spec, opt)
  local kind, options = next(spec)
  local o = {}
  for k, v in pairs(options) do o[k] = v end
  if kind == "SequentialLR" or kind == "ChainedScheduler" then
    local subs = {}
    for i, s in ipairs(o.schedulers) do subs[i] = build(s, opt) end
    if kind == "ChainedScheduler" then return S.ChainedScheduler(subs) end
    o.schedulers = subs
  end
  if kind == "LambdaLR" then o.lr_lambda = function(epoch) return 0.95 ^ epoch end end
  return S[kind](opt, o)
end

local function momentum_of(opt)
  local m = {}
  for i, g in ipairs(opt.param_groups) do m[i] = g.betas and g.betas[1] or g.momentum end
  return m
end

local function run(case, opt, sched, from, to)
  for k = from, to do
    opt:step()
    if case.metrics then sched:step(case.metrics[k]) else sched:step() end
    H.assert_close(sched:get_last_lr(), case.lrs[k + 1], TOL, ("%s: lr after step %d"):format(case.name, k))
    local lrs = {}
    for i, g in ipairs(opt.param_groups) do lrs[i] = g.lr end
    H.assert_close(lrs, case.lrs[k + 1], TOL, ("%s: group lrs after step %d"):format(case.name, k))
    if case.momentum then
      H.assert_close(momentum_of(opt), case.momentum[k + 1], TOL, ("%s: momentum after step %d"):format(case.name, k))
    end
  end
end

describe("schedulers against PyTorch", function()
  for _, case in ipairs(F.cases) do
    it(case.name, function()
      local opt = make_optimizer(case.optimizer)
      local sched = build(case.scheduler, opt)
      H.assert_close(sched:get_last_lr(), case.lrs[1], TOL, case.name .. ": lr after construction")
      if case.momentum then H.assert_close(momentum_of(opt), case.momentum[1], TOL, case.name .. ": momentum") end
      run(case, opt, sched, 1, case.steps)
      if sched.last_epoch and not case.metrics then
        local kind = next(case.scheduler)
        if kind ~= "ChainedScheduler" then assert.are.equal(case.steps, sched.last_epoch) end
      end
    end)
  end

  it("state_dict after 7 steps, loaded into a fresh scheduler and optimizer, continues the schedule", function()
    local cjson = require "cjson"
    for _, case in ipairs(F.cases) do
      local opt = make_optimizer(case.optimizer)
      local sched = build(case.scheduler, opt)
      run(case, opt, sched, 1, 7)
      -- both go through JSON, as in a checkpoint
      local opt_json = cjson.encode(select(2, L.optim.flatten_state_dict(opt:state_dict())))
      local sched_json = cjson.encode(sched:state_dict())

      local opt2 = make_optimizer(case.optimizer)
      local sched2 = build(case.scheduler, opt2)
      opt2:load_state_dict(L.optim.unflatten_state_dict({}, cjson.decode(opt_json)))
      sched2:load_state_dict(cjson.decode(sched_json))
      H.assert_close(sched2:get_last_lr(), case.lrs[8], TOL, case.name .. ": lr after loading")
      run(case, opt2, sched2, 8, case.steps)
    end
  end)
end)
