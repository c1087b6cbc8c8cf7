-- The NVIDIA GPU: tensors and modules that move there and back, every layer of the reference model on
-- the GPU against the CPU (forward and backward, on the fixture shapes and odd ones: batch 1, 7x7, one
-- channel, a non-contiguous input), 20 training steps of the reference model against the CPU's, mixed
-- devices refused, checkpoints that go from one device to the other. Without a GPU each test reports
-- pending with the reason (spec/accelerators_spec.lua covers that machine); they run for real where
-- L.cuda.is_available() is true. On a machine without a GPU they also run on the emulated CUDA device
-- (LIGHTNING_CUDA_MODULE=build.luarocks/testing/cuda_emu.so: the backend's own kernels on the host,
-- csrc/testing/cuda_emu/; spec/cuda_emu_spec.lua), where what goes through cuDNN, cuBLASLt and NCCL is
-- the host's or missing.
-- Tolerances: the GPU's convolutions and matrix products use TF32 by default, as PyTorch's (10 bits
-- of mantissa in the products, float32 sums), so Linear and Conv2d compare within 1e-2; the other
-- layers compute in float32 and compare within 1e-4 (other summation orders); ReLU and max-pooling are
-- exact.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local checkpoint = require "lightning.trainer.checkpoint"
local SafetensorsCheckpointIO = require "lightning.io.safetensors_checkpoint_io"

local nn = L.nn
local AVAILABLE, REASON = L.cuda.is_available()

-- true (and the test reports pending) where there is no GPU.
local function no_gpu()
  if not AVAILABLE then pending("needs a GPU: " .. tostring(REASON)) end
  return not AVAILABLE
end

-- Whether the device is the emulated one (its kernels are the backend's, run on the host).
local function emulated()
  return AVAILABLE and L.cuda.get_device_properties(0).name:find("^emulated CUDA device") ~= nil
end

local TF32, FP32, EXACT = 1e-2, 1e-4, 0

-- Runs f with float32 computed as float32 on both sides: no TF32 on the GPU, the host's own im2col
-- convolution (the one the stand-in device runs) rather than oneDNN's. Training trajectories are compared
-- so: Adam's steps amplify any rounding difference of small gradients.
local function exact_float32(f)
  local tf32 = L.cuda.allow_tf32()
  local onednn = L.set_fp32_onednn(false)
  L.cuda.allow_tf32(false)
  local ok, err = pcall(f)
  L.cuda.allow_tf32(tf32)
  L.set_fp32_onednn(onednn)
  if not ok then error(err, 0) end
end

local function on_host(t) return t:device() == "cpu" and t or t:cpu() end

describe("L.cuda on a GPU", function()
  it("describes the device", function()
    if no_gpu() then return end
    assert.is_true(L.cuda.device_count() >= 1)
    local p = L.cuda.get_device_properties(0)
    assert.is_string(p.name)
    assert.is_true(p.total_memory > 0 and p.free_memory > 0 and p.free_memory <= p.total_memory)
    assert.is_true(p.major >= 7 and p.multi_processor_count > 0)
    for _, key in ipairs {"driver_version", "runtime_version", "cudnn_version", "cublaslt_version"} do
      assert.matches("^%d+%.%d+", p[key], nil, key)
    end
    assert.matches(", %d+%.%d GiB, compute capability %d+%.%d+, driver %d+%.%d+, cuDNN %d+%.%d+%.%d+, cuBLASLt ",
      L.cuda.summary(0))
    assert.equal(L.cuda.summary(0), L.cuda.describe()[1])
    assert.equal(L.cuda.device_count(), #L.cuda.describe())
    L.cuda.manual_seed(1)
    L.cuda.synchronize()
    local stats = L.cuda.memory_stats()
    assert.is_true(stats.in_use >= 0 and stats.reserved >= stats.in_use and stats.peak_in_use >= stats.in_use)
    L.cuda.empty_cache()
  end)
end)

describe("tensors on the GPU", function()
  it("go there and back: t:cuda(), t:cpu(), t:to()", function()
    if no_gpu() then return end
    local t = L.randn(3, 4)
    local g = t:cuda()
    assert.equal("cuda:0", g:device())
    assert.are_not.equal(t, g)
    assert.equal(t, t:to("cpu"))   -- self when nothing moves
    assert.equal(g, g:to("cuda"))
    assert.equal(g, g:to("cuda:0"))
    H.assert_close(g:cpu(), t, EXACT, "round trip")
    assert.equal("cpu", g:cpu():device())
    -- a non-contiguous view goes over as its values
    H.assert_close(t:t():cuda():cpu(), t:t(), EXACT, "transposed round trip")
  end)

  it("refuse mixed devices, never copying silently", function()
    if no_gpu() then return end
    -- a layer on the host given a GPU input, and the reverse
    local linear = nn.Linear(3, 2)
    assert.matches("expected cuda:0, got cpu", H.error_of(linear.forward, linear, L.randn(1, 3):cuda()))
    linear:cuda()
    assert.matches("expected cpu, got cuda:0", H.error_of(linear.forward, linear, L.randn(1, 3)))
    local conv = nn.Conv2d(1, 1, 3)
    assert.matches("expected cuda:0, got cpu", H.error_of(conv.forward, conv, L.randn(1, 1, 5, 5):cuda()))
  end)
end)

-- A layer made twice from one seed: on the host and on the GPU.
local function twins(make)
  L.manual_seed(11)
  local host = make()
  L.manual_seed(11)
  local gpu = make():to("cuda")
  return host, gpu
end

-- The forward and backward passes of a layer on both devices, compared: outputs, input gradients and
-- parameter gradients (and BatchNorm's running statistics). x: the host input; xg: the same values on
-- the GPU (a non-contiguous view when x is one).
local function compare_layer(what, make, x, xg, tol)
  local host, gpu = twins(make)
  local y, yg = host:forward(x), gpu:forward(xg)
  assert.equal("cuda:0", yg:device(), what)
  H.assert_close(on_host(yg), y, tol, what .. " forward")
  L.manual_seed(12)
  local gy = L.randn(y:size())
  local gx, gxg = host:backward(x, gy), gpu:backward(xg, gy:cuda())
  H.assert_close(on_host(gxg), gx, tol, what .. " grad_input")
  local hp, gp = host:parameters(), gpu:parameters()
  for i = 1, #hp do H.assert_close(on_host(gp[i].grad), hp[i].grad, tol, what .. " grad of parameter " .. i) end
  local hb, gb = host:buffers(), gpu:buffers()
  for i = 1, #hb do H.assert_close(on_host(gb[i]), hb[i], tol, what .. " buffer " .. i) end
end

-- Inputs of a shape: the host tensor and the GPU's, contiguous or a transposed (non-contiguous) view.
local function inputs(size, transposed)
  L.manual_seed(13)
  local base = L.randn(table.unpack(size))
  if not transposed then return base, base:cuda() end
  local n = #size
  return base:transpose(n - 1, n), base:cuda():transpose(n - 1, n)
end

-- The shapes each image layer meets: the fixture's (a batch of CIFAR-10 images) and odd ones.
local IMAGE_SHAPES = {
  {"fixture 8x3x32x32", {8, 3, 32, 32}},
  {"batch 1", {1, 3, 32, 32}},
  {"7x7", {4, 3, 7, 7}},
  {"one channel", {4, 1, 16, 16}, 1},
  {"non-contiguous", {4, 3, 12, 12}, nil, true},
}

describe("layers on the GPU against the CPU", function()
  for _, case in ipairs(IMAGE_SHAPES) do
    local name, size, channels, transposed = case[1], case[2], case[3] or 3, case[4]
    it("Conv2d, BatchNorm2d, ReLU and MaxPool2d: " .. name, function()
      if no_gpu() then return end
      local x, xg = inputs(size, transposed)
      compare_layer("Conv2d", function() return nn.Conv2d(channels, 8, 3, {padding = 1}) end, x, xg, TF32)
      compare_layer("Conv2d stride 2", function() return nn.Conv2d(channels, 4, 3, {stride = 2}) end, x, xg, TF32)
      compare_layer("BatchNorm2d", function() return nn.BatchNorm2d(channels) end, x, xg, FP32)
      compare_layer("ReLU", function() return nn.ReLU() end, x, xg, EXACT)
      compare_layer("MaxPool2d", function() return nn.MaxPool2d(2) end, x, xg, EXACT)
      -- BatchNorm in evaluation: the running statistics
      compare_layer("BatchNorm2d eval", function() return nn.BatchNorm2d(channels):eval() end, x, xg, FP32)
    end)
  end

  for _, case in ipairs {{"fixture 64x512", {64, 512}}, {"batch 1", {1, 512}}, {"non-contiguous", {16, 24}, true}} do
    it("Linear, BatchNorm1d and CrossEntropyLoss: " .. case[1], function()
      if no_gpu() then return end
      local x, xg = inputs(case[2], case[3])
      local features = case[2][2]
      if case[3] then features = case[2][1] end
      compare_layer("Linear", function() return nn.Linear(features, 10) end, x, xg, TF32)
      -- (a batch of one has no batch statistics: BatchNorm1d evaluates, as PyTorch requires)
      compare_layer("BatchNorm1d", function()
        local bn = nn.BatchNorm1d(features)
        return x:size(1) == 1 and bn:eval() or bn
      end, x, xg, FP32)
      -- the loss on logits of the batch, with and without label smoothing
      local logits, logits_g = inputs({x:size(1), 10})
      local classes = {}
      for i = 1, x:size(1) do classes[i] = (i * 7) % 10 + 1 end
      local target = L.tensor(classes)
      for _, smoothing in ipairs {0, 0.1} do
        local host, gpu = twins(function() return nn.CrossEntropyLoss{label_smoothing = smoothing} end)
        local loss, loss_g = host:forward(logits, target), gpu:forward(logits_g, target:cuda())
        assert.is_true(math.abs(loss - loss_g) <= FP32 * math.max(1, math.abs(loss)), ("loss %g on the GPU, %g on the " ..
          "CPU (label_smoothing %g)"):format(loss_g, loss, smoothing))
        H.assert_close(on_host(gpu:backward(logits_g, target:cuda())), host:backward(logits, target), FP32,
          "CrossEntropyLoss grad_input")
      end
    end)
  end
end)

describe("tensor arithmetic on the GPU against the CPU", function()
  it("operators, comparisons, unary functions, in-place methods, reductions and the confusion matrix", function()
    if no_gpu() then return end
    -- spec/device_math_cases.lua (shared with spec/device_spec.lua, where the stand-in is exact): the
    -- GPU's expf, tanhf, powf and its sums' order differ from the host's by a few float32 ulps
    assert.is_true(require("device_math_cases").check(L, FP32) > 50)
  end)

  it("refuses operands on the host, naming them", function()
    if no_gpu() then return end
    local g, c = L.ones(2, 3):cuda(), L.ones(2, 3)
    assert.matches("expected cuda:0, got cpu for other", H.error_of(function() return g + c end))
    assert.matches("expected cpu, got cuda:0 for other", H.error_of(function() return c:mul(g) end))
    assert.matches("expected cuda:0, got cpu for target",
      H.error_of(function() L.metrics.ConfusionMatrix(3):update(g, L.ones(2)) end))
  end)

  it("on a large tensor: one block per result, grid-stride loops past the grid, int64 indices", function()
    if no_gpu() then return end
    L.manual_seed(4)
    local x = L.randn(3, 700001)
    local g = x:cuda()
    H.assert_close((g * 2 + 1):sigmoid():cpu(), (x * 2 + 1):sigmoid(), FP32, "elementwise")
    H.assert_close(g:sum(2):cpu(), x:sum(2), FP32, "sum along 2")
    H.assert_close(g:t():contiguous():max(1):cpu(), x:t():contiguous():max(1), EXACT, "max along 1")
    assert.equal(x:argmax(), g:argmax())
    assert.is_true(math.abs(g:mean() - x:mean()) <= FP32)
  end)
end)

describe("modules on the GPU", function()
  it("move in place: parameters, gradients, buffers and scratch keep their identity; an optimizer made before " ..
    "still steps them", function()
    if no_gpu() then return end
    local function make()
      -- (no bias before BatchNorm: its gradient is zero but for rounding, which Adam would scale up to a
      -- step of the learning rate in a direction that depends on the summation order)
      return nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1, bias = false}), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    end
    L.manual_seed(21)
    local host = make()
    L.manual_seed(21)
    local gpu = make()
    local opt_host = L.optim.Adam(host:parameters(), {lr = 0.01})
    local opt_gpu = L.optim.Adam(gpu:parameters(), {lr = 0.01})   -- made before the move
    local params, grads = gpu:parameters(), {}
    for i, p in ipairs(params) do grads[i] = p.grad end
    local bn, conv = gpu:children()[2], gpu:children()[1]
    local running_mean = bn.running_mean
    assert.equal(gpu, gpu:to("cuda"))
    assert.equal("cuda:0", gpu:device())
    for i, p in ipairs(gpu:parameters()) do
      assert.equal(params[i], p)
      assert.equal(grads[i], p.grad)
      assert.equal("cuda:0", p:device())
      assert.equal("cuda:0", p.grad:device())
    end
    assert.equal(running_mean, bn.running_mean)
    assert.equal("cuda:0", bn.running_mean:device())
    assert.equal("cuda:0", bn.running_var:device())
    for key, value in pairs(conv) do
      if L.is_tensor(value) then assert.equal("cuda:0", value:device(), "Conv2d's " .. key) end
    end
    L.manual_seed(22)
    local x, target = L.randn(6, 3, 8, 8), L.tensor{1, 2, 3, 1, 2, 3}
    local sides = {{host, opt_host, x, target, nn.CrossEntropyLoss()},
      {gpu, opt_gpu, x:cuda(), target:cuda(), nn.CrossEntropyLoss():cuda()}}
    exact_float32(function()
      for _ = 1, 3 do
        for _, side in ipairs(sides) do
          local net, opt = side[1], side[2]
          opt:zero_grad()
          local loss = side[5](net(side[3]), side[4])
          loss:backward()
          opt:step()
        end
      end
    end)
    for i, p in ipairs(gpu:parameters()) do
      H.assert_close(p:cpu(), host:parameters()[i], TF32, "parameter " .. i .. " after 3 Adam steps")
    end
    local state = opt_gpu.state[params[1]]
    assert.equal("cuda:0", state.exp_avg:device())
    -- and back
    assert.equal(gpu, gpu:cpu())
    assert.equal(params[1], gpu:parameters()[1])
    assert.equal("cpu", gpu:device())
  end)

  it("move flattened parameters with their flat buffers, still views of them", function()
    if no_gpu() then return end
    local net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    local flat_params, flat_grads = net:flatten_parameters()
    net:to("cuda")
    assert.equal("cuda:0", flat_params:device())
    assert.equal("cuda:0", flat_grads:device())
    flat_params:fill(0.5)
    H.assert_close(net:parameters()[1]:cpu(), L.full({3, 4}, 0.5), EXACT, "a parameter seen through the flat buffer")
    assert.equal(flat_params, (net:flat_parameters()))
  end)

  it("load host values into a model on the GPU, which stays there", function()
    if no_gpu() then return end
    local net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    local sd = {}
    for name, t in pairs(net:state_dict()) do sd[name] = (t:clone() + 1) end
    net:cuda()
    net:load_state_dict(sd)
    for name, t in pairs(net:state_dict()) do
      assert.equal("cuda:0", t:device(), name)
      H.assert_close(t:cpu(), sd[name], EXACT, name)
    end
  end)

  it("copy a batch's tensors with the default transfer_batch_to_device, nested tables too", function()
    if no_gpu() then return end
    local module = S.Regression{}(2)
    local batch = {input = L.randn(2, 2), nested = {ids = L.randn(2)}, name = "b"}
    local moved = module:transfer_batch_to_device(batch, "cuda:0", 0)
    assert.are_not.equal(batch, moved)
    assert.equal("cuda:0", moved.input:device())
    assert.equal("cuda:0", moved.nested.ids:device())
    assert.equal("b", moved.name)
    assert.equal("cpu", batch.input:device())
  end)
end)

-- A small classifier of 1x8x8 images into 3 classes with the layers of the reference model but no
-- metric objects: Conv2d, BatchNorm2d, ReLU, MaxPool2d, Linear, cross-entropy, Adam.
local SmallClassifier = L.class("SmallClassifier", L.LightningModule)
function SmallClassifier:__init()
  L.LightningModule.__init(self)
  self:add_module("net", nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(),
    nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)))
  self.criterion = nn.CrossEntropyLoss()
end
function SmallClassifier:training_step(batch) return self.criterion(self.net(batch.input), batch.target) end
function SmallClassifier:configure_optimizers() return L.optim.Adam(self:parameters(), {lr = 0.01}) end

local SMALL_IMAGES = {classes = 3, channels = 1, size = 8, step = 2, band = 3, noise = 0.5}

-- The reference model (examples/train.lua's) on CIFAR-10-shaped images with nothing random in its steps
-- (dropout 0: the GPU draws other masks), trained for `steps` steps on one accelerator; returns the
-- losses of the steps and the model.
local function train_reference(accelerator, steps)
  local samples = S.band_images(8 * steps, 31, {classes = 4, channels = 3, size = 32, step = 8, band = 8, noise = 0.3})
  L.manual_seed(32)
  local model = L.models.BasicImageClassifier{num_classes = 4, in_channels = 3, image_size = 32, dropout_rate = 0}
  local losses = {}
  model.on_train_batch_end = function(_, outputs) losses[#losses + 1] = outputs.loss:item() end
  local dir = H.tmpdir()
  local trainer = L.Trainer(S.quiet(dir, {accelerator = accelerator, max_steps = steps, num_sanity_val_steps = 0,
    deterministic = true}))
  trainer:fit(model, L.data.DataLoader(samples, {batch_size = 8}))
  H.rmdir(dir)
  return losses, model
end

describe("collectives on the GPU (NCCL, a group of one process)", function()
  it("reduce and broadcast in place, queued on the GPU, ordered before the work after join()", function()
    if no_gpu() then return end
    if emulated() then return pending("the emulated CUDA device has no NCCL") end
    local comm = L.cuda.comm
    local ready, why = comm.ready()
    assert(ready, "NCCL: " .. tostring(why))
    if not comm.joined() then comm.init(comm.unique_id(), 0, 1) end
    local rank, world = comm.joined()
    assert.equal(0, rank)
    assert.equal(1, world)
    L.manual_seed(4)
    local x = L.randn(1 << 20)
    for _, op in ipairs {"sum", "mean", "max", "min"} do
      local g = x:cuda()
      assert.equal(g, comm.all_reduce(g, op))
      comm.join()
      H.assert_close(g:cpu(), x, EXACT, op)   -- one process: its own values
    end
    -- queued: the work after join() sees the reduced values
    local g = x:cuda()
    comm.all_reduce(g, "sum")
    comm.join()
    g:mul(2)
    H.assert_close(g:cpu(), x * 2, EXACT, "ordered")
    -- a bucket: a narrow of a flat buffer; the rest is untouched
    local flat = L.ones(1000):cuda()
    comm.all_reduce(flat:narrow(1, 11, 100), "mean")
    comm.broadcast(flat, 0)
    comm.join()
    L.cuda.synchronize()
    assert.is_true(comm.query())
    assert.equal(1000, flat:sum())
    assert.matches("takes a contiguous tensor", H.error_of(comm.all_reduce, L.ones(4, 3):cuda():t(), "sum"))
    assert.matches("expected a tensor on a GPU, got cpu", H.error_of(comm.all_reduce, L.ones(4), "sum"))
    assert.matches("root must be a rank from 0 to 0, got 1", H.error_of(comm.broadcast, flat, 1))
    assert.matches("already joined a group", H.error_of(comm.init, comm.unique_id(), 0, 1))
  end)
end)

describe("losses on the GPU", function()
  it("stay there: an invalid target makes the loss NaN and is reported, with the CPU's message, at the next wait",
    function()
    if no_gpu() then return end
    if L.cuda.get_device_properties(0).name:find("^fake device") then
      return pending("the stand-in device checks targets when the loss is called: this case is a GPU's")
    end
    local logits, target = L.randn(4, 10):cuda(), L.tensor{1, 11, 3, 4}:cuda()
    for _, Loss in ipairs {nn.CrossEntropyLoss, nn.NLLLoss} do
      local name = Loss == nn.NLLLoss and "nll_loss" or "cross_entropy"
      local loss = Loss()(logits, target)   -- queued: nothing waits
      assert.equal("cuda:0", loss:device())
      local ok, err = pcall(function() return loss:item() end)
      assert.is_false(ok)
      assert.matches(name .. ", queued earlier on the GPU: target 11 at position 2 is not a class index in 1..10", err,
        1, true)
      -- reported once: the next wait goes on, and the loss it left is NaN
      local v = loss:item()
      assert.is_true(v ~= v)
    end
    -- on the host the forward pass itself fails
    assert.has_error(function() nn.CrossEntropyLoss()(logits:cpu(), target:cpu()) end)
  end)

  it("a training step of the reference model waits for nothing (sync debug mode 'error')", function()
    if no_gpu() then return end
    local model = L.models.BasicImageClassifier{image_size = 32}:cuda()
    local crit = nn.CrossEntropyLoss{label_smoothing = 0.1}
    local x, y = L.randn(8, 3, 32, 32):cuda(), L.tensor{1, 2, 3, 4, 5, 6, 7, 8}:cuda()
    local opt = L.optim.Adam(model:parameters(), {lr = 1e-3})
    local function step()
      opt:zero_grad()
      local loss = crit(model(x), y)
      loss:backward()
      opt:step()
      return loss
    end
    step()   -- BatchNorm reads its count of batches once after the move
    L.cuda.set_sync_debug_mode("error")
    local ok, err = pcall(step)
    L.cuda.set_sync_debug_mode("default")
    assert(ok, err)
  end)
end)

describe("clipping on the GPU", function()
  it("keeps the norm there: the host's results, nothing waits (spec/device_clip_case.lua)", function()
    if no_gpu() then return end
    require("device_clip_case")(L)
  end)
end)

describe("the GPU's generator", function()
  it("saves its state and sets it again: dropout draws the same masks (spec/cuda_rng_case.lua)", function()
    if no_gpu() then return end
    require("cuda_rng_case")(L)
  end)
end)

describe("bf16-mixed and 16-mixed on the GPU (spec/cuda_mixed_cases.lua)", function()
  local cases = require "cuda_mixed_cases"
  local supported = {bf16 = "is_bf16_supported", fp16 = "is_fp16_supported"}
  for _, precision in ipairs {"bf16", "fp16"} do
    for _, name in ipairs {"layers", "reference_training"} do
      it(precision .. " " .. name, function()
        if no_gpu() then return end
        local ok, why = L.cuda[supported[precision]]()
        if not ok then return pending(("this GPU computes %s in float32: %s"):format(precision, why)) end
        cases[name](L, precision)
      end)
    end
  end
  it("the loss scaler's kernels keep everything on the GPU (spec/device_amp_case.lua)", function()
    if no_gpu() then return end
    require("device_amp_case")(L)
  end)
end)

describe("CUDA graphs on the GPU", function()
  local cases = require "cuda_graph_cases"
  for _, name in ipairs {"replay_basics", "graphed_training_step", "graphed_optimizers", "refusals"} do
    it(name .. " (spec/cuda_graph_cases.lua)", function()
      if no_gpu() then return end
      cases[name](L)
    end)
  end
  it("graphed_training_step in bf16-mixed (spec/cuda_graph_cases.lua)", function()
    if no_gpu() then return end
    if not L.cuda.is_bf16_supported() then return pending("this GPU computes bf16-mixed in float32") end
    cases.graphed_training_step(L, "bf16")
  end)
end)

describe("training on the GPU", function()
  it("follows the CPU for 20 steps of the reference model", function()
    if no_gpu() then return end
    local cpu_losses, cpu_model, gpu_losses, gpu_model
    exact_float32(function()
      cpu_losses, cpu_model = train_reference("cpu", 20)
      gpu_losses, gpu_model = train_reference("gpu", 20)
    end)
    assert.equal("cuda:0", gpu_model:device())
    assert.equal(20, #gpu_losses)
    for i = 1, 20 do
      assert.is_true(math.abs(gpu_losses[i] - cpu_losses[i]) <= TF32 * math.max(1, cpu_losses[i]),
        ("step %d: loss %.6f on the GPU, %.6f on the CPU"):format(i, gpu_losses[i], cpu_losses[i]))
    end
    -- Adam moves a weight by at most about lr = 1e-3 a step: a quarter of 20 steps' worth apart at most.
    -- A bias before BatchNorm (conv*.bias, fc1.bias, fc2.bias) has a gradient of zero but for rounding,
    -- which Adam scales to whole steps in directions the summation order decides: those biases, and the
    -- running means that follow them, may be 20 steps apart each way (the emulated device showed it).
    local cpu_sd = cpu_model:state_dict()
    for name, t in pairs(gpu_model:state_dict()) do
      local before_bn = name:match("^conv%d%.bias$") or name:match("^fc[12]%.bias$") or name:match("running_mean$")
      H.assert_close(t:cpu(), cpu_sd[name], before_bn and 0.04 or 5e-3, name)
    end
  end)

  it("moves the model before configure_optimizers and the batches to the GPU", function()
    if no_gpu() then return end
    local devices = {}
    local model = SmallClassifier()
    local configure, step = model.configure_optimizers, model.training_step
    function model:configure_optimizers()
      devices.configure = self:device()
      return configure(self)
    end
    function model:training_step(batch, i)
      devices.batch = batch.input:device()
      return step(self, batch, i)
    end
    local dir = H.tmpdir()
    local trainer = L.Trainer(S.quiet(dir, {accelerator = "gpu", max_steps = 2}))
    assert.equal("cuda:0", trainer.strategy:root_device())
    local samples = S.band_images(16, 43, SMALL_IMAGES)
    trainer:fit(model, L.data.DataLoader(samples, {batch_size = 8}))
    H.rmdir(dir)
    assert.same({configure = "cuda:0", batch = "cuda:0"}, devices)
  end)
end)

describe("checkpoints and the GPU", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local TRAIN = S.band_images(32, 41, SMALL_IMAGES)

  local function fit(accelerator, max_steps, ckpt_path)
    L.manual_seed(42)
    local model = SmallClassifier()
    local trainer = L.Trainer(S.quiet(dir, {accelerator = accelerator, max_steps = max_steps,
      enable_checkpointing = true, callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", save_last = true}}}))
    trainer:fit(model, L.data.DataLoader(TRAIN, {batch_size = 8}), nil, {ckpt_path = ckpt_path})
    return model, trainer
  end

  it("written on the GPU hold host float32 and resume on the CPU", function()
    if no_gpu() then return end
    local gpu_model = fit("gpu", 4)
    local path = dir .. "/ckpt/last.safetensors"
    local ckpt = checkpoint.read(path)
    local sd = gpu_model:state_dict()
    for name, t in pairs(ckpt.state_dict) do
      assert.equal("cpu", t:device(), name)
      H.assert_close(t, sd[name]:cpu(), EXACT, name)
    end
    local cpu_model, trainer = fit("cpu", 6, path)
    assert.equal(6, trainer.global_step)
    assert.equal("cpu", cpu_model:device())
    -- and the reverse: a checkpoint of the CPU resumes on the GPU, optimizer state included
    local resumed, gpu_trainer = fit("gpu", 8, dir .. "/ckpt/last.safetensors")
    assert.equal(8, gpu_trainer.global_step)
    assert.equal("cuda:0", resumed:device())
    local opt = gpu_trainer.optimizers[1]
    for _, state in pairs(opt.state) do
      for key, value in pairs(state) do
        if L.is_tensor(value) then assert.equal("cuda:0", value:device(), key) end
      end
    end
  end)

  it("copy GPU tensors to the host for the file, keeping how each is written", function()
    if no_gpu() then return end
    local g = L.randn(3):cuda()
    g.dtype, g.scalar = "I64", true
    local tensors = SafetensorsCheckpointIO.on_host({w = g})
    assert.equal("cpu", tensors.w:device())
    assert.equal("I64", tensors.w.dtype)
    assert.is_true(tensors.w.scalar)
    H.assert_close(tensors.w, g:cpu(), EXACT, "values")
  end)
end)
