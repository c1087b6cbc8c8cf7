-- Mixed precision (bf16): the tensor element types, every bf16 layer against PyTorch's fixtures (or
-- the float32 layer) within bf16's precision, forward and backward, the network, the Trainer's
-- bf16-mixed, determinism, and the emulated and float32 fallbacks.
local L = require "lightning"
local H = require "helpers"
local nn = L.nn

local function T(f) return L.tensor(f.data):view(f.shape) end
local function fixtures(name) return dofile("spec/fixtures/nn/" .. name .. ".lua") end

local B = require "bf16_helpers"
local info = L.info().mixed_precision
local needs_bf16, channels_last_bf16, assert_bf16_close = B.needs_bf16(it, pending), B.channels_last, B.assert_close

describe("bfloat16 tensors", function()
  it("round to nearest even, keep NaN, infinities and signed zeros", function()
    local x = L.tensor{1 + 2 ^ -8, 1 + 3 * 2 ^ -8, 1 / 3, -2.5, 0 / 0, math.huge, -math.huge, -0.0, 3e38, 1e-40}
    local b = x:bfloat16()
    assert.equal("bfloat16", b:scalar_type())
    local back = b:float()
    assert.equal("float32", back:scalar_type())
    assert.equal(1, back[1])                   -- the tie goes to the even neighbour
    assert.equal(1.015625, back[2])
    assert.equal(0.333984375, back[3])
    assert.equal(-2.5, back[4])
    assert.is_true(back[5] ~= back[5])
    assert.equal(math.huge, back[6])
    assert.equal(-math.huge, back[7])
    assert.equal("-0.0", tostring(back[8]))
    assert.is_true(math.abs(back[9] - 3e38) / 3e38 < 2 ^ -8)
    assert.is_true(back[10] > 0 and back[10] < 2e-40)  -- a subnormal stays one
  end)

  it("print as bfloat16 and take views, keeping their type", function()
    local b = L.tensor{{1, 2, 3}, {4, 5, 6}}:bfloat16()
    assert.matches("%[bfloat16 Tensor of size 2x3%]", tostring(b))
    assert.equal("bfloat16", b:t():contiguous():scalar_type())
    assert.same({6, 4}, {b:narrow(2, 2, 2):t():contiguous():float():view(4):totable()[4], b:select(1, 2):float()[1]})
    assert.equal(3, b:size(2))
    local x = L.randn(2, 3)
    assert.equal(x, x:float())   -- already float32: itself
  end)

  it("are refused by float32 functions with a message that says what to do", function()
    local b = L.randn(2, 3):bfloat16()
    for name, f in pairs{add = function() return b + 1 end, sum = function() return b:sum() end,
                         mm = function() return L.mm(b, b:t()) end, fill = function() return b:fill(1) end,
                         index = function() return b[1] end, clone = function() return b:clone() end} do
      assert.matches("is a bfloat16 tensor %(an activation of a mixed%-precision layer%): call :float%(%) first",
        H.error_of(f), nil, name)
    end
    assert.matches("bfloat16 tensor", H.error_of(L.save_safetensors, os.tmpname(), {x = b}))
  end)

  it("convert through copy into a float32 tensor of their shape", function()
    local x = L.randn(3, 4)
    local y = L.zeros(3, 4):copy(x:bfloat16())
    H.assert_close(y, x, 2 ^ -8)
    assert.matches("cannot convert a 3x4 tensor into a 4x3 one", H.error_of(function() L.zeros(4, 3):copy(x:bfloat16()) end))
  end)
end)

describe("bf16 layers", function()
  needs_bf16("convolutions match PyTorch within bf16's precision (every fixture case)", function()
    for name, c in pairs(fixtures("conv2d")) do
      local layer = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size,
        {stride = c.stride, padding = c.padding, bias = c.bias ~= false})
      layer.weight:copy(T(c.weight))
      if layer.bias then layer.bias:copy(T(c.bias)) end
      layer:set_precision("bf16")
      layer:zero_grad()
      local x = T(c.input)
      local y = layer:forward(x)
      assert.equal("bfloat16", y:scalar_type())
      assert.equal("dnnl", layer._kernel:info().implementation)
      assert_bf16_close(y, T(c.output), name .. " output")
      local gi = layer:backward(x, T(c.grad_output))
      assert.equal("float32", gi:scalar_type())   -- like its input
      assert_bf16_close(gi, T(c.grad_input), name .. " grad_input")
      assert_bf16_close(layer.weight.grad, T(c.grad_weight), name .. " grad_weight")
      if layer.bias then assert_bf16_close(layer.bias.grad, T(c.grad_bias), name .. " grad_bias") end
    end
  end)

  needs_bf16("linear layers of 128 rows or more compute in bf16 (oneDNN), float32 in and out, as PyTorch", function()
    -- the fixture's rows repeated up to 128 (the batch from which bf16 pays): the outputs and input
    -- gradients repeat, the parameter gradients (sums over rows) scale by the repetitions
    local function tall(t, reps)
      local x = T(t)
      local out = L.zeros(x:size(1) * reps, x:size(2))
      for r = 0, reps - 1 do out:narrow(1, r * x:size(1) + 1, x:size(1)):copy(x) end
      return out
    end
    for name, c in pairs(fixtures("linear")) do
      if #c.input.shape == 2 then
        local reps = math.ceil(128 / c.input.shape[1])
        local layer = nn.Linear(c.weight.shape[2], c.weight.shape[1], {bias = c.bias ~= nil and c.bias ~= false})
        layer.weight:copy(T(c.weight))
        if layer.bias then layer.bias:copy(T(c.bias)) end
        layer:set_precision("bf16")
        layer:zero_grad()
        local x = tall(c.input, reps)
        local y = layer:forward(x)
        assert.equal("float32", y:scalar_type())
        assert.equal("dnnl", layer._kernel:info().implementation)
        assert_bf16_close(y, tall(c.output, reps), name .. " output")
        assert_bf16_close(layer:backward(x, tall(c.grad_output, reps)), tall(c.grad_input, reps), name .. " grad_input")
        assert_bf16_close(layer.weight.grad, T(c.grad_weight) * reps, name .. " grad_weight")
        if layer.bias then assert_bf16_close(layer.bias.grad, T(c.grad_bias) * reps, name .. " grad_bias") end
      end
    end
    local small = nn.Linear(8, 4)   -- fewer rows: float32
    small:set_precision("bf16")
    small:forward(L.randn(16, 8))
    assert.equal("cpu", small._kernel:info().implementation)
  end)

  needs_bf16("a convolution takes a bf16 channels-last input and gives its gradient in that type and layout", function()
    local c = fixtures("conv2d").basic
    local layer = nn.Conv2d(3, 4, 3, {padding = 1})
    layer.weight:copy(T(c.weight))
    layer.bias:copy(T(c.bias))
    layer:set_precision("bf16")
    local x = channels_last_bf16(T(c.input))
    assert_bf16_close(layer:forward(x), T(c.output), "output")
    local gi = layer:backward(x, channels_last_bf16(T(c.grad_output)))
    assert.equal("bfloat16", gi:scalar_type())
    assert.same(x:stride(), gi:stride())
    assert_bf16_close(gi, T(c.grad_input), "grad_input", 0.03)
  end)

  needs_bf16("BatchNorm2d on channels-last bf16 matches PyTorch (training and eval, running statistics)", function()
    for name, c in pairs(fixtures("batchnorm")) do
      if c.input.shape[4] and c.input.shape[1] * c.input.shape[3] * c.input.shape[4] > 1 then
        local C = c.input.shape[2]
        local layer = nn.BatchNorm2d(C, {affine = c.weight ~= nil, momentum = c.momentum, eps = c.eps,
          track_running_stats = c.before_running_mean ~= nil})
        for pname, p in layer:named_parameters() do if c[pname] then p:copy(T(c[pname])) end end
        if c.before_running_mean then
          layer.running_mean:copy(T(c.before_running_mean))
          layer.running_var:copy(T(c.before_running_var))
          layer.num_batches_tracked[1] = c.warmup_steps
        end
        layer:train(c.training)
        layer:set_precision("bf16")
        layer:zero_grad()
        local x = channels_last_bf16(T(c.input))
        local y = layer:forward(x)
        assert.equal("bfloat16", y:scalar_type())
        assert_bf16_close(y, T(c.output), name .. " output")
        if c.after_running_mean then
          assert_bf16_close(layer.running_mean, T(c.after_running_mean), name .. " running_mean")
          assert_bf16_close(layer.running_var, T(c.after_running_var), name .. " running_var")
        end
        local gi = layer:backward(x, channels_last_bf16(T(c.grad_output)))
        assert_bf16_close(gi, T(c.grad_input), name .. " grad_input", 0.03)
        if layer.weight then assert_bf16_close(layer.weight.grad, T(c.grad_weight), name .. " grad_weight") end
        if layer.bias then assert_bf16_close(layer.bias.grad, T(c.grad_bias), name .. " grad_bias") end
      end
    end
  end)

  needs_bf16("max pooling on channels-last bf16 matches PyTorch, windows with padding and overlap included", function()
    for name, c in pairs(fixtures("pool")) do
      if c.kind == "max" then
        local layer = nn.MaxPool2d(c.kernel_size, c.stride and {stride = c.stride, padding = c.padding} or nil)
        layer:set_precision("bf16")
        local x = channels_last_bf16(T(c.input))
        local y = layer:forward(x)
        assert.equal("bfloat16", y:scalar_type())
        assert_bf16_close(y, T(c.output), name .. " output", 0.005)  -- a maximum: one rounding
        local gi = layer:backward(x, T(c.grad_output))
        assert_bf16_close(gi, T(c.grad_input), name .. " grad_input", 0.01)
      end
    end
  end)

  needs_bf16("the fused BatchNorm+ReLU+pool on channels-last bf16 matches the float32 layer", function()
    L.manual_seed(3)
    for _, size in ipairs{{4, 16, 8, 8}, {2, 32, 7, 9}} do
      -- the float32 layer sees the same (bf16) values, so that both pick the same winner in each window
      local x = L.randn(table.unpack(size)):mul(2):add(0.5):bfloat16():float()
      local g = L.randn(size[1], size[2], size[3] // 2, size[4] // 2)
      local ref = nn.BatchNormReLUMaxPool2d(nn.BatchNorm2d(size[2]))
      ref.bn.weight:uniform(0.5, 1.5)
      ref.bn.bias:uniform(-0.5, 0.5)
      local mixed = nn.BatchNormReLUMaxPool2d(nn.BatchNorm2d(size[2]))
      mixed.bn:load_state_dict(ref.bn:state_dict())   -- (the fused layer uses its BatchNorm's parameters)
      mixed:set_precision("bf16")
      local want = ref:forward(x):clone()
      local want_gi = ref:backward(x, g):clone()
      local xb = channels_last_bf16(x)
      assert_bf16_close(mixed:forward(xb), want, "output")
      assert_bf16_close(mixed:backward(xb, g), want_gi, "grad_input", 0.05)
      assert_bf16_close(mixed.bn.weight.grad, ref.bn.weight.grad, "grad_weight", 0.03)
      assert_bf16_close(mixed.bn.bias.grad, ref.bn.bias.grad, "grad_bias", 0.03)
    end
  end)

  needs_bf16("ReLU on bf16 matches PyTorch, and a float32 input stays float32 (the network's head)", function()
    local relu = fixtures("activation").relu
    local layer = nn.ReLU()
    layer:set_precision("bf16")
    local x = T(relu.input)
    assert.equal("float32", layer:forward(x):scalar_type())
    local xb = x:bfloat16()
    local y = layer:forward(xb)
    assert.equal("bfloat16", y:scalar_type())
    assert_bf16_close(y, T(relu.output), "relu output", 0.005)
    local gi = layer:backward(xb, T(relu.grad_output))
    assert.equal("bfloat16", gi:scalar_type())
    assert_bf16_close(gi, T(relu.grad_input), "relu grad_input", 0.005)
  end)

  needs_bf16("Flatten turns a channels-last bf16 activation into float32 rows in PyTorch's (C, H, W) order", function()
    local x = L.randn(2, 3, 4, 5)
    local f = nn.Flatten()
    local y = f:forward(channels_last_bf16(x))
    assert.equal("float32", y:scalar_type())
    H.assert_close(y, x:bfloat16():float():view(2, 60), 0)
  end)
end)

describe("a bf16 network", function()
  needs_bf16("BasicImageClassifier: every convolution in bf16, logits and gradients close to float32's", function()
    L.manual_seed(0)
    local model = L.models.BasicImageClassifier{dropout_rate = 0}
    local x = L.randn(8, 3, 32, 32)
    local target = L.tensor{1, 2, 3, 4, 5, 6, 7, 8}
    local crit = nn.CrossEntropyLoss()
    local function step()
      model:zero_grad()
      local logits = model:forward(x)
      crit:forward(logits, target)
      model:backward(x, crit:backward(logits, target))
      return logits:clone()
    end
    model:eval()
    local ref = model:forward(x):clone()
    model:set_precision("bf16")
    assert_bf16_close(model:forward(x), ref, "eval logits", 0.05)
    for _, m in ipairs(model:modules()) do
      if class_name == nil and tostring(m):match("^Conv2d") then
        assert.equal("dnnl", m._kernel:info().implementation)
      end
    end
    model:train()
    model:set_precision("fp32")
    local l32 = step()
    local g32 = {}
    for i, p in ipairs(model:parameters()) do g32[i] = p.grad:clone() end
    model:set_precision("bf16")
    assert_bf16_close(step(), l32, "training logits", 0.05)
    -- gradients through 7 bf16 layers: PyTorch's autocast differs from its float32 as much (an
    -- untrained network at batch 8); the convolutions' weight gradients keep their direction
    for i, p in ipairs(model:parameters()) do
      if p:dim() == 4 then
        local a, b = p.grad:view(-1), g32[i]:view(-1)
        local cos = (a * b):sum() / math.sqrt((a * a):sum() * (b * b):sum())
        assert(cos > 0.95, ("parameter %d: cosine %.3f between bf16 and float32 gradients"):format(i, cos))
      end
    end
  end)

  needs_bf16("learns: the loss of a bf16 network falls on a batch it sees again and again", function()
    L.manual_seed(1)
    local model = L.models.BasicImageClassifier{dropout_rate = 0}
    model:set_precision("bf16")
    local x = L.randn(16, 3, 32, 32)
    local target = L.tensor{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6}
    local crit = nn.CrossEntropyLoss()
    local opt = L.optim.Adam(model:parameters(), {lr = 1e-3})
    local first, last
    for i = 1, 15 do
      opt:zero_grad()
      local logits = model:forward(x)
      local loss = crit:forward(logits, target)
      model:backward(x, crit:backward(logits, target))
      opt:step()
      first, last = first or loss, loss
    end
    assert(last < first * 0.5, ("loss %.3f -> %.3f"):format(first, last))
  end)

  needs_bf16("with deterministic on, gradients are the same bits at 1, 2, 3 and 4 threads", function()
    -- batches of one part and of several uneven ones (70 images in parts of 18, 18, 17 and 17; 333
    -- rows in parts of 167 and 166)
    local function grads(threads, images, rows)
      L.set_num_threads(threads)
      L.manual_seed(5)
      local conv, fc = nn.Conv2d(16, 32, 3, {padding = 1}), nn.Linear(300, 64)
      conv:set_precision("bf16")
      fc:set_precision("bf16")
      local x, g = L.randn(images, 16, 12, 12), L.randn(images, 32, 12, 12)
      local y = conv:forward(x):float():clone()
      local gi = conv:backward(x, g):clone()
      local fx, fg = L.randn(rows, 300), L.randn(rows, 64)   -- bf16 from 128 rows on
      local fy = fc:forward(fx):clone()
      local fgi = fc:backward(fx, fg):clone()
      return y, gi, conv.weight.grad:clone(), conv.bias.grad:clone(), fy, fgi, fc.weight.grad:clone(), fc.bias.grad:clone()
    end
    local threads = L.get_num_threads()
    L.set_deterministic(true)
    local ok, err = pcall(function()
      for _, size in ipairs{{8, 160}, {70, 333}} do
        local ref = {grads(1, size[1], size[2])}
        for _, n in ipairs{2, 3, 4} do
          local got = {grads(n, size[1], size[2])}
          for k = 1, 8 do
            H.assert_close(got[k], ref[k], 0, ("result %d of batch %d/%d at %d threads"):format(k, size[1], size[2], n))
          end
        end
      end
    end)
    L.set_deterministic(false)
    L.set_num_threads(threads)
    assert(ok, err)
  end)

  -- Issue 24: the weight gradient's primitives were made for two threads whatever the count, so one
  -- thread (train.lua's --nproc) started a second behind the user's back and ran 10-25x slower on a
  -- busy machine. In a fresh process, so that no earlier test has started OpenMP's threads. Only where
  -- oneDNN runs on OpenMP (Debian's): PyPI's oneDNN 3 (SYCL) keeps a thread pool of its own.
  local needs_omp_dnnl = needs_bf16
  if info and info.runtime ~= "OpenMP" then
    needs_omp_dnnl = function(name) pending(name .. " (oneDNN's " .. info.runtime .. " runtime has threads of its own)") end
  end
  needs_omp_dnnl("with deterministic on at one thread, a training step starts no other thread", function()
    local X = require "script_helpers"
    local script = os.tmpname()
    H.write_file(script, [[
      local L = require "lightning"
      L.set_num_threads(1)
      L.set_deterministic(true)
      local function threads()
        for line in io.lines("/proc/self/status") do
          local n = line:match("^Threads:%s+(%d+)")
          if n then return tonumber(n) end
        end
      end
      local conv, fc = L.nn.Conv2d(16, 32, 3, {padding = 1}), L.nn.Linear(300, 64)
      conv:set_precision("bf16")
      fc:set_precision("bf16")
      local before = threads()
      local x, fx = L.randn(70, 16, 12, 12), L.randn(333, 300)
      conv:backward(x, L.randn(conv:forward(x):size()))
      fc:backward(fx, L.randn(fc:forward(fx):size()))
      io.write(before, " ", threads())
    ]])
    local code, out = X.run(script)
    os.remove(script)
    if not io.open("/proc/self/status") then return end   -- (not Linux: nothing to count with)
    assert.equal(0, code, out)
    local before, after = out:match("(%d+) (%d+)$")
    assert(before, out)
    assert.equal(before, after, "threads before and after the step")
  end)
end)

describe("Trainer{precision = \"bf16-mixed\"}", function()
  needs_bf16("trains in bf16, keeps float32 weights and checkpoints, and leaves the model in float32", function()
    local S = require "trainer_standins"
    local dir = H.tmpdir()
    L.manual_seed(2)
    local model = L.models.BasicImageClassifier{num_classes = 3, image_size = 16, dropout_rate = 0}
    local batches = {}
    for i = 1, 4 do batches[i] = {input = L.randn(8, 3, 16, 16), target = L.tensor{1, 2, 3, 1, 2, 3, 1, 2}} end
    local seen
    local probe = L.Callback()
    function probe:on_train_batch_end(trainer, module)
      seen = seen or module.conv2._kernel:info()
    end
    local trainer = L.Trainer{max_epochs = 2, precision = "bf16-mixed", logger = false, enable_progress_bar = false,
      default_root_dir = dir, callbacks = {probe}, enable_model_summary = false}
    trainer:fit(model, S.Loader(batches), S.Loader(batches))
    assert.same({"dnnl", "bf16"}, {seen.implementation, seen.precision})
    assert.equal("fp32", model.conv2._kernel:info().requested)
    trainer:save_checkpoint(dir .. "/ck.safetensors")
    local tensors = L.load_safetensors(dir .. "/ck.safetensors")
    for name, t in pairs(tensors) do assert.equal("float32", t:scalar_type(), name) end
    H.rmdir(dir)
  end)
end)

describe("a build with oneDNN", function()
  local run = info ~= nil and it or function(name) pending(name .. " (this build has no oneDNN)") end
  -- Debian 12's 2.6 or another prefix's 3.x (cmake -DLIGHTNING_DNNL_ROOT): the library loaded, not the headers
  run("names the oneDNN it loaded in info(): version, threading runtime, instruction set", function()
    assert.matches("^[23]%.%d+%.%d+$", info.version)
    assert.is_truthy(({OpenMP = 1, TBB = 1, SYCL = 1, sequential = 1, threadpool = 1, other = 1})[info.runtime], info.runtime)
    if info.version:match("^2%.") then assert.equal("OpenMP", info.runtime) end  -- (PyPI's 3.x: SYCL)
    assert.is_string(info.isa)
    assert.equal("oneDNN", info.backend)
  end)
end)

describe("a build without oneDNN", function()
  local run = info == nil and it or function(name) pending(name .. " (this build has oneDNN)") end
  run("runs bf16-mixed in float32 and says why", function()
    local layers, why = L.precision.BF16MixedPrecision.limitation()
    assert.equal("fp32", layers)
    assert.matches("this build of lightning has no oneDNN %(libdnnl%-dev%), so it computes in float32", why)
    local conv = nn.Conv2d(4, 4, 3)
    conv:set_precision("bf16")
    assert.equal("float32", conv:forward(L.randn(1, 4, 5, 5)):scalar_type())
    assert.equal("cpu", conv._kernel:info().implementation)
  end)
end)

describe("without bf16 instructions", function()
  local function child(env, code)
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write('package.path = "lua/?.lua;lua/?/init.lua;" .. package.path\n',
      'package.cpath = "', package.cpath:gsub("\\", "\\\\"):gsub('"', '\\"'), '"\n', code)
    f:close()
    local p = io.popen(env .. " lua5.4 " .. script .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(script)
    return out
  end

  local probe = [[
local L = require "lightning"
local P = L.precision.BF16MixedPrecision
local layers, why = P.limitation()
print("layers", layers, why)
L.manual_seed(0)
local conv = L.nn.Conv2d(16, 8, 3, {padding = 1})
local x = L.randn(2, 16, 6, 6)
local ref = conv:forward(x):clone()
conv:set_precision(layers)
local y = conv:forward(x):float()
print("impl", conv._kernel:info().implementation, "diff", (y - ref):abs():max() / ref:abs():max())
]]

  needs_bf16("an AVX-512 CPU without avx512_bf16: oneDNN emulates bf16, correct, and the plugin says so", function()
    local out = child("ONEDNN_MAX_CPU_ISA=AVX512_CORE", probe)
    assert.matches("layers\tbf16\tbf16%-mixed: this CPU has no bf16 instructions %(oneDNN runs avx512_core%)", out)
    local impl, diff = out:match("impl\t(%S+)\tdiff\t(%S+)")
    assert.equal("dnnl", impl)
    assert(tonumber(diff) < 0.02, out)
  end)

  needs_bf16("a CPU without AVX-512: bf16-mixed computes in float32 and says why", function()
    local out = child("ONEDNN_MAX_CPU_ISA=AVX2", probe)
    assert.matches("layers\tfp32\tbf16%-mixed: oneDNN has no bf16 kernels for this CPU %(it runs avx2", out)
    assert.matches("impl\tcpu\tdiff\t0%.?0?\n", out)
  end)
end)
