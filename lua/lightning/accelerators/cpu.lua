--- CPUAccelerator (Trainer{accelerator = "cpu"}, and what "auto" picks without a GPU): the host's
-- cores, through the C core's kernels (OpenMP threads, BLAS, oneDNN where built in). One device.
local class = require "lightning.class"
local core = require "lightning.core"
local devices = require "lightning.accelerators.devices"

local CPUAccelerator = class("CPUAccelerator")
CPUAccelerator.accelerator_name = "cpu"

--- Always true: the host is there.
function CPUAccelerator.is_available() return true end

--- The number of devices the Trainer's `devices` option asks for: 1 ("auto" or 1).
CPUAccelerator.parse_devices = devices.parse

function CPUAccelerator:__init(wanted)
  self.num_devices = self.parse_devices(wanted)
end

--- Nothing to prepare: tensors are made on the host.
function CPUAccelerator:setup_device(device) end

function CPUAccelerator:device() return "cpu" end

--- The device block's lines about the host: the CPU, its SIMD, the BLAS and the threads.
function CPUAccelerator.describe()
  local info = core.info()
  local cpu = info.cpu
  return {
    ("CPU: %s (%s), %d logical CPUs"):format(cpu.model, cpu.vendor, cpu.logical_cpus),
    ("SIMD: %s (%s)"):format(cpu.simd, table.concat(cpu.features, " ")),
    ("BLAS: %s, core %s (chosen by %s)"):format(info.blas_library, info.blas_core, info.blas_core_chosen_by),
    ("Threads: %d%s"):format(info.threads, info.openmp and " (OpenMP)" or ""),
  }
end

function CPUAccelerator:__tostring() return "CPUAccelerator(cpu)" end

return CPUAccelerator
