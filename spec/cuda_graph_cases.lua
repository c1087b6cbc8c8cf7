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

-- A training step of the reference model (dropout included) captured and replayed on new batches gives
-- the eager steps' losses and parameters, bit for bit. The optimizer steps after each replay, outside
-- the graph.
function M.graphed_training_step(L)
  local function batches(n)
    L.manual_seed(11)
    local xs, ys = {}, {}
    for i = 1, n do xs[i], ys[i] = L.randn(4, 3, 16, 16), L.tensor{1, 7, 3, 10} end
    return xs, ys
  end
  local function setup()
    L.manual_seed(3)
    L.cuda.manual_seed(5)
    local model = L.models.BasicImageClassifier{image_size = 16, dropout_rate = 0.25}:cuda()
    return model, L.nn.CrossEntropyLoss{label_smoothing = 0.1}
  end
  local steps = 5
  local xs, ys = batches(steps)

  local model, crit = setup()
  local opt = L.optim.SGD(model:parameters(), {lr = 0.05, momentum = 0.9, nesterov = true})
  local eager = {}
  for i = 1, steps do
    opt:zero_grad()
    local loss = crit(model(xs[i]:cuda()), ys[i]:cuda())
    loss:backward()
    opt:step()
    eager[i] = loss:item()
  end
  local eager_params = {}
  for i, p in ipairs(model:parameters()) do eager_params[i] = p:cpu():view(-1):totable() end

  model, crit = setup()
  opt = L.optim.SGD(model:parameters(), {lr = 0.05, momentum = 0.9, nesterov = true})
  local static_x, static_y = xs[1]:cuda(), ys[1]:cuda()
  local function step()
    opt:zero_grad()
    local loss = crit(model(static_x), static_y)
    loss:backward()
    return loss
  end
  local graphed = {}
  graphed[1] = step():item()  -- a warm-up step outside the capture: the layers make their buffers
  opt:step()
  L.cuda.set_sync_debug_mode("error")
  local g = L.cuda.CUDAGraph()
  local loss = g:capture(step)
  for i = 2, steps do
    static_x:copy(xs[i]:cuda())
    static_y:copy(ys[i]:cuda())
    g:replay()
    opt:step()  -- outside the graph: its learning rate and step count are the host's
    graphed[i] = loss:clone()
  end
  L.cuda.set_sync_debug_mode("default")
  for i = 2, steps do graphed[i] = graphed[i]:item() end
  for i = 1, steps do assert(eager[i] == graphed[i], i .. ": " .. eager[i] .. " " .. graphed[i]) end
  for i, p in ipairs(model:parameters()) do
    local v = p:cpu():view(-1):totable()
    for j = 1, #v do assert(v[j] == eager_params[i][j], i .. " " .. j) end
  end
  assert(eager[steps] ~= eager[2])
end

-- What a graph cannot do is refused, naming it, and the next capture starts afresh.
function M.refusals(L)
  local t = L.ones(2):cuda()
  local p = L.ones(2):cuda()
  p.grad = L.ones(2):cuda()
  local opt = L.optim.Adam({p}, {lr = 0.1})
  opt:step()  -- makes Adam's state, from the host
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
  refused(function() opt:step() end, "Adam's update cannot be captured in a CUDA graph %(its learning rate and step")
  refused(function() L.cuda.CUDAGraph():capture_begin() end, "being captured already")
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
