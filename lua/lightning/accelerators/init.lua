--- lightning.accelerators: the hardware the Trainer computes on, PyTorch Lightning's Accelerator.
--   Trainer{accelerator = "auto"}         (the default) the GPU when one is available, else the CPU
--   Trainer{accelerator = "cpu"}          the host (CPUAccelerator)
--   Trainer{accelerator = "gpu" | "cuda"} the first NVIDIA GPU (CUDAAccelerator); without one the
--                                         Trainer refuses, naming the reason
--   Trainer{devices = "auto" | 1}         one device per process
-- An accelerator has is_available() (true, or false and the reason), parse_devices(devices),
-- setup_device(device) (the strategy calls it before the model moves), device() (the name tensors
-- take: "cpu", "cuda:0") and describe() (its lines of a device block).
local options = require "lightning.util.options"
local devices = require "lightning.accelerators.devices"
local CPUAccelerator = require "lightning.accelerators.cpu"
local CUDAAccelerator = require "lightning.accelerators.cuda"

local accelerators = {CPUAccelerator = CPUAccelerator, CUDAAccelerator = CUDAAccelerator}

local registry = {cpu = CPUAccelerator, cuda = CUDAAccelerator, gpu = CUDAAccelerator}
accelerators.NAMES = {"auto", "cpu", "gpu", "cuda"}

accelerators.devices_problem = devices.problem

--- The accelerator object for the Trainer's options (accelerator = name, devices). "auto" takes the
-- GPU when there is one; "gpu" and "cuda" without one raise, naming the reason.
function accelerators.resolve(name, wanted)
  name, wanted = name or "auto", wanted or "auto"
  options.check_value("Trainer", "", "accelerator", {kind = "string", one_of = accelerators.NAMES}, name)
  local cls = registry[name]
  if name == "auto" then
    cls = CUDAAccelerator.is_available() and CUDAAccelerator or CPUAccelerator
  else
    local ok, reason = cls.is_available()
    if not ok then options.fail("Trainer", "accelerator '%s': no CUDA device is available (%s)", name, reason) end
  end
  return cls(wanted)
end

--- The lines of a device block for a run on `used` (an accelerator): whether a GPU is available and
-- used (Lightning's "GPU available: True (cuda), used: True"), each further GPU, then the host's.
function accelerators.describe(used)
  local lines = {}
  local available, reason = CUDAAccelerator.is_available()
  if available then
    local gpus = CUDAAccelerator.describe()
    lines[1] = ("GPU available: yes (%s), used: %s"):format(gpus[1],
      tostring(used.accelerator_name == CUDAAccelerator.accelerator_name))
    for i = 2, #gpus do lines[i] = ("GPU cuda:%d: %s"):format(i - 1, gpus[i]) end
  else
    lines[1] = ("GPU available: no (%s)"):format(reason)
  end
  for _, line in ipairs(CPUAccelerator.describe()) do lines[#lines + 1] = line end
  return lines
end

return accelerators
