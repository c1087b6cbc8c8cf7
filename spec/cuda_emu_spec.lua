-- The CUDA backend's own kernels, run on the host: spec/cuda_spec.lua on the emulated CUDA device
-- (csrc/testing/cuda_emu/: csrc/cuda/'s sources over an emulated runtime, a block's threads as fibers that
-- meet at barriers and warp shuffles; cuDNN's and cuBLASLt's layers served by the host's). Every kernel
-- the backend launches itself (BatchNorm, pooling, activations in float32, bf16 and fp16, losses,
-- optimizers, the loss scaler, reductions, the tensor arithmetic, dropout, the batch maker, CUDA graphs'
-- capture and replay) is checked against the host's on a machine without a GPU. Not checked here: the
-- GPU's own floating point (fused multiply-adds, its math library), real concurrency between blocks,
-- and cuDNN, cuBLASLt and NCCL, which only a GPU runs (tools/gpu_check/run.sh).
local H = require "helpers"
local F = require "fake_device"

describe("the CUDA backend on the emulated device", function()
  it("passes spec/cuda_spec.lua (NCCL's case aside)", function()
    if not F.emu_built() then return pending("needs the build's testing/cuda_emu.so (a C++ compiler and lua5.4)") end
    local cmd = ("LIGHTNING_CUDA_MODULE=%q LUA_PATH=%q LUA_CPATH=%q busted -o TAP spec/cuda_spec.lua 2>&1")
      :format(F.emu_path, package.path, package.cpath)
    local p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    local passed, failed, skipped = 0, {}, {}
    for line in out:gmatch("[^\n]+") do
      if line:match("^ok %d+ %- # SKIP") then skipped[#skipped + 1] = line
      elseif line:match("^ok %d+") then passed = passed + 1
      elseif line:match("^not ok") then failed[#failed + 1] = line end
    end
    assert(#failed == 0, "failed on the emulated device:\n" .. out)
    assert(#skipped == 1 and skipped[1]:find("no NCCL", 1, true), "skipped:\n" .. table.concat(skipped, "\n") .. "\n" .. out)
    assert(passed >= 30, ("only %d cases passed:\n%s"):format(passed, out))
  end)

  it("says what it is, and has no collectives between processes", function()
    if not F.emu_built() then return pending("needs the build's testing/cuda_emu.so") end
    local out = F.on_emu([[
      print(L.cuda.get_device_properties(0).name)
      print(L.cuda.is_bf16_supported(), L.cuda.is_fp16_supported())
      local ready = L.cuda.comm and L.cuda.comm.ready()
      print(ready)
    ]])
    assert.matches("^emulated CUDA device %(host memory, for tests%)\ntrue\ttrue\n", out)
  end)
end)
