-- Data-parallel training on GPUs, a process per GPU, under mpirun: L.distributed sends GPU tensors
-- through the GPUs' own collectives (L.cuda.comm: NCCL), DDPStrategy averages the gradients there. No
-- machine of the project has two GPUs, so these specs run on the stand-in device
-- (csrc/testing/fake_device.c), whose collectives are MPI's over its memory and whose arithmetic is the
-- host's: a job on it trains bit for bit as the same job on the CPUs. NCCL itself is checked with one
-- process on a GPU (spec/cuda_spec.lua). Skipped, with the reason, where mpirun, lightning/dist.so or the
-- stand-in is missing.
local H = require "helpers"
local M = require "mpi_helpers"
local F = require "fake_device"

-- (the stand-in's collectives need this build's MPI: a lightning/dist.so found elsewhere on the path, an
-- installed one, does not make them)
local function this_build_has_mpi()
  return package.searchpath("lightning.dist", package.cpath) == F.build_dir .. "/lightning/dist.so"
end

local why = M.unavailable() or (not F.built() and ("the stand-in device is not built (" .. F.path .. ")")) or
  (not this_build_has_mpi() and "this build has no MPI (lightning/dist.so beside its core): the stand-in device " ..
    "has no collectives between processes")
if why then
  describe("Data-parallel training on GPUs under mpirun", function()
    pending(why)
  end)
  return
end

-- mpirun's -x settings: the stand-in device, and the host's im2col convolution (the stand-in's) for
-- the CPU runs compared with it.
local function env(on_device, more)
  local list = {"LIGHTNING_FP32_ONEDNN=0"}
  if on_device then list[#list + 1] = "LIGHTNING_CUDA_MODULE=" .. F.path end
  for _, v in ipairs(more or {}) do list[#list + 1] = v end
  return list
end

local function fit(accelerator, options, more_env)
  options.accelerator = accelerator
  local job = M.mpirun(2, "fit", options, {env = env(accelerator == "gpu", more_env)})
  return job
end

describe("L.distributed with GPU tensors (stand-in device, 2 processes)", function()
  it("reduces (sum, mean, max, min; a narrow; not blocking), broadcasts and refuses what it cannot, host tensors " ..
    "still through MPI", function()
    M.assert_each_ok(M.mpirun(2, "device_collectives", {}, {env = env(true)}))
  end)

  it("refuses on every process, at once, when one process cannot join the GPUs' group", function()
    local job = M.mpirun(2, "device_collectives", {}, {env = env(true, {"LIGHTNING_FAKE_NO_COMM_RANK=1"}), timeout = 60})
    assert.is_not.equal(0, job.code)
    assert.matches("process 1 cannot reduce tensors on its GPU: fake device: no collectives on this process", job.output)
    assert.is_true(job.seconds < 30, ("the job took %.1f s to end"):format(job.seconds))
    H.rmdir(job.out)
  end)
end)

describe("DDPStrategy on GPUs (stand-in device, 2 processes)", function()
  -- (batchnorm: SyncBatchNorm, whose statistics go through MPI on the host, and the fused layer unfused)
  for _, kind in ipairs({"plain", "composite", "batchnorm"}) do
    it(("trains the %s model as the same job on the CPUs, bit for bit (weights, metrics, steps)"):format(kind), function()
      local on_gpu = fit("gpu", {kind = kind, batch = 4, epochs = 2})
      M.assert_ok(on_gpu)
      local on_cpu = fit("cpu", {kind = kind, batch = 4, epochs = 2})
      M.assert_ok(on_cpu)
      assert.matches("DDPStrategy: 2 processes on GPUs, gradients in 1 buckets %([%d.]+ MB%), averaged through NCCL",
        on_gpu.output)
      assert.equal(H.read_file(on_cpu.out .. "/weights.safetensors"), H.read_file(on_gpu.out .. "/weights.safetensors"))
      local gpu_reports, cpu_reports = M.results(on_gpu), M.results(on_cpu)
      for r = 1, 2 do
        assert.same(cpu_reports[r], gpu_reports[r])
        assert.equal(20, gpu_reports[r].global_step)
        assert.equal(20, gpu_reports[r].reductions)
      end
      H.rmdir(on_gpu.out)
      H.rmdir(on_cpu.out)
    end)
  end

  it("trains in 16-mixed: the loss scaler sees the averaged gradients, every process keeps the same scale", function()
    local job = fit("gpu", {kind = "batchnorm", batch = 4, epochs = 2, precision = "16-mixed"})
    M.assert_ok(job)
    local reports = M.results(job)
    for r = 1, 2 do
      assert.equal(20, reports[r].global_step)
      assert.same({scale = 65536, growth_factor = 2, backoff_factor = 0.5, growth_interval = 2000, _growth_tracker = 20},
        reports[r].precision_state)
    end
    assert.equal(reports[1].metrics.val_loss, reports[2].metrics.val_loss)   -- (training metrics are each rank's)
    assert.is_true(reports[1].metrics.val_acc > 0.9)
    H.rmdir(job.out)
  end)

  it("refuses bf16 gradients on GPUs, on every process, naming them", function()
    local job = fit("gpu", {kind = "plain", batch = 4, epochs = 1, gradient_dtype = "bf16"})
    assert.is_not.equal(0, job.code)
    assert.matches('gradient_dtype = "bf16" compresses gradients that MPI carries between hosts; on GPUs they ' ..
      'travel as float32 through NCCL', job.output)
    H.rmdir(job.out)
  end)
end)
