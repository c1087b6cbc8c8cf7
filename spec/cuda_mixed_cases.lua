-- The cases of bf16-mixed and 16-mixed on a GPU that spec/cuda_mixed_spec.lua runs on the stand-in
-- device and spec/cuda_spec.lua on a GPU; each raises an error when it fails. The reference is the
-- host's float32 layer on the same (bf16- or fp16-representable) input, within bf16's precision
-- (bf16_helpers.lua), which also covers fp16's finer steps. `precision` is "bf16" or "fp16".
local B = require "bf16_helpers"

local M = {}

-- A precision's activation type, as scalar_type() names it.
local TYPE = {bf16 = "bfloat16", fp16 = "float16"}

-- x rounded to the precision's 16-bit type and back to float32.
local function representable(x, precision)
  return (precision == "fp16" and x:half() or x:bfloat16()):float()
end

-- The name the implementation of operation `op` reports on this device: the CUDA backend's, the
-- stand-in's, or on the emulated device (csrc/testing/cuda_emu/) the host's convolution playing cuDNN's.
local function device_impl(L, op)
  local name = L.cuda.get_device_properties(0).name
  if name:find("^fake device") then return "fake" end
  if name:find("^emulated CUDA device") and op:find("^conv2d") then return "emu-host" end
  return "cuda"
end

local function is_channels_last(t)
  local s, st = t:size(), t:stride()
  return st[2] == 1 and st[4] == s[2] and st[3] == s[2] * s[4]
end

-- One layer on the device at `precision` against the same layer on the host at float32, forward and
-- backward: `input` "float32" (a network's first layer: the batch, NCHW; "strided": a view with gaps) or
-- "half" (a channels-last activation of the 16-bit type, as such a layer hands the next one).
local function compare(L, precision, name, make, size, input, tol)
  tol = tol or {}
  local ref = make()
  local dev = make()
  -- (the fused pool runs over a BatchNorm2d that is not its child: that one owns the parameters)
  local ref_owner, dev_owner = ref.bn or ref, dev.bn or dev
  dev_owner:load_state_dict(ref_owner:state_dict())
  dev:cuda()
  dev_owner:cuda()
  dev:set_precision(precision)
  -- 16-bit values, so that both sides see the same input (and pick the same maxima)
  local x = representable(L.randn(table.unpack(size)):mul(2):add(0.25), precision)
  local xd = x:cuda()
  if input == "half" then
    xd = B.channels_last(xd, TYPE[precision])
  elseif input == "strided" then
    local wide = L.zeros(size[1], size[2], size[3], size[4] + 3)
    wide:narrow(4, 2, size[4]):copy(x)
    xd = wide:cuda():narrow(4, 2, size[4])
  end
  local want = ref:forward(x):clone()
  local y = dev:forward(xd)
  assert(y:device() == "cuda:0", name .. ": output on " .. y:device())
  assert(y:scalar_type() == TYPE[precision] and is_channels_last(y), name .. ": output not channels-last " .. precision)
  B.assert_close(y:cpu(), want, name .. " output", tol.output)
  local kernel = dev._kernel or (dev.bn and dev.bn._kernel)
  if kernel then
    local info = kernel:info()
    assert(info.implementation == device_impl(L, info.op) and info.precision == precision,
      ("%s: ran %s at %s"):format(name, info.implementation, info.precision))
  end
  local g = L.randn(table.unpack(want:size()))
  ref_owner:zero_grad()
  dev_owner:zero_grad()
  local want_gi = ref:backward(x, g):clone()
  local gi = dev:backward(xd, g:cuda())
  local in_type = input == "half" and TYPE[precision] or "float32"
  assert(gi:device() == "cuda:0" and gi:scalar_type() == in_type, name .. ": grad_input " .. gi:scalar_type())
  B.assert_close(gi:cpu(), want_gi, name .. " grad_input", tol.grad_input or 0.05)
  local want_p, got_p = ref_owner:parameters(), dev_owner:parameters()
  for i = 1, #want_p do
    assert(got_p[i].grad:scalar_type() == "float32", name .. ": a parameter's gradient is not float32")
    B.assert_close(got_p[i].grad:cpu(), want_p[i].grad, ("%s parameter %d's gradient"):format(name, i),
      tol.params or 0.03)
  end
  local want_state = ref_owner:state_dict()
  for key, t in pairs(dev_owner:state_dict()) do  -- BatchNorm's running statistics, float32
    if key:find("running") then B.assert_close(t:cpu(), want_state[key], name .. " " .. key, 0.01) end
  end
end

-- Every layer of mixed precision's channels-last tables, on the fixture-like shapes and odd ones: a
-- first layer with one channel (Fashion-MNIST's), batch 1, 7x7 and odd sizes, a strided input, no bias,
-- stride 2, BatchNorm in training and evaluation, the fused pool, overlapping max-pool windows.
function M.layers(L, precision)
  precision = precision or "bf16"
  local nn = L.nn
  local function compare_at(...) return compare(L, precision, ...) end
  L.manual_seed(7)
  compare_at("conv 3->8 (float32 batch)", function() return nn.Conv2d(3, 8, 3, {padding = 1}) end, {2, 3, 9, 9},
    "float32")
  compare_at("conv 1->4, batch 1, 7x7 (one-channel images)", function() return nn.Conv2d(1, 4, 3, {padding = 1}) end,
    {1, 1, 7, 7}, "float32")
  compare_at("conv on a strided float32 view", function() return nn.Conv2d(3, 4, 3) end, {2, 3, 6, 5}, "strided")
  compare_at("conv 8->16 stride 2, no bias (16-bit activation)",
    function() return nn.Conv2d(8, 16, 3, {stride = 2, padding = 1, bias = false}) end, {3, 8, 8, 8}, "half")
  compare_at("conv 16->8 1x1", function() return nn.Conv2d(16, 8, 1) end, {2, 16, 5, 7}, "half")
  local function bn(options)
    return function()
      local layer = nn.BatchNorm2d(8, options)
      if layer.weight then
        layer.weight:uniform(0.5, 1.5)
        layer.bias:uniform(-0.5, 0.5)
      end
      return layer
    end
  end
  compare_at("BatchNorm2d training", bn(), {4, 8, 6, 6}, "half")
  compare_at("BatchNorm2d without affine parameters", bn{affine = false}, {2, 8, 5, 3}, "half")
  compare_at("BatchNorm2d evaluation", function()
    local layer = bn()()
    layer:forward(L.randn(4, 8, 6, 6):mul(3):add(1))  -- running statistics away from (0, 1)
    return layer:eval()
  end, {2, 8, 6, 6}, "half")
  for _, size in ipairs {{4, 8, 8, 8}, {2, 8, 7, 9}} do
    compare_at(("BatchNorm+ReLU+pool %dx%d"):format(size[3], size[4]), function()
      return nn.BatchNormReLUMaxPool2d(bn()())
    end, size, "half", {output = 0.03, grad_input = 0.08, params = 0.05})
  end
  compare_at("max pooling 2x2", function() return nn.MaxPool2d(2) end, {2, 8, 6, 6}, "half",
    {output = 0.005, grad_input = 0.01})
  compare_at("max pooling 3x3, stride 2, padding 1", function() return nn.MaxPool2d(3, {stride = 2, padding = 1}) end,
    {2, 8, 7, 7}, "half", {output = 0.005, grad_input = 0.01})
  compare_at("ReLU", function() return nn.ReLU() end, {2, 8, 4, 4}, "half", {output = 0.005, grad_input = 0.005})
  compare_at("LeakyReLU", function() return nn.LeakyReLU(0.1) end, {2, 8, 4, 4}, "half")
  compare_at("GELU", function() return nn.GELU() end, {2, 8, 4, 4}, "half")
end

-- The reference model trained on the device at `precision` follows the host's float32 run within bf16's
-- precision, and learns; its weights, their gradients and the optimizer's state stay float32.
function M.reference_training(L, precision)
  precision = precision or "bf16"
  local steps = 8
  L.manual_seed(1)
  local x, y = L.randn(8, 3, 16, 16), L.tensor{1, 2, 3, 4, 5, 6, 7, 8}
  local function train(device, precision)
    L.manual_seed(2)
    local model = L.models.BasicImageClassifier{image_size = 16, dropout_rate = 0}:to(device)
    model:set_precision(precision)
    local opt = L.optim.AdamW(model:parameters(), {lr = 2e-3})
    local crit = L.nn.CrossEntropyLoss()
    local xs, ys, losses = x:to(device), y:to(device), {}
    for i = 1, steps do
      opt:zero_grad()
      local loss = crit(model(xs), ys)
      loss:backward()
      opt:step()
      losses[i] = loss:item()
    end
    return losses, model
  end
  local want = train("cpu", "fp32")
  local got, model = train("cuda", precision)
  for i = 1, steps do
    assert(math.abs(got[i] - want[i]) <= 0.05 * math.abs(want[i]) + 0.02,
      ("step %d: loss %.5f on the device in %s, %.5f on the host in float32"):format(i, got[i], precision, want[i]))
  end
  assert(got[steps] < got[1] * 0.8, ("it did not learn: %.4f then %.4f"):format(got[1], got[steps]))
  local convs = 0
  for _, m in ipairs(model:modules()) do
    if m._kernel and m._kernel:info().op:find("^conv2d") then
      convs = convs + 1
      local info = m._kernel:info()
      assert(info.precision == precision and info.implementation == device_impl(L, info.op), info.implementation)
      assert(m.output:scalar_type() == TYPE[precision])
    end
  end
  assert(convs > 0)
  for _, p in ipairs(model:parameters()) do
    assert(p:device() == "cuda:0" and p:scalar_type() == "float32" and p.grad:scalar_type() == "float32")
  end
end

return M
