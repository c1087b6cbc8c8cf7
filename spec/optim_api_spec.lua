-- The optimizer API beyond the numbers: parameter groups, learning rates, zero_grad, skipped
-- parameters, the state dict's layout and its flat form, and bad arguments (each a clear error).
local L = require "lightning"
local H = require "helpers"
local cjson = require "cjson"

local function fails(pattern, f, ...)
  local msg = H.error_of(f, ...)
  assert.is_truthy(msg:find(pattern, 1, true), ("error %q does not mention %q"):format(msg, pattern))
end

local function param(...)
  local p = L.ones(...)
  p.grad = L.full({...}, 0.5)
  return p
end

describe("optimizers", function()
  it("fill every group's options from the defaults, and let lr be read and changed per group", function()
    local a, b = param(2), param(3)
    local opt = L.optim.Adam({{params = {a}, lr = 0.1}, {params = {b}}}, {lr = 0.01, weight_decay = 0.5})
    assert.are.equal(0.1, opt.param_groups[1].lr)
    assert.are.equal(0.01, opt.param_groups[2].lr)
    assert.are.equal(0.5, opt.param_groups[1].weight_decay)
    assert.are.same({0.9, 0.999}, opt.param_groups[2].betas)
    assert.are.equal(1e-2, L.optim.AdamW({a}).param_groups[1].weight_decay)
    assert.are.equal(0, L.optim.Adam({a}).param_groups[1].weight_decay)
    opt.param_groups[2].lr = 0
    opt:step()
    H.assert_close(b, {1, 1, 1}, 0)   -- lr 0: unchanged
    assert.is_true(a[1] < 1)
  end)

  it("add_param_group adds a group with the defaults", function()
    local opt = L.optim.SGD({param(2)}, {lr = 0.1, momentum = 0.9})
    opt:add_param_group({params = param(3), lr = 0.5})
    assert.are.equal(2, #opt.param_groups)
    assert.are.equal(0.5, opt.param_groups[2].lr)
    assert.are.equal(0.9, opt.param_groups[2].momentum)
    fails("lightning.optim.SGD:add_param_group: parameter group 3: params[1] appears more than once",
      opt.add_param_group, opt, {params = {opt.param_groups[1].params[1]}})
  end)

  it("zero_grad zeroes every gradient, or removes them with set_to_none", function()
    local a, b = param(2), param(2, 2)
    local opt = L.optim.SGD({a, b}, {lr = 0.1})
    opt:zero_grad()
    H.assert_close(a.grad, {0, 0}, 0)
    H.assert_close(b.grad, {{0, 0}, {0, 0}}, 0)
    opt:zero_grad(true)
    assert.is_nil(a.grad)
    assert.is_nil(b.grad)
    opt:zero_grad()  -- no gradients: nothing to do
  end)

  it("skip parameters without a gradient, which get no state", function()
    local a, b = param(2), L.ones(2)
    local opt = L.optim.Adam({a, b}, {lr = 0.1})
    opt:step()
    H.assert_close(b, {1, 1}, 0)
    local sd = opt:state_dict()
    assert.are.equal(1, sd.state[1].step)
    assert.is_nil(sd.state[2])
    b.grad = L.ones(2)
    opt:step()
    sd = opt:state_dict()
    assert.are.equal(2, sd.state[1].step)
    assert.are.equal(1, sd.state[2].step)
  end)

  it("step returns what the closure returns", function()
    local opt = L.optim.SGD({param(2)}, {lr = 0.1})
    assert.are.equal(42, opt:step(function() return 42 end))
  end)

  it("allocate state once: the same tensors at every step", function()
    local a = param(4)
    local opt = L.optim.Adam({a}, {amsgrad = true})
    opt:step()
    local s = opt.state[a]
    local m, v, vmax = s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq
    for _ = 1, 3 do opt:step() end
    assert.are.equal(m, opt.state[a].exp_avg)
    assert.are.equal(v, opt.state[a].exp_avg_sq)
    assert.are.equal(vmax, opt.state[a].max_exp_avg_sq)
    local sgd = L.optim.SGD({a}, {lr = 0.1, momentum = 0.9})
    sgd:step()
    local buf = sgd.state[a].momentum_buffer
    sgd:step()
    assert.are.equal(buf, sgd.state[a].momentum_buffer)
  end)

  it("step and zero_grad allocate nothing in steady state", function()
    local params = {}
    for i = 1, 10 do
      params[i] = L.randn(100)
      params[i].grad = L.randn(100)
    end
    for _, opt in ipairs{L.optim.Adam(params, {amsgrad = true, weight_decay = 0.1}), L.optim.AdamW(params),
        L.optim.SGD(params, {lr = 0.1, momentum = 0.9})} do
      opt:step()
      opt:step()
      collectgarbage("collect")
      collectgarbage("stop")
      local before = collectgarbage("count")
      for _ = 1, 500 do
        opt:step()
        opt:zero_grad()
      end
      local grown = collectgarbage("count") - before
      collectgarbage("restart")
      assert.is_true(grown < 2, ("%s: %.1f KB allocated in 500 steps"):format(tostring(opt):match("^%w+"), grown))
    end
  end)

  it("turning amsgrad on later starts its maximum at zero", function()
    local a = param(2)
    local opt = L.optim.Adam({a})
    opt:step()
    opt.param_groups[1].amsgrad = true
    opt:step()
    assert.is_true(L.is_tensor(opt.state[a].max_exp_avg_sq))
  end)

  it("update large parameters in parallel with the same result as on one thread", function()
    local n = L.get_num_threads()
    local g = L.randn(100000)
    local results = {}
    for _, threads in ipairs{1, math.max(2, n)} do
      L.set_num_threads(threads)
      for _, make in ipairs{function(p) return L.optim.Adam({p}, {lr = 0.01, amsgrad = true}) end,
                            function(p) return L.optim.SGD({p}, {lr = 0.1, momentum = 0.9, nesterov = true}) end} do
        local p = L.ones(100000)
        p.grad = g
        local opt = make(p)
        for _ = 1, 3 do opt:step() end
        results[#results + 1] = p
      end
    end
    L.set_num_threads(n)
    H.assert_close(results[1], results[3], 0)
    H.assert_close(results[2], results[4], 0)
  end)
end)

describe("optimizer state dicts", function()
  local function trained_adam()
    local a, b, c = param(2), param(3, 4), L.ones(5)
    local opt = L.optim.Adam({{params = {a, b}, lr = 0.1}, {params = {c}, amsgrad = true}})
    opt:step()
    c.grad = L.ones(5)
    opt:step()
    return opt, {a, b, c}
  end

  it("hold the state by 1-based parameter index and each group's options with its parameter indices", function()
    local opt = trained_adam()
    local sd = opt:state_dict()
    assert.are.same({1, 2}, sd.param_groups[1].params)
    assert.are.same({3}, sd.param_groups[2].params)
    assert.are.equal(0.1, sd.param_groups[1].lr)
    assert.are.equal(true, sd.param_groups[2].amsgrad)
    assert.are.equal(2, sd.state[1].step)
    assert.are.equal(1, sd.state[3].step)
    assert.is_true(L.is_tensor(sd.state[2].exp_avg))
    assert.is_true(L.is_tensor(sd.state[3].max_exp_avg_sq))
    assert.is_nil(sd.state[1].max_exp_avg_sq)
    -- the groups are copies: changing them does not change the optimizer
    sd.param_groups[1].lr = 5
    sd.param_groups[1].betas[1] = 0
    assert.are.equal(0.1, opt.param_groups[1].lr)
    assert.are.equal(0.9, opt.param_groups[1].betas[1])
  end)

  it("have a flat form: named tensors and JSON metadata", function()
    local opt = trained_adam()
    local tensors, meta = L.optim.flatten_state_dict(opt:state_dict(), "optimizer.")
    local names = {}
    for name in pairs(tensors) do names[#names + 1] = name end
    table.sort(names)
    assert.are.same({"optimizer.state.1.exp_avg", "optimizer.state.1.exp_avg_sq", "optimizer.state.2.exp_avg",
      "optimizer.state.2.exp_avg_sq", "optimizer.state.3.exp_avg", "optimizer.state.3.exp_avg_sq",
      "optimizer.state.3.max_exp_avg_sq"}, names)
    local json = cjson.encode(meta)
    local back = cjson.decode(json)
    assert.are.equal(2, back.state["1"].step)
    tensors["model.fc.weight"] = L.zeros(1)  -- other entries of a checkpoint are ignored
    local sd = L.optim.unflatten_state_dict(tensors, back, "optimizer.")
    local opt2 = trained_adam()
    opt2:load_state_dict(sd)
    H.assert_close(opt2:state_dict().state[2].exp_avg, opt:state_dict().state[2].exp_avg, 0)
    assert.are.equal(2, opt2.state[opt2.param_groups[1].params[1]].step)
    assert.are.equal(math.type(2), math.type(opt2.state[opt2.param_groups[1].params[1]].step))
  end)

  it("load the learning rates and options of the groups", function()
    local opt = trained_adam()
    opt.param_groups[1].lr = 0.02
    opt.param_groups[1].initial_lr = 0.1
    local opt2 = trained_adam()
    opt2:load_state_dict(opt:state_dict())
    assert.are.equal(0.02, opt2.param_groups[1].lr)
    assert.are.equal(0.1, opt2.param_groups[1].initial_lr)
  end)

  it("refuse what does not match, naming the difference, and change nothing then", function()
    local opt = trained_adam()
    local sd = opt:state_dict()
    local other = L.optim.Adam({param(2), param(3, 4), param(5)})
    fails("lightning.optim.Adam:load_state_dict: the state dict has 2 parameter group(s), the optimizer has 1",
      other.load_state_dict, other, sd)
    local other2 = L.optim.Adam({{params = {param(2)}}, {params = {param(3, 4), param(5)}}})
    fails("parameter group 1: the state dict has 2 parameter(s), the optimizer has 1", other2.load_state_dict, other2, sd)
    local other3 = L.optim.Adam({{params = {param(2), param(4, 3)}}, {params = {param(5)}}})
    fails("lightning.optim.Adam:load_state_dict: state for parameter 2: exp_avg has shape 3x4, expected 4x3 (the parameter's)",
      other3.load_state_dict, other3, sd)
    assert.are.same({}, other3:state_dict().state)
    local sgd = L.optim.SGD({{params = {param(2), param(3, 4)}}, {params = {param(5)}}}, {lr = 0.1})
    fails("lightning.optim.SGD:load_state_dict: parameter group 1: unknown options 'amsgrad', 'betas', 'eps' (known: dampening, lr, maximize, momentum, nesterov, weight_decay)", sgd.load_state_dict, sgd, sd)
    fails("expected a table with state and param_groups", opt.load_state_dict, opt, {})
    fails("expected a table with state and param_groups", opt.load_state_dict, opt, "sd")
    local bad = opt:state_dict()
    bad.state[9] = bad.state[1]
    fails("state key 9 is not a parameter index (1..3)", opt.load_state_dict, opt, bad)
    bad = opt:state_dict()
    bad.state[1].momentum_buffer = L.zeros(2)
    fails("state for parameter 1: unknown entry 'momentum_buffer' (an Adam keeps exp_avg, exp_avg_sq, max_exp_avg_sq, step)",
      opt.load_state_dict, opt, bad)
    bad = opt:state_dict()
    bad.state[1].step = 1.5
    fails("state for parameter 1: step must be a non-negative integer, got 1.5", opt.load_state_dict, opt, bad)
    bad = opt:state_dict()
    bad.state[1].exp_avg = {1, 2}
    fails("state for parameter 1: exp_avg must be a tensor, got table", opt.load_state_dict, opt, bad)
    bad = opt:state_dict()
    bad.param_groups[1].lr = -1
    fails("parameter group 1: lr must be a number >= 0, got -1", opt.load_state_dict, opt, bad)
  end)
end)

describe("optimizer arguments", function()
  local p = param(2)

  it("unknown option names are errors that name the option", function()
    fails("lightning.optim.Adam: unknown option 'lrr' (did you mean 'lr'?) (known: amsgrad, betas, eps, lr, maximize, weight_decay)",
      L.optim.Adam, {p}, {lrr = 0.1})
    fails("lightning.optim.SGD: unknown option 'nesterow'", L.optim.SGD, {p}, {lr = 0.1, nesterow = true})
    fails("lightning.optim.AdamW: unknown option 'foreach'", L.optim.AdamW, {p}, {foreach = false})
    fails("lightning.optim.Adam: parameter group 1: unknown option 'momentum'", L.optim.Adam, {{params = {p}, momentum = 0.9}})
  end)

  it("values out of range or of the wrong type are errors", function()
    fails("lightning.optim.SGD: lr must be a number >= 0, got -0.1", L.optim.SGD, {p}, {lr = -0.1})
    fails("lightning.optim.Adam: lr must be a number >= 0, got -1", L.optim.Adam, {p}, {lr = -1})
    fails("lightning.optim.Adam: lr must be a number >= 0, got \"fast\"", L.optim.Adam, {p}, {lr = "fast"})
    fails("lightning.optim.Adam: lr must be a number >= 0, got nan", L.optim.Adam, {p}, {lr = 0 / 0})
    fails("lightning.optim.SGD: momentum must be a number >= 0, got -0.9", L.optim.SGD, {p}, {lr = 1, momentum = -0.9})
    fails("lightning.optim.SGD: weight_decay must be a number >= 0, got -1", L.optim.SGD, {p}, {lr = 1, weight_decay = -1})
    fails("lightning.optim.SGD: nesterov must be a boolean, got 1", L.optim.SGD, {p}, {lr = 1, momentum = 0.9, nesterov = 1})
    fails("lightning.optim.SGD: nesterov momentum requires a momentum > 0 and zero dampening", L.optim.SGD, {p}, {lr = 1, nesterov = true})
    fails("lightning.optim.Adam: betas must hold two numbers in [0, 1), got 1.5 at position 1", L.optim.Adam, {p}, {betas = {1.5, 0.9}})
    fails("lightning.optim.Adam: betas must be a table of two numbers {beta1, beta2}, got 0.9", L.optim.Adam, {p}, {betas = 0.9})
    fails("lightning.optim.Adam: eps must be a number >= 0, got -1e-08", L.optim.Adam, {p}, {eps = -1e-8})
    fails("lightning.optim.Adam: amsgrad must be a boolean, got \"yes\"", L.optim.Adam, {p}, {amsgrad = "yes"})
    fails("lightning.optim.Adam: parameter group 2: lr must be a number >= 0, got -1", L.optim.Adam, {{params = {p}}, {params = {param(3)}, lr = -1}})
    fails("lightning.optim.SGD: option lr is required (it has no default)", L.optim.SGD, {p})
    fails("lightning.optim.SGD: parameter group 2: option lr is required", L.optim.SGD, {{params = {p}, lr = 1}, {params = {param(3)}}})
    fails("lightning.optim.Adam: expected a table of options, got 0.1", L.optim.Adam, {p}, 0.1)
  end)

  it("params must be a non-empty list of tensors or of groups", function()
    fails("lightning.optim.Adam: params[2] must be a tensor, got \"w\"", L.optim.Adam, {p, "w"})
    fails("lightning.optim.Adam: params[2] must be a tensor, got table", L.optim.Adam, {p, {}})
    fails("lightning.optim.Adam: argument 1 (params) must be a list of tensors or of parameter groups, got tensor", L.optim.Adam, p)
    fails("lightning.optim.Adam: argument 1 (params) must be a list of tensors or of parameter groups, got nil", L.optim.Adam)
    fails("lightning.optim.Adam: got an empty parameter list", L.optim.Adam, {})
    fails("lightning.optim.Adam: params[2] must be a parameter group (a table with params) like params[1], got tensor",
      L.optim.Adam, {{params = {p}}, p})
    fails("lightning.optim.Adam: parameter group 1: params must be a tensor or a list of tensors, got nil", L.optim.Adam, {{lr = 1}})
    fails("lightning.optim.Adam: parameter group 2: params[1] must be a tensor, got 3", L.optim.Adam, {{params = {p}}, {params = {3}}})
    fails("lightning.optim.Adam: parameter group 1: params is empty", L.optim.Adam, {{params = {}}})
    fails("lightning.optim.Adam: params[2] appears more than once", L.optim.Adam, {p, p})
    fails("lightning.optim.Adam: params[1] is not contiguous", L.optim.Adam, {L.ones(2, 3):t()})
  end)

  it("step checks the groups and gradients it is given", function()
    local a = param(2, 3)
    local opt = L.optim.Adam({a})
    opt.param_groups[1].lr = "x"
    fails("lightning.optim.Adam:step: parameter group 1: lr must be a number >= 0, got \"x\"", opt.step, opt)
    opt.param_groups[1].lr = 0.1
    a.grad = L.ones(3, 2)
    fails("lightning.optim.Adam:step: parameter 1: the gradient has shape 3x2, expected 2x3 (the parameter's)", opt.step, opt)
    a.grad = L.ones(3, 2):t()
    fails("lightning.optim.Adam:step: parameter 1: the gradient is not contiguous", opt.step, opt)
    a.grad = 5
    fails("lightning.optim.Adam:step: parameter 1: p.grad must be a tensor or nil, got 5", opt.step, opt)
    local sgd = L.optim.SGD({param(2), a}, {lr = 1, momentum = 0.9})
    a.grad = L.ones(6)
    fails("lightning.optim.SGD:step: parameter 2: the gradient has shape 6, expected 2x3", sgd.step, sgd)
    assert.is_nil(sgd.state[a] and sgd.state[a].momentum_buffer)
    local w = L.optim.AdamW({a})
    fails("lightning.optim.AdamW:step: parameter 1: the gradient has shape 6", w.step, w)
  end)
end)
