-- The cases of CUDA graphs that spec/cuda_graph_spec.lua runs on the stand-in device and
-- spec/cuda_spec.lua on a GPU; each raises an error when it fails.
local M = {}

-- A replay runs the recorded work again, and only it: no Lua runs, and the capture computed nothing.
function M.replay_basics(L)
  local t = L.zeros(3):cuda()
  local scale, calls = 2, 0
  local g = L.cuda.CUDAGraph()
  local r = g:capture(function() calls = calls + 1 t:add(1):mul(scale) return t end)
  assert(r == t and calls == 1)
  assert(t:cpu():sum() == 0, "the capture ran its work")
  scale = 10  -- a Lua value is recorded as it was
  g:replay()
  g:replay()
  assert(calls == 1)
  local v = t:cpu():totable()
  assert(v[1] == 6 and v[3] == 6, v[1])  -- (0 + 1) * 2, then (2 + 1) * 2
  assert(not L.cuda.is_current_stream_capturing())
end

-- The parameters and buffers of a model (its state_dict, in the order of its names) as host tables, and a
-- check that two such lists are equal bit for bit.
local function values_of(model)
  local state, names, values = model:state_dict(), {}, {}
  for name in pairs(state) do names[#names + 1] = name end
  table.sort(names)
  for i, name in ipairs(names) do values[i] = state[name]:cpu():view(-1):totable() end
  return values
end

local function assert_same(a, b, what)
  for i = 1, #a do
    for j = 1, #a[i] do
      assert(a[i][j] == b[i][j], ("%s: tensor %d, value %d: %s %s"):format(what, i, j, a[i][j], b[i][j]))
    end
  end
end

-- A whole training step of the reference model (dropout, BatchNorm, AdamW under OneCycleLR, whose
-- learning rate changes every step) captured once and replayed on new batches gives the eager steps'
-- losses, parameters and optimizer state, bit for bit: a step is one launch. precision: the layers'
-- ("fp32" by default; "bf16": bf16-mixed's channels-last bf16 activations).
function M.graphed_training_step(L, precision)
  local steps = 6
  L.manual_seed(11)
  local xs, ys = {}, {}
  for i = 1, steps do xs[i], ys[i] = L.randn(4, 3, 16, 16):cuda(), L.tensor{1, 7, 3, 10}:cuda() end
  local function train(graphed)
    L.manual_seed(3)
    L.cuda.manual_seed(5)
    local model = L.models.BasicImageClassifier{image_size = 16, dropout_rate = 0.25}:cuda()
    model:set_precision(precision or "fp32")
    local crit = L.nn.CrossEntropyLoss{label_smoothing = 0.1}
    local opt = L.optim.AdamW(model:parameters(), {lr = 1e-3, weight_decay = 0.05})
    local schedule = L.optim.lr_scheduler.OneCycleLR(opt, {max_lr = 0.02, total_steps = steps})
    local x, y = xs[1]:clone(), ys[1]:clone()  -- the graph's inputs: each batch is copied into them
    local function step()
      opt:zero_grad()
      local loss = crit(model(x), y)
      loss:backward()
      opt:step()
      return loss
    end
    local losses, g, loss = {}, nil, nil
    for i = 1, steps do
      x:copy(xs[i])
      y:copy(ys[i])
      if graphed and i > 1 then
        -- the first step ran eagerly (the layers' buffers, Adam's state); no step after it waits
        if not g then
          L.cuda.set_sync_debug_mode("error")
          g = L.cuda.CUDAGraph()
          loss = g:capture(step)
        end
        g:replay()
      else
        loss = step()
      end
      losses[i] = loss:clone()
      schedule:step()
    end
    L.cuda.set_sync_debug_mode("default")
    for i = 1, steps do losses[i] = losses[i]:item() end
    return losses, values_of(model), opt:state_dict()
  end
  local eager, eager_values, eager_state = train(false)
  local graphed, graphed_values, graphed_state = train(true)
  for i = 1, steps do assert(eager[i] == graphed[i], i .. ": " .. eager[i] .. " " .. graphed[i]) end
  assert_same(eager_values, graphed_values, "the training step")
  assert(graphed_state.state[1].step == steps, graphed_state.state[1].step)
  assert(graphed_state.param_groups[1].lr == eager_state.param_groups[1].lr)
  assert(eager[steps] ~= eager[2])
end

-- Each optimizer's step in a graph (Adam, AdamW with amsgrad, SGD with Nesterov momentum; per parameter
-- and over flat parameters, one update) follows a StepLR schedule as the eager steps do, bit for bit.
function M.graphed_optimizers(L)
  local function run(graphed, flatten, Opt, settings)
    L.manual_seed(3)
    local m = L.nn.Sequential(L.nn.Linear(5, 6), L.nn.ReLU(), L.nn.Linear(6, 3)):cuda()
    if flatten then m:flatten_parameters() end
    local opt = Opt(m:parameters(), settings)
    local schedule = L.optim.lr_scheduler.StepLR(opt, {step_size = 2, gamma = 0.5})
    L.manual_seed(4)
    local x, y = L.randn(4, 5):cuda(), L.tensor{1, 3, 2, 3}:cuda()
    local function step()
      opt:zero_grad()
      L.nn.CrossEntropyLoss()(m(x), y):backward()
      opt:step()
    end
    local g
    for i = 1, 6 do
      if graphed and i > 1 then
        if not g then
          g = L.cuda.CUDAGraph()
          g:capture(step)
        end
        g:replay()
      else
        step()
      end
      schedule:step()
    end
    return values_of(m), opt:state_dict()
  end
  local cases = {{"Adam", L.optim.Adam, {lr = 1e-2}},
    {"AdamW", L.optim.AdamW, {lr = 1e-2, weight_decay = 0.1, amsgrad = true}},
    {"SGD", L.optim.SGD, {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 1e-3}}}
  for _, case in ipairs(cases) do
    for _, flat in ipairs {false, true} do
      local what = case[1] .. (flat and ", flat" or "")
      local eager, eager_state = run(false, flat, case[2], case[3])
      local graphed, graphed_state = run(true, flat, case[2], case[3])
      assert_same(eager, graphed, what)
      for i, s in pairs(eager_state.state) do assert(graphed_state.state[i].step == s.step, what) end
    end
  end
  -- the capture chose the update's kernel by the options: a change of them after it is refused
  local p = L.ones(3):cuda()
  p.grad = L.ones(3):cuda()
  local opt = L.optim.Adam({p}, {lr = 0.1, weight_decay = 0})
  opt:step()
  local g = L.cuda.CUDAGraph()
  g:capture(function() opt:step() end)
  g:replay()
  opt.param_groups[1].weight_decay = 0.1
  local ok, err = pcall(g.replay, g)
  assert(not ok and err:find("Adam:step: parameter 1: the options that choose its update's kernel changed after " ..
    "the CUDA graph was captured %(amsgrad false, L2 weight decay false, now amsgrad false, L2 weight decay true%)"),
    err)
end

-- What a graph cannot do is refused, naming it, and the next capture starts afresh.
function M.refusals(L)
  local t = L.ones(2):cuda()
  local p = L.ones(2):cuda()
  p.grad = L.ones(2):cuda()
  local fresh = L.optim.Adam({p}, {lr = 0.1})
  local made = L.optim.Adam({p}, {lr = 0.1})
  made:step()  -- makes Adam's state, from the host
  local adam_args = {param = p, grad = p.grad, exp_avg = made.state[p].exp_avg, exp_avg_sq = made.state[p].exp_avg_sq,
    step = 2, lr = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0}
  local g = L.cuda.CUDAGraph()
  local function refused(fn, pattern)
    local ok, err = pcall(g.capture, g, fn)
    assert(not ok and err:find(pattern), err)
    assert(not L.cuda.is_current_stream_capturing())
    assert(not pcall(g.replay, g), "a failed capture left a graph")
  end
  refused(function() return t:sum():item() end,
    "cannot be captured in a CUDA graph %(it makes the host wait for the GPU%)")
  refused(function() return t:cpu() end, "copying a tensor to the host cannot be captured")
  refused(function() return L.tensor{1, 2}:cuda() end,
    "copying a host tensor to the GPU cannot be captured in a CUDA graph %(a launch would read the host's memory")
  refused(function() L.cuda.synchronize() end, "cuda.synchronize: synchronize cannot be captured")
  refused(function() fresh:step() end,
    "Adam:step: its state is made at its first step, which a CUDA graph cannot capture")
  refused(function() L.core.optim.adam_step(adam_args) end,
    "Adam's update cannot be captured in a CUDA graph %(without step values on the GPU its learning rate and step")
  refused(function() L.cuda.CUDAGraph():capture_begin() end, "being captured already")
  local cumulative, z = L.nn.BatchNorm1d(2, {momentum = false}):cuda(), L.randn(4, 2):cuda()
  cumulative(z)   -- (its count is read once after the move)
  refused(function() cumulative(z) end, "BatchNorm1d: a cumulative moving average %(momentum = false%) divides by " ..
    "the count of batches, which a CUDA graph would record")
  refused(function() error("mine") end, "mine")
  local other = L.cuda.CUDAGraph()
  other:capture(function() t:add(1) end)
  refused(function() other:replay() end, "cannot be launched while another is being captured")
  -- none of that ran: a capture records, the refusals stopped the rest
  assert(t:cpu():sum() == 2)
  other:replay()
  assert(t:cpu():sum() == 4)
  other:reset()
  local ok, err = pcall(other.replay, other)
  assert(not ok and err:find("CUDAGraph:replay: nothing was captured"), err)
  ok, err = pcall(g.capture, g, 42)
  assert(not ok and err:find("expected a function to capture, got 42"), err)
end

return M
