-- bf16-mixed and 16-mixed on a GPU, on the specs' stand-in device: the fronts take mixed precision's
-- channels-last tables on the device as on the host (a 16-bit convolution's output channels-last bf16
-- or fp16, BatchNorm, the fused pool, max pooling and the activations keeping it, the head after
-- Flatten float32), every layer within bf16's precision of the host's float32 one, and the reference
-- model trained so; 16-mixed's loss scaler in the Trainer (skipped steps, the scale in checkpoints).
-- spec/cuda_spec.lua runs the same cases (spec/cuda_mixed_cases.lua) on a GPU, where the CUDA backend's
-- kernels compute them; the stand-in's convolution plays cuDNN's with the host's float32 kernel
-- (csrc/testing/fake_mixed.c). Each case runs in a process of its own.
local F = require "fake_device"

local function case(name, fn)
  if not F.built() then return pending(name .. " (this build has no fake device)") end
  it(name, fn)
end

local function run_case(name, precision)
  return F.on_fake(('require("cuda_mixed_cases").%s(L, %q) print("ok")'):format(name, precision),
    {LIGHTNING_FP32_ONEDNN = "0"})
end

for _, precision in ipairs {"bf16", "fp16"} do
  describe(precision .. " layers on the device", function()
    case("every channels-last layer, forward and backward, within bf16's precision of the host's float32", function()
      assert.equal("ok\n", run_case("layers", precision))
    end)

    case("the reference model follows the host's float32 training and learns; weights stay float32", function()
      assert.equal("ok\n", run_case("reference_training", precision))
    end)
  end)
end

describe("mixed precision on the device", function()
  case("a float32 gradient reaching a 16-bit channels-last layer is converted on the device", function()
    local out = F.on_fake([[
      local B = require "bf16_helpers"
      for _, p in ipairs {{"bf16", "bfloat16"}, {"fp16", "float16"}} do
        local x = B.channels_last(L.randn(2, 4, 6, 6):cuda(), p[2])
        local relu = L.nn.ReLU()
        relu:set_precision(p[1])
        relu:cuda()
        local y = relu:forward(x)
        assert(y:scalar_type() == p[2])
        local g = L.randn(2, 4, 6, 6)
        local gi = relu:backward(x, g:cuda())
        local want = g:clone():cmul(x:cpu():float():gt(0):float())
        B.assert_close(gi:cpu(), want, "grad_input", 0.005)
      end
      -- and a conversion that changes type and layout at once, as the fronts ask
      local t = L.randn(3, 5, 4, 2)
      local cl = t:cuda():permute(1, 3, 4, 2):contiguous():bfloat16():permute(1, 4, 2, 3)
      local back = L.zeros(3, 5, 4, 2):cuda():copy(cl)
      B.assert_close(back:cpu(), t, "copy", 0.005)
      local h = t:cuda():half()
      assert(h:scalar_type() == "float16" and h:device() == "cuda:0")
      B.assert_close(h:float():cpu(), t, "half", 0.001)
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)

  case("a float32 front given a 16-bit activation on the device gets a float32 copy there", function()
    -- (SyncBatchNorm's statistics under mixed precision: the binding's copy was made on the host)
    local out = F.on_fake([[
      local B = require "bf16_helpers"
      for _, ty in ipairs {"bfloat16", "float16"} do
        local bn = L.nn.BatchNorm2d(4):cuda()
        local x = L.randn(2, 4, 3, 3)
        local args = bn:_forward_args("statistics", B.channels_last(x:cuda(), ty))
        args.handle, args.output, args.sums = bn._kernel, bn.output, L.buffer("float64", 9)
        L.core.nn.batchnorm_statistics(args)
        local want = x:sum(1):sum(2):sum(2):view(4)   -- per channel
        for c = 1, 4 do assert(math.abs(args.sums[c] - want[c]) < 0.05, ty .. " " .. c) end
        assert(args.sums[9] == 18)
      end
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)

  case("fp16's range: a convolution whose output passes 65504 writes infinities, as cuDNN's would", function()
    local out = F.on_fake([[
      local conv = L.nn.Conv2d(1, 1, 1, {bias = false})
      conv.weight:fill(300)
      conv:cuda()
      conv:set_precision("fp16")
      local y = conv:forward(L.full({1, 1, 2, 2}, 1000):cuda()):float():cpu()
      assert(y[1][1][1][1] == math.huge, tostring(y))
      conv:set_precision("bf16")   -- bf16 keeps float32's range
      y = conv:forward(L.full({1, 1, 2, 2}, 1000):cuda()):float():cpu()
      assert(math.abs(y[1][1][1][1] - 3e5) < 3e5 / 128, tostring(y))
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.equal("ok\n", out)
  end)

  case("the loss scaler's kernels keep everything on the device (spec/device_amp_case.lua)", function()
    assert.equal("ok\n", F.on_fake('require("device_amp_case")(L) print("ok")'))
  end)

  case("L.cuda.is_fp16_supported says whether the backend has fp16 kernels", function()
    assert.equal("true\n", F.on_fake("print(L.cuda.is_fp16_supported())"))
    assert.matches("false\tthe fake backend has no fp16 kernels",
      F.on_fake("print(L.cuda.is_fp16_supported())", {LIGHTNING_FAKE_WITHOUT = "conv2d.channels_last"}))
  end)
end)

describe("Trainer{precision = \"16-mixed\"} on the device", function()
  -- A conv classifier fitted on the stand-in in 16-mixed; `poison` puts an inf into a gradient at that
  -- global step; returns the script's printed lines.
  local function fit_16_mixed(body, env)
    env = env or {}
    env.LIGHTNING_FP32_ONEDNN = "0"
    return F.on_fake([[
      local S = require "trainer_standins"
      local IO = require "lightning.io.safetensors_checkpoint_io"
      local dir = os.tmpname() .. ".d"
      local function loader()
        local samples = S.band_images(48, 5, {classes = 3, channels = 1, size = 8, band = 2, step = 3, noise = 0.3})
        return L.data.DataLoader(samples, {batch_size = 8})
      end
      local function model_with(poison_at)
        L.manual_seed(4)
        local model = S.conv_classifier{learning_rate = 0.01}
        model.steps_taken = 0
        local step = model.optimizer_step
        function model:optimizer_step(...)
          self.steps_taken = self.steps_taken + 1
          return step(self, ...)
        end
        function model:on_after_backward()
          if self.trainer.global_step + 1 == poison_at then
            local w = self:parameters()[1]
            w.grad:view(-1):narrow(1, 1, 1):fill(math.huge)
          end
        end
        return model
      end
    ]] .. body, env)
  end

  case("computes in fp16 and learns; a step whose gradients overflow is skipped and the scale halves", function()
    local out = fit_16_mixed([[
      local model = model_with(3)
      local seen = {}
      local conv = model.net[1]
      local forward = conv.forward
      function conv:forward(x) local y = forward(self, x) seen[#seen + 1] = y:scalar_type() return y end
      local trainer = L.Trainer(S.quiet(dir, {accelerator = "gpu", precision = "16-mixed", max_epochs = 3}))
      trainer:fit(model, loader())
      local scaler = trainer.precision_plugin.scaler
      print(seen[1], seen[#seen], trainer.global_step, model.steps_taken, scaler:get_scale(),
        scaler:state_dict()._growth_tracker)
      print(model.net[1].weight:device(), model.net[1].weight:scalar_type())
      local losses = trainer.callback_metrics
      print(losses.train_loss < 0.9)
    ]])
    -- 18 steps (3 epochs of 6 batches), the third skipped: 17 taken, the scale halved once, 15 clean after
    assert.equal("float16\tfloat16\t18\t17\t32768.0\t15\ncuda:0\tfloat32\ntrue\n", out)
  end)

  case("the scaler's state goes into the checkpoint and comes back on resume", function()
    local out = fit_16_mixed([[
      local trainer = L.Trainer(S.quiet(dir, {accelerator = "gpu", precision = "16-mixed", max_steps = 4}))
      trainer:fit(model_with(2), loader())
      local path = dir .. "/a.safetensors"
      trainer:save_checkpoint(path)
      local saved = IO.read(path).FP16MixedPrecision
      print(saved.scale, saved._growth_tracker, saved.growth_interval)
      local again = L.Trainer(S.quiet(dir, {accelerator = "gpu", precision = "16-mixed", max_steps = 6}))
      again:fit(model_with(nil), loader(), {ckpt_path = path})
      print(again.precision_plugin.scaler:get_scale(), again.precision_plugin.scaler:state_dict()._growth_tracker)
    ]])
    -- a step skipped at global step 2, two clean ones saved; resumed, two more
    assert.matches("^32768\t2\t2000\nRestored .-: continuing at epoch 1 %(global step 4%)\n32768%.0\t4\n$", out)
  end)

  case("without fp16 kernels the layers compute in float32 and it says so; the scaler still runs", function()
    local out = fit_16_mixed([[
      local trainer = L.Trainer(S.quiet(dir, {accelerator = "gpu", precision = "16-mixed", max_steps = 2}))
      local model = model_with(nil)
      trainer:fit(model, loader())
      print(model.net[1].output:scalar_type(), trainer.precision_plugin.scaler:get_scale())
    ]], {LIGHTNING_FAKE_WITHOUT = "conv2d.channels_last"})
    assert.matches("16%-mixed on cuda:0: the fake backend has no fp16 kernels, so the layers compute in float32", out)
    assert.matches("float32\t65536.0\n$", out)
  end)
end)
