--- lightning.cuda (L.cuda): the NVIDIA GPU, as PyTorch's torch.cuda. The C core loads its CUDA module
-- (lightning/cuda.so) the first time something asks for the device, and says why when it cannot.
--   L.cuda.is_available()           true, or false and the reason ("lightning was built without CUDA",
--                                   "no CUDA driver: ...")
--   L.cuda.device_count()           the number of GPUs (0 when none is available)
--   L.cuda.is_bf16_supported()      whether layers on the GPU compute bf16-mixed in bf16 (the backend's bf16
--                                   kernels, and compute capability 8.0 or later), or false and why
--   L.cuda.is_fp16_supported()      whether layers on the GPU compute 16-mixed in fp16 (the backend's fp16
--                                   kernels), or false and why
--   L.cuda.get_device_properties(i) device i (0-based): {name, total_memory, free_memory, major, minor,
--                                   multi_processor_count, driver_version, runtime_version, cudnn_version,
--                                   cublaslt_version} (memory in bytes, versions as "13.0", "9.10.0")
--   L.cuda.current_device()         the machine's index of the GPU this process computes on (its "cuda:0"):
--                                   LIGHTNING_CUDA_DEVICE, or under mpirun the process's rank on its host
--                                   modulo the GPUs (a process per GPU), or 0
--   L.cuda.synchronize()            waits until the GPU has finished what was asked of it
--   L.cuda.manual_seed(n)           the seed of the GPU's generator (dropout); L.manual_seed(n) sets it too
--   L.cuda.get_rng_state()          that generator's state, as text (checkpoints keep it)
--   L.cuda.set_rng_state(s)         sets it again from such text
--   L.cuda.allow_tf32([on])         whether float32 matrix products and convolutions may use TF32 (true by
--                                   default, as PyTorch's cuDNN; false: exact float32); sets it when given
--   L.cuda.memory_stats()           {in_use, reserved, peak_in_use}, bytes of the GPU's memory pool
--   L.cuda.empty_cache()            gives the pool's unused memory back to the driver
--   L.cuda.set_sync_debug_mode(m)   PyTorch's: what an operation that makes the host wait for the GPU does
--                                   ("default": nothing, "warn": a line on stderr, "error": it fails naming
--                                   itself); such operations read a result back (item, totable, :cpu(),
--                                   printing, a metric's counts, clip_grad_norm); synchronize() is not one
--   L.cuda.get_sync_debug_mode()    "default", "warn" or "error"
--   L.cuda.summary(i)               one line on device i: "NVIDIA H100 80GB HBM3, 79.1 GiB, compute
--                                   capability 9.0, driver 13.0, cuDNN 9.10.0, cuBLASLt 13.0.0"
--   L.cuda.describe()               a device block's lines: one summary per GPU ({} without one)
--   L.cuda.CUDAGraph()              a CUDA graph, as torch.cuda.CUDAGraph: the GPU work of a function recorded
--                                   once and run again as one launch (docs/gpu.md#cuda-graphs):
--     g:capture(fn, ...)            runs fn(...) with the GPU's work recorded, not run; returns fn's results
--                                   (tensors that every replay writes again)
--     g:replay()                    runs the recorded work again, on the same memory, with the same arguments
--     g:reset()                     frees the graph (collection does too)
--     g:capture_begin(), g:capture_end()   the two halves of capture, as PyTorch's
--   L.cuda.is_current_stream_capturing()   whether a capture is going on
--   L.cuda.before_replay(fn)        during a capture: fn() runs on the host before each replay of the graph
--                                   being captured, before its launch (an optimizer there writes the step's
--                                   learning rate and count onto the GPU: lightning/optim/graph_step.lua)
--   L.cuda.after_replay(fn)         during a capture: fn() runs on the host after each launch of that graph
--                                   (what Lua keeps of a step, e.g. EpochMetrics' list of losses, follows)
--   L.cuda.current_capture()        the CUDAGraph being captured, or nil
--   L.cuda.comm                     collectives between processes on GPUs (NCCL), which
--                                   L.distributed uses for GPU tensors: ready(), unique_id(), init(id, rank,
--                                   world_size), joined(), all_reduce(t, op), broadcast(t, root), query(),
--                                   join() (csrc/lua/l_comm.c)
-- Without a GPU every function but is_available, is_bf16_supported, is_fp16_supported and device_count
-- raises an error that carries the reason.
local core = require "lightning.core"
local options = require "lightning.util.options"

local C = core.cuda

local cuda = {}

cuda.comm = C.comm

function cuda.is_available() return C.is_available() end
function cuda.device_count() return C.device_count() end
function cuda.is_bf16_supported() return C.is_bf16_supported() end
function cuda.is_fp16_supported() return C.is_fp16_supported() end
function cuda.current_device() return C.current_device() end
function cuda.synchronize() return C.synchronize() end
function cuda.manual_seed(seed) return C.manual_seed(seed) end
function cuda.get_rng_state() return C.get_rng_state() end
function cuda.set_rng_state(state)
  if type(state) ~= "string" then
    options.fail("lightning.cuda.set_rng_state", "the state must be a string (from get_rng_state), got %s",
      options.describe(state))
  end
  return C.set_rng_state(state)
end
function cuda.allow_tf32(on) return C.allow_tf32(on) end
function cuda.memory_stats() return C.memory_stats() end
function cuda.empty_cache() return C.empty_cache() end
function cuda.set_sync_debug_mode(mode) return C.set_sync_debug_mode(mode) end
function cuda.get_sync_debug_mode() return C.get_sync_debug_mode() end

local CUDAGraph = {}
CUDAGraph.__index = CUDAGraph
CUDAGraph.__name = "CUDAGraph"

local capturing = nil  -- the CUDAGraph being captured

function cuda.CUDAGraph() return setmetatable({}, CUDAGraph) end

function cuda.is_current_stream_capturing() return C.is_capturing() end

function cuda.current_capture() return capturing end

local function add_hook(fname, key, fn)
  if not capturing then options.fail(fname, "no CUDA graph is being captured") end
  if type(fn) ~= "function" then options.fail(fname, "expected a function, got %s", options.describe(fn)) end
  local hooks = capturing[key]
  hooks[#hooks + 1] = fn
end

function cuda.before_replay(fn) add_hook("lightning.cuda.before_replay", "_before_replay", fn) end
function cuda.after_replay(fn) add_hook("lightning.cuda.after_replay", "_after_replay", fn) end

function CUDAGraph:capture_begin()
  if self._graph then self:reset() end
  C.capture_begin()
  self._before_replay, self._after_replay = {}, {}
  capturing = self
end

function CUDAGraph:capture_end()
  if capturing == self then capturing = nil end
  self._graph = C.capture_end()
end

-- The capture ends whether fn returns or fails; a failed capture leaves no graph.
function CUDAGraph:capture(fn, ...)
  if type(fn) ~= "function" then
    options.fail("CUDAGraph:capture", "expected a function to capture, got %s", options.describe(fn))
  end
  self:capture_begin()
  local results = table.pack(pcall(fn, ...))
  local ended, why = pcall(self.capture_end, self)
  if not results[1] then
    self:reset()
    error(results[2], 0)
  end
  if not ended then error(why, 0) end
  return table.unpack(results, 2, results.n)
end

function CUDAGraph:replay()
  if not self._graph then options.fail("CUDAGraph:replay", "nothing was captured (call capture first)") end
  for _, hook in ipairs(self._before_replay) do hook() end
  self._graph:replay()
  for _, hook in ipairs(self._after_replay) do hook() end
end

function CUDAGraph:reset()
  if self._graph then self._graph:reset() end
  self._graph, self._before_replay, self._after_replay = nil, nil, nil
end

-- device defaults to 0, as in a one-GPU machine; anything but an index in range is named as wrong.
local function device_index(fname, device)
  if device == nil then return 0 end
  if math.type(device) ~= "integer" or device < 0 then
    options.fail(fname, "the device must be a 0-based index (an integer >= 0), got %s", options.describe(device))
  end
  return device
end

function cuda.get_device_properties(device)
  return C.get_device_properties(device_index("lightning.cuda.get_device_properties", device))
end

local GIB = 1024 ^ 3

function cuda.summary(device)
  local p = cuda.get_device_properties(device_index("lightning.cuda.summary", device))
  return ("%s, %.1f GiB, compute capability %d.%d, driver %s, cuDNN %s, cuBLASLt %s"):format(p.name,
    p.total_memory / GIB, p.major, p.minor, p.driver_version, p.cudnn_version, p.cublaslt_version)
end

function cuda.describe()
  local lines = {}
  if not cuda.is_available() then return lines end
  for i = 0, cuda.device_count() - 1 do lines[#lines + 1] = cuda.summary(i) end
  return lines
end

return cuda
