-- Float32 convolutions through oneDNN (issue 18, item 4): on AVX-512 CPUs a float32 Conv2d runs oneDNN's
-- channels-last kernels (L.set_fp32_onednn(false) takes the im2col + OpenBLAS path). Its output is a
-- float32 channels-last tensor, which BatchNorm, the fused BatchNorm-ReLU-pool and max pooling must read
-- as such (their planar kernels walk each channel's planes as contiguous runs: a first version fed them
-- the channels-last output and trained on garbage). Checked here: those layers on a float32
-- channels-last input against its planar copy, the reference model's training step against the im2col
-- path, and the same bits at 1 to 4 threads without deterministic = true.
local L = require "lightning"
local nn = L.nn

local info = L.info().mixed_precision
-- oneDNN's float32 kernels are taken on AVX-512 (where its bf16 ones are) with oneDNN on OpenMP
-- (csrc/core/dnnl/dnnl_common.c)
local runs = info ~= nil and info.bf16_supported and info.runtime == "OpenMP"
local function needs_onednn(name, fn)
  if runs then it(name, fn) else pending(name .. " (no oneDNN or no AVX-512 in this build or on this CPU)") end
end

-- The largest difference relative to the reference's largest magnitude (at least 1: a convolution's
-- bias gradient before a BatchNorm is a cancelling sum near 0).
local function assert_close(got, want, tol, what)
  got, want = got:float():contiguous(), want:float():contiguous()
  local d = (got - want):abs():max() / math.max(want:clone():abs():max(), 1)
  assert(d == d and d <= tol, ("%s: max difference %.3g of the largest value exceeds %.3g"):format(what, d, tol))
end

local function channels_last(x) return x:permute(1, 3, 4, 2):contiguous():permute(1, 4, 2, 3) end
local function planar(x) return L.zeros(x:size()):copy(x) end

local function with_fp32_onednn(on, f)
  local was = L.set_fp32_onednn(on)
  local ok, err = pcall(f)
  L.set_fp32_onednn(was)
  if not ok then error(err, 0) end
end

-- The reference model's activations entering each block's BatchNorm: batch 64, 32 to 256 channels.
local BLOCKS = {{32, 32}, {64, 16}, {128, 8}, {256, 4}}

describe("float32 channels-last inputs", function()
  it("BatchNorm, the fused BatchNorm-ReLU-pool and max pooling read them as their planar copies", function()
    for i, b in ipairs(BLOCKS) do
      L.manual_seed(i)
      local c, size = b[1], b[2]
      local x = L.randn(64, c, size, size) * 2 + 0.5
      local xc, xp = channels_last(x), planar(x)
      assert.equal(1, xc:stride(2))
      local g = L.randn(64, c, size // 2, size // 2)
      local gfull = L.randn(64, c, size, size)
      local cases = {
        {"fused BatchNorm-ReLU-pool", function() local bn = nn.BatchNorm2d(c); return nn.BatchNormReLUMaxPool2d(bn), bn, g end},
        {"BatchNorm2d", function() local bn = nn.BatchNorm2d(c); return bn, bn, gfull end},
        {"MaxPool2d", function() return nn.MaxPool2d(2), nil, g end},
      }
      for _, case in ipairs(cases) do
        local what = ("%s, 64x%dx%dx%d"):format(case[1], c, size, size)
        local m1, bn1, grad = case[2]()
        local m2, bn2 = case[2]()
        local y1, y2 = m1:forward(xc), m2:forward(xp)
        assert_close(y1, y2, 1e-5, what .. " output")
        assert_close(m1:backward(xc, grad), m2:backward(xp, grad), 1e-5, what .. " grad_input")
        if bn1 then
          assert_close(bn1.running_mean, bn2.running_mean, 1e-5, what .. " running_mean")
          assert_close(bn1.running_var, bn2.running_var, 1e-5, what .. " running_var")
          assert_close(bn1.weight.grad, bn2.weight.grad, 1e-5, what .. " weight grad")
          assert_close(bn1.bias.grad, bn2.bias.grad, 1e-5, what .. " bias grad")
        end
      end
    end
  end)
end)

-- One training step of the reference model on a fixed batch: every output the pipeline kept, the
-- gradients, the running statistics, and the eval-mode logits after it.
local function reference_step(fused)
  L.manual_seed(7)
  local model = L.models.BasicImageClassifier{num_classes = 10, image_size = 32, dropout_rate = 0}
  local x, g = L.randn(64, 3, 32, 32), L.randn(64, 10)
  model:train()
  model:zero_grad()
  local values = {logits = model:forward(x, {fused = fused}):clone()}
  for i, step in ipairs(model._active_steps) do values["output " .. i] = step[1].output:float():contiguous() end
  model:backward(x, g)
  for name, p in model:named_parameters() do values[name .. ".grad"] = p.grad:clone() end
  for name, b in model:named_buffers() do values[name] = b:clone() end
  model:eval()
  values.eval_logits = model:forward(x, {fused = fused}):clone()
  return values, model.conv1._kernel:info().implementation
end

describe("float32 convolutions through oneDNN", function()
  needs_onednn("the reference model's training step matches the im2col path within float32 rounding", function()
    for _, fused in ipairs{true, false} do
      local onednn, onednn_impl, im2col, im2col_impl
      with_fp32_onednn(true, function() onednn, onednn_impl = reference_step(fused) end)
      with_fp32_onednn(false, function() im2col, im2col_impl = reference_step(fused) end)
      assert.equal("dnnl", onednn_impl)
      assert.equal("cpu", im2col_impl)
      local names = {}
      for name in pairs(im2col) do names[#names + 1] = name end
      table.sort(names)
      for _, name in ipairs(names) do
        assert_close(onednn[name], im2col[name], 1e-4, ("%s (fused %s)"):format(name, tostring(fused)))
      end
    end
  end)

  needs_onednn("match the im2col path over channel counts 1 to 33, 1x1 to 5x5 kernels, strides 1 and 2", function()
    local sizes = {{5, 6}, {3, 10}, {10, 6}, {10, 12}, {7, 7}, {30, 31}}
    local case = 0
    for cin = 1, 33, 2 do
      for _, k in ipairs{1, 3, 5} do
        for _, stride in ipairs{1, 2} do
          case = case + 1
          local size, cout = sizes[case % #sizes + 1], (cin * 7 + case) % 33 + 1
          local what = ("%d->%d %dx%d stride %d on %dx%d"):format(cin, cout, k, k, stride, size[1], size[2])
          L.manual_seed(case)
          local x = L.randn(3, cin, size[1], size[2])
          local layers, got = {}, {}
          for i, on in ipairs{true, false} do
            with_fp32_onednn(on, function()
              L.manual_seed(case)
              local conv = nn.Conv2d(cin, cout, k, {stride = stride, padding = (k - 1) // 2})
              local y = conv:forward(x)
              local g = L.randn(y:size())
              got[i] = {output = y, grad_input = conv:backward(x, g), grad_weight = conv.weight.grad,
                        grad_bias = conv.bias.grad}
              layers[i] = conv._kernel:info().implementation
            end)
          end
          assert.same({"dnnl", "cpu"}, layers)
          for _, name in ipairs{"output", "grad_input", "grad_weight", "grad_bias"} do
            assert_close(got[1][name], got[2][name], 1e-5, what .. " " .. name)
          end
        end
      end
    end
  end)

  -- Without deterministic = true: float32 keeps the same bits at any thread count without being asked
  -- (oneDNN's forward and input-gradient kernels sum each output in one thread; the weight gradient is
  -- summed by parts of the batch fixed by its size, csrc/core/dnnl/wgrad.c).
  needs_onednn("give the same bits at 1 to 4 threads: output, input, weight and bias gradients", function()
    local cases = {  -- cin, cout, kernel, options, batch, size
      {3, 32, 3, {padding = 1}, 64, 32}, {32, 64, 3, {padding = 1}, 64, 16}, {64, 128, 3, {padding = 1}, 64, 8},
      {128, 256, 3, {padding = 1}, 64, 4}, {7, 13, 3, {stride = 2, padding = 1}, 9, 20}, {64, 32, 1, {}, 2, 24},
      {16, 24, 5, {padding = 2, bias = false}, 33, 12}, {128, 64, 3, {}, 1, 8},
    }
    local saved = L.get_num_threads()
    local ok, err = pcall(function()
      for k, c in ipairs(cases) do
        local first
        for _, threads in ipairs{1, 2, 3, 4} do
          L.set_num_threads(threads)
          L.manual_seed(k)
          local conv = nn.Conv2d(c[1], c[2], c[3], c[4])
          local x = L.randn(c[5], c[1], c[6], c[6])
          local y = conv:forward(x)
          assert.equal("dnnl", conv._kernel:info().implementation)
          local values = {output = y:contiguous(), grad_input = conv:backward(x, L.randn(y:size())):contiguous(),
                          grad_weight = conv.weight.grad:clone(), grad_bias = conv.bias and conv.bias.grad:clone()}
          if first then
            for name, v in pairs(first) do
              local differ = v:ne(values[name]):sum()
              assert(differ == 0, ("case %d (%d->%d, %dx%d kernel, batch %d): %s: %d elements differ at %d threads from 1")
                :format(k, c[1], c[2], c[3], c[3], c[5], name, differ, threads))
            end
          else
            first = values
          end
        end
      end
    end)
    L.set_num_threads(saved)
    if not ok then error(err, 0) end
  end)

  -- The input's gradient of a convolution with no output channel is zero on both paths, also when the
  -- layer's gradient buffer held a previous pass's values (the channels-last path once left them there).
  it("give a zero input gradient when the weight has no output channel, on both paths", function()
    for _, on in ipairs({true, false}) do
      with_fp32_onednn(on, function()
        L.manual_seed(3)
        local conv, x = nn.Conv2d(4, 8, 3, {padding = 1}), L.randn(2, 4, 6, 6)
        conv:forward(x)
        conv:backward(x, L.randn(2, 8, 6, 6))
        assert.is_true(conv.grad_input:clone():abs():max() > 0)
        conv.weight, conv.bias = L.empty(0, 4, 3, 3), L.empty(0)
        conv.weight.grad, conv.bias.grad = L.empty(0, 4, 3, 3), L.empty(0)
        local y = conv:forward(x)
        assert.same({2, 0, 6, 6}, y:size())
        local gi = conv:backward(x, L.empty(2, 0, 6, 6))
        assert.same({2, 4, 6, 6}, gi:size())
        assert.equal(0, gi:clone():abs():max(), ("fp32 oneDNN %s"):format(on))
      end)
    end
  end)

  it("can be turned off and on (L.set_fp32_onednn returns the previous setting)", function()
    local was = L.set_fp32_onednn(false)
    assert.is_boolean(was)
    local conv = nn.Conv2d(4, 8, 3)
    conv:forward(L.randn(2, 4, 6, 6))
    assert.equal("cpu", conv._kernel:info().implementation)
    assert.is_false(L.set_fp32_onednn(was))
    assert.matches("boolean expected", select(2, pcall(L.set_fp32_onednn, 1)))
  end)
end)
