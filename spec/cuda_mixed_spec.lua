-- bf16-mixed on a GPU, on the specs' stand-in device: the fronts take mixed precision's channels-last
-- tables on the device as on the host (a bf16 convolution's output channels-last bf16, BatchNorm, the
-- fused pool, max pooling and the activations keeping it, the head after Flatten float32), every layer
-- within bf16's precision of the host's float32 one, and the reference model trained so.
-- spec/cuda_spec.lua runs the same cases (spec/cuda_bf16_cases.lua) on a GPU, where the CUDA backend's
-- kernels compute them; the stand-in's convolution plays cuDNN's bf16 one with the host's float32 kernel
-- (csrc/testing/fake_mixed.c). Each case runs in a process of its own.
local F = require "fake_device"

local function case(name, fn)
  if not F.built() then return pending(name .. " (this build has no fake device)") end
  it(name, fn)
end

local function run_case(name)
  return F.on_fake(('require("cuda_bf16_cases").%s(L) print("ok")'):format(name), {LIGHTNING_FP32_ONEDNN = "0"})
end

describe("bf16-mixed on the device", function()
  case("every channels-last layer, forward and backward, within bf16's precision of the host's float32", function()
    assert.equal("ok\n", run_case("layers"))
  end)

  case("the reference model follows the host's float32 training and learns; weights stay float32", function()
    assert.equal("ok\n", run_case("reference_training"))
  end)

  case("a float32 gradient reaching a bf16 channels-last layer is converted on the device", function()
    local out = F.on_fake([[
      local B = require "bf16_helpers"
      local x = B.channels_last(L.randn(2, 4, 6, 6):cuda())
      local relu = L.nn.ReLU()
      relu:set_precision("bf16")
      relu:cuda()
      local y = relu:forward(x)
      local g = L.randn(2, 4, 6, 6)
      local gi = relu:backward(x, g:cuda())
      local want = g:clone():cmul(x:cpu():float():gt(0):float())
      B.assert_close(gi:cpu(), want, "grad_input", 0.005)
      -- and a conversion that changes type and layout at once, as the fronts ask
      local t = L.randn(3, 5, 4, 2)
      local cl = t:cuda():permute(1, 3, 4, 2):contiguous():bfloat16():permute(1, 4, 2, 3)
      local back = L.zeros(3, 5, 4, 2):cuda():copy(cl)
      B.assert_close(back:cpu(), t, "copy", 0.005)
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)
end)
