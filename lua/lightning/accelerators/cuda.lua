--- CUDAAccelerator (Trainer{accelerator = "gpu"} or "cuda", and what "auto" picks when a GPU is
-- there): the first NVIDIA GPU, through the C core's CUDA module (lightning.cuda says whether it loads
-- and why not). One device per process: "cuda:0", which is the machine's GPU L.cuda.current_device()
-- (under mpirun, the process's rank on its host modulo the GPUs).
local class = require "lightning.class"
local cuda = require "lightning.cuda"
local options = require "lightning.util.options"
local devices = require "lightning.accelerators.devices"

local CUDAAccelerator = class("CUDAAccelerator")
CUDAAccelerator.accelerator_name = "cuda"

--- true, or false and the reason (no driver, no device, a library missing, a build without CUDA).
function CUDAAccelerator.is_available() return cuda.is_available() end

CUDAAccelerator.parse_devices = devices.parse

function CUDAAccelerator:__init(wanted)
  self.num_devices = self.parse_devices(wanted)
  self.index = 0
end

--- Makes sure the GPU answers before anything moves to it: the CUDA module loads here, and a GPU that
-- went away since the Trainer was made is named with the reason.
function CUDAAccelerator:setup_device(device)
  local ok, reason = cuda.is_available()
  if not ok then options.fail("CUDAAccelerator:setup_device", "no CUDA device is available (%s)", reason) end
  cuda.get_device_properties(cuda.current_device())
end

function CUDAAccelerator:device() return ("cuda:%d"):format(self.index) end

--- The device block's lines about the GPUs: one summary each (lightning.cuda.describe), {} without one.
function CUDAAccelerator.describe() return cuda.describe() end

--- Bytes of the GPU's memory pool: {in_use, reserved, peak_in_use} (Lightning's get_device_stats).
function CUDAAccelerator:get_device_stats() return cuda.memory_stats() end

function CUDAAccelerator:__tostring() return ("CUDAAccelerator(%s)"):format(self:device()) end

return CUDAAccelerator
