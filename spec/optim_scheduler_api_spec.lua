-- Schedulers beyond the numbers: initial_lr, last_epoch, state dicts, and bad arguments.
local L = require "lightning"
local H = require "helpers"

local S = L.optim.lr_scheduler

local function fails(pattern, f, ...)
  local msg = H.error_of(f, ...)
  assert.is_truthy(msg:find(pattern, 1, true), ("error %q does not mention %q"):format(msg, pattern))
end

local function sgd(lr)
  return L.optim.SGD({{params = {L.zeros(2)}, lr = lr or 0.1}, {params = {L.zeros(1)}, lr = 0.01}}, {lr = 0.1, momentum = 0.9})
end

describe("schedulers", function()
  it("record initial_lr per group at construction and start at last_epoch 0", function()
    local opt = sgd()
    local s = S.StepLR(opt, {step_size = 2})
    assert.are.equal(0.1, opt.param_groups[1].initial_lr)
    assert.are.equal(0.01, opt.param_groups[2].initial_lr)
    assert.are.same({0.1, 0.01}, s.base_lrs)
    assert.are.equal(0, s.last_epoch)
    assert.are.same({0.1, 0.01}, s:get_last_lr())
    s:step()
    s:step()
    assert.are.equal(2, s.last_epoch)
    H.assert_close(s:get_last_lr(), {0.01, 0.001}, 1e-12)
    -- get_last_lr gives a copy
    s:get_last_lr()[1] = 5
    H.assert_close(s:get_last_lr(), {0.01, 0.001}, 1e-12)
  end)

  it("resume with last_epoch when the groups have initial_lr", function()
    local opt = sgd()
    fails("lightning.optim.lr_scheduler.ExponentialLR: param_groups[1] has no initial_lr, which resuming with last_epoch = 4 needs",
      S.ExponentialLR, opt, {gamma = 0.5, last_epoch = 4})
    opt.param_groups[1].initial_lr = 0.1
    opt.param_groups[2].initial_lr = 0.01
    local s = S.ExponentialLR(opt, {gamma = 0.5, last_epoch = 4})
    assert.are.equal(5, s.last_epoch)
  end)

  it("follow an lr the user changed between steps (the chainable form)", function()
    local opt = sgd()
    local s = S.ExponentialLR(opt, {gamma = 0.5})
    opt.param_groups[1].lr = 1
    s:step()
    assert.are.equal(0.5, opt.param_groups[1].lr)
  end)

  it("express linear warm-up then cosine annealing with SequentialLR", function()
    local opt = sgd(1.0)
    local s = S.SequentialLR(opt, {schedulers = {S.LinearLR(opt, {start_factor = 0.1, total_iters = 4}),
      S.CosineAnnealingLR(opt, {T_max = 10})}, milestones = {4}})
    local lrs = {opt.param_groups[1].lr}
    for _ = 1, 14 do s:step(); lrs[#lrs + 1] = opt.param_groups[1].lr end
    H.assert_close({lrs[1], lrs[3], lrs[5], lrs[10], lrs[15]}, {0.1, 0.55, 1.0, (1 + math.cos(math.pi * 5 / 10)) / 2, 0}, 1e-9)
  end)

  it("OneCycleLR stops after total_steps", function()
    local s = S.OneCycleLR(sgd(), {max_lr = 0.1, total_steps = 3})
    for _ = 1, 3 do s:step() end
    fails("lightning.optim.lr_scheduler.OneCycleLR:step: tried to step 5 times; the schedule has total_steps = 3", s.step, s)
  end)

  it("state dicts are plain tables without functions or infinities", function()
    local opt = sgd()
    local sd = S.LambdaLR(opt, {lr_lambda = function(e) return 1 / (e + 1) end}):state_dict()
    assert.is_nil(sd.lr_lambda)
    assert.are.equal(0, sd.last_epoch)
    local plateau = S.ReduceLROnPlateau(opt)
    assert.is_nil(plateau:state_dict().best)
    plateau:step(3)
    assert.are.equal(3, plateau:state_dict().best)
    local fresh = S.ReduceLROnPlateau(sgd())
    fresh:load_state_dict(plateau:state_dict())
    assert.are.equal(3, fresh.best)
    assert.are.equal(1, fresh.last_epoch)
    local cjson = require "cjson"
    for _, s in ipairs{S.StepLR(sgd(), {step_size = 3}), S.MultiStepLR(sgd(), {milestones = {2, 4}}),
        S.OneCycleLR(sgd(), {max_lr = 1, epochs = 2, steps_per_epoch = 10}), S.CosineAnnealingLR(sgd(), {T_max = 5}),
        S.ReduceLROnPlateau(sgd())} do
      assert.is_string(cjson.encode(s:state_dict()))
    end
  end)

  it("ReduceLROnPlateau takes a metric as a number or a one-element tensor", function()
    local opt = sgd()
    local s = S.ReduceLROnPlateau(opt, {patience = 0, factor = 0.5})
    s:step(L.tensor{1.0})
    s:step(2.0)
    assert.are.same({0.05, 0.005}, s:get_last_lr())
    fails("lightning.optim.lr_scheduler.ReduceLROnPlateau:step: the metric must be a number, got nil", s.step, s)
    fails("the metric must be a number or a one-element tensor, got a tensor of 2 elements", s.step, s, L.zeros(2))
  end)
end)

describe("scheduler arguments", function()
  it("unknown options, missing and wrong values are errors that name them", function()
    local opt = sgd()
    fails("lightning.optim.lr_scheduler.StepLR: unknown option 'step' (did you mean 'step_size'?) (known: gamma, last_epoch, step_size)", S.StepLR, opt, {step = 3})
    fails("lightning.optim.lr_scheduler.StepLR: option step_size is required", S.StepLR, opt, {gamma = 0.5})
    fails("lightning.optim.lr_scheduler.StepLR: step_size must be an integer >= 1, got 0", S.StepLR, opt, {step_size = 0})
    fails("lightning.optim.lr_scheduler.StepLR: step_size must be an integer >= 1, got 2.5", S.StepLR, opt, {step_size = 2.5})
    fails("lightning.optim.lr_scheduler.StepLR: gamma must be a number, got \"x\"", S.StepLR, opt, {step_size = 1, gamma = "x"})
    fails("lightning.optim.lr_scheduler.StepLR: expected a table of options, got 3", S.StepLR, opt, 3)
    fails("lightning.optim.lr_scheduler.MultiStepLR: milestones must be a list of integers, got 1.5 at position 2", S.MultiStepLR, opt, {milestones = {1, 1.5}})
    fails("lightning.optim.lr_scheduler.ExponentialLR: option gamma is required", S.ExponentialLR, opt, {})
    fails("lightning.optim.lr_scheduler.CosineAnnealingLR: T_max must be a number > 0, got 0", S.CosineAnnealingLR, opt, {T_max = 0})
    fails("lightning.optim.lr_scheduler.LinearLR: start_factor must be a number in (0, 1], got 2", S.LinearLR, opt, {start_factor = 2})
    fails("lightning.optim.lr_scheduler.LambdaLR: expected 2 lr_lambda functions (one per parameter group), got 1", S.LambdaLR, opt, {lr_lambda = {function() return 1 end}})
    fails("lightning.optim.lr_scheduler.LambdaLR: lr_lambda must be a function or a list of functions, got 0.5", S.LambdaLR, opt, {lr_lambda = 0.5})
    fails("lightning.optim.lr_scheduler.ReduceLROnPlateau: mode must be \"min\" or \"max\", got \"low\"", S.ReduceLROnPlateau, opt, {mode = "low"})
    fails("lightning.optim.lr_scheduler.ReduceLROnPlateau: factor must be a number in [0, 1), got 1", S.ReduceLROnPlateau, opt, {factor = 1})
    fails("lightning.optim.lr_scheduler.ReduceLROnPlateau: threshold_mode must be \"rel\" or \"abs\"", S.ReduceLROnPlateau, opt, {threshold_mode = "x"})
    fails("lightning.optim.lr_scheduler.ReduceLROnPlateau: expected 2 min_lr values (one per parameter group), got 3", S.ReduceLROnPlateau, opt, {min_lr = {0, 0, 0}})
    fails("lightning.optim.lr_scheduler.ReduceLROnPlateau: unknown option 'patince'", S.ReduceLROnPlateau, opt, {patince = 3})
    fails("lightning.optim.lr_scheduler.OneCycleLR: give total_steps, or epochs and steps_per_epoch", S.OneCycleLR, opt, {max_lr = 0.1})
    fails("lightning.optim.lr_scheduler.OneCycleLR: option max_lr is required", S.OneCycleLR, opt, {total_steps = 10})
    fails("lightning.optim.lr_scheduler.OneCycleLR: anneal_strategy must be \"cos\" or \"linear\", got \"cosine\"", S.OneCycleLR, opt, {max_lr = 0.1, total_steps = 10, anneal_strategy = "cosine"})
    fails("lightning.optim.lr_scheduler.OneCycleLR: pct_start must be a number in [0, 1], got 1.5", S.OneCycleLR, opt, {max_lr = 0.1, total_steps = 10, pct_start = 1.5})
    fails("lightning.optim.lr_scheduler.OneCycleLR: expected 2 values for max_lr (one per parameter group), got 3", S.OneCycleLR, opt, {max_lr = {1, 2, 3}, total_steps = 10})
  end)

  it("the optimizer must be one of lightning.optim's", function()
    fails("lightning.optim.lr_scheduler.StepLR: argument 1 must be an optimizer (lightning.optim.SGD, Adam, AdamW, ...), got table", S.StepLR, {param_groups = {}}, {step_size = 1})
    fails("lightning.optim.lr_scheduler.ReduceLROnPlateau: argument 1 must be an optimizer", S.ReduceLROnPlateau, nil)
  end)

  it("step takes no argument, except ReduceLROnPlateau's metric", function()
    local s = S.StepLR(sgd(), {step_size = 1})
    fails("lightning.optim.lr_scheduler.StepLR:step: takes no argument, got 0.5 (ReduceLROnPlateau:step(metric) is the one that takes a metric)", s.step, s, 0.5)
  end)

  it("SequentialLR and ChainedScheduler check their schedulers", function()
    local opt, other = sgd(), sgd()
    local a, b = S.LinearLR(opt), S.StepLR(opt, {step_size = 2})
    fails("lightning.optim.lr_scheduler.SequentialLR: expected 1 milestone(s) for 2 schedulers, got 2", S.SequentialLR, opt, {schedulers = {a, b}, milestones = {1, 2}})
    fails("lightning.optim.lr_scheduler.SequentialLR: schedulers[2] belongs to another optimizer than the one given", S.SequentialLR, opt, {schedulers = {a, S.StepLR(other, {step_size = 2})}, milestones = {3}})
    fails("lightning.optim.lr_scheduler.SequentialLR: schedulers[2] must be a scheduler such as LinearLR or CosineAnnealingLR (not ReduceLROnPlateau), got ReduceLROnPlateau", S.SequentialLR, opt, {schedulers = {a, S.ReduceLROnPlateau(opt)}, milestones = {3}})
    fails("lightning.optim.lr_scheduler.SequentialLR: option schedulers is required", S.SequentialLR, opt, {milestones = {}})
    fails("lightning.optim.lr_scheduler.ChainedScheduler: schedulers must be a non-empty list of schedulers, got nil", S.ChainedScheduler)
    fails("lightning.optim.lr_scheduler.ChainedScheduler: schedulers[2] belongs to another optimizer than schedulers[1]", S.ChainedScheduler, {a, S.StepLR(other, {step_size = 2})})
  end)

  it("load_state_dict refuses unknown entries and wrong values", function()
    local s = S.StepLR(sgd(), {step_size = 2})
    fails("lightning.optim.lr_scheduler.StepLR:load_state_dict: unknown entries 'T_max', 'eta_min' (a StepLR keeps _last_lr, _step_count, base_lrs, gamma, last_epoch, step_size)",
      s.load_state_dict, s, S.CosineAnnealingLR(sgd(), {T_max = 3}):state_dict())
    fails("lightning.optim.lr_scheduler.StepLR:load_state_dict: last_epoch must be an integer >= -1, got \"3\"", s.load_state_dict, s, {last_epoch = "3"})
    fails("lightning.optim.lr_scheduler.StepLR:load_state_dict: expected a table (from state_dict()), got nil", s.load_state_dict, s)
    assert.are.equal(0, s.last_epoch)
    local p = S.ReduceLROnPlateau(sgd())
    fails("lightning.optim.lr_scheduler.ReduceLROnPlateau:load_state_dict: unknown entry 'step_size'", p.load_state_dict, p, {step_size = 2})
    fails("lightning.optim.lr_scheduler.ReduceLROnPlateau:load_state_dict: min_lrs has 1 values, the optimizer has 2 parameter groups", p.load_state_dict, p, {min_lrs = {0}})
  end)
end)
