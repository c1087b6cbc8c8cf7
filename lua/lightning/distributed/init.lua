--- lightning.distributed (L.distributed): processes that train together over MPI (Open MPI), through
-- lightning/dist.so, a C module built when CMake finds MPI and loaded only when a run uses it.
--   local dist = L.distributed
--   dist.available()            the module was built (else every call below but the first four errs)
--   dist.launched()             this process was started by mpirun (OMPI_COMM_WORLD_* variables)
--   dist.init()                 starts MPI (once; the calls below start it when needed) --> info table
--   dist.rank(), dist.world_size(), dist.local_rank(), dist.local_world_size()
--                               before init: mpirun's variables (0 and 1 outside mpirun)
--   dist.all_reduce(x, op[, {async = true[, wire = "bf16"]}])   (wire: a float32 tensor's values travel
--                                                              as bf16, half the bytes; sum and mean)
--       x a contiguous tensor (float32) or an L.buffer ("float64", "int64"): reduced in place, returned;
--       x a number or a list of numbers: a new number or list (integers as int64, else float64);
--       op "sum" (default), "mean", "max", "min". async (tensors and buffers): a Work, whose wait()
--       returns x, test() says whether it is done, is_completed() whether it was.
--       x a tensor on a GPU: through the GPUs' own collectives (NCCL, distributed/device.lua), queued on
--       the GPU; its async Work's wait() orders the GPU's later work after it (the host does not wait)
--   dist.broadcast(x, src)      a tensor or buffer in place from process src (default 0); any other
--                               Lua value (numbers, strings, booleans, lists, string-keyed tables) is
--                               returned as src has it
--   dist.init_device_group()    joins the processes' GPUs into one group (NCCL) now rather than at the
--                               first collective of a GPU tensor
--   dist.barrier()
--   dist.all_gather(value)      --> {value of rank 0, value of rank 1, ...}
--   dist.finalize()             (MPI also ends by itself when the process does; see docs/distributed.md)
--   dist.set_timeout(s)         a collective that waits s seconds (60) without completing ends the job
-- Collectives are called by every process in the same order. Values are serialised with the library's
-- JSON (distributed/values.lua); numbers come back bit for bit.
local L = require "lightning"
local lazy = require "lightning.lazy"
local values = require "lightning.distributed.values"
local launch = require "lightning.distributed.launch"
local device = require "lightning.distributed.device"
local options = require "lightning.util.options"

local native = lazy({dist = "lightning.dist"})   -- lightning/dist.so, loaded at the first collective

local distributed = {launch = launch}

local NAME = "lightning.distributed"
local OPS = {sum = true, mean = true, max = true, min = true}

local info   -- init's answer

--- Whether lightning/dist.so was built (CMake found MPI and LIGHTNING_WITH_MPI was on).
function distributed.available()
  return package.searchpath("lightning.dist", package.cpath) ~= nil
end

--- Why the module is missing, for error messages.
distributed.UNAVAILABLE = "the library was built without MPI (lightning/dist.so is missing): install Open MPI " ..
  "(Debian: libopenmpi-dev openmpi-bin, as setup.sh does) and rebuild with -DLIGHTNING_WITH_MPI=ON"

--- Whether mpirun started this process.
function distributed.launched()
  return launch.environment() ~= nil
end

local function module(fname)
  if not distributed.available() then options.fail(fname, "%s", distributed.UNAVAILABLE) end
  return native.dist
end

--- Starts MPI (when it does not run yet); returns {rank, world_size, local_rank, local_world_size,
-- thread_level, owns_mpi, library}.
function distributed.init()
  if info and distributed.is_initialized() then return info end
  local d = module(NAME .. ".init")
  info = d.init()
  local timeout = tonumber(os.getenv("LIGHTNING_DIST_EXIT_TIMEOUT") or "")
  if timeout then d.set_exit_timeout(timeout) end
  timeout = tonumber(os.getenv("LIGHTNING_DIST_TIMEOUT") or "")
  if timeout then d.set_timeout(timeout) end
  return info
end

function distributed.is_initialized()
  return info ~= nil and native.dist.is_initialized()
end

local function place(key, default)
  if distributed.is_initialized() then return info[key] end
  local env = launch.environment()
  if env then return env[key] end
  return default
end

function distributed.rank() return place("rank", 0) end
function distributed.world_size() return place("world_size", 1) end
function distributed.local_rank() return place("local_rank", 0) end
function distributed.local_world_size() return place("local_world_size", 1) end

local function started(fname)
  local d = module(fname)
  distributed.init()
  return d
end

-- What the GPUs' collectives need of MPI: the place, and a way to agree and to send their group's identity
-- (made once: a reduction of every bucket at every step asks).
local mpi_view
local function mpi_of(d)
  mpi_view = mpi_view or {rank = info.rank, world_size = info.world_size, all_gather = distributed.all_gather,
    broadcast_string = d.broadcast_string}
  return mpi_view
end

local function check_op(fname, op)
  if op ~= nil and not OPS[op] then
    options.fail(fname, "the operation must be \"sum\", \"mean\", \"max\" or \"min\", got %s", options.describe(op))
  end
  return op or "sum"
end

-- A number or a list of numbers through a buffer: int64 when every value is an integer.
local function reduce_numbers(d, fname, x, op)
  local list = type(x) == "number" and {x} or x
  local integers = true
  for i, v in ipairs(list) do
    if type(v) ~= "number" then options.fail(fname, "element %d must be a number, got %s", i, options.describe(v)) end
    if math.type(v) ~= "integer" then integers = false end
  end
  if integers and op == "mean" then integers = false end
  local buf = L.buffer(integers and "int64" or "float64", #list)
  for i, v in ipairs(list) do buf[i] = v end
  d.all_reduce(buf, op)
  if type(x) == "number" then return buf[1] end
  return buf:totable()
end

function distributed.all_reduce(x, op, opts)
  local fname = NAME .. ".all_reduce"
  op = check_op(fname, op)
  if opts ~= nil and type(opts) ~= "table" then options.fail(fname, "options must be a table, got %s", options.describe(opts)) end
  local async = opts and opts.async
  local d = started(fname)
  if type(x) == "number" or (type(x) == "table" and getmetatable(x) == nil) then
    if async then options.fail(fname, "async reductions take a tensor or a buffer (a list is reduced at once)") end
    return reduce_numbers(d, fname, x, op)
  end
  local wire = opts and opts.wire
  if wire ~= nil and wire ~= "bf16" and wire ~= "float32" then
    options.fail(fname, "wire must be \"bf16\" or \"float32\", got %s", options.describe(wire))
  end
  if wire == "bf16" and not async then options.fail(fname, "{wire = \"bf16\"} is for async reductions") end
  if device.holds(x) then
    if wire == "bf16" then options.fail(fname, "{wire = \"bf16\"} is for tensors on the host: a GPU's travel as float32") end
    return device.all_reduce(fname, mpi_of(d), x, op, async)
  end
  if async then return d.all_reduce_start(x, op, wire) end
  return d.all_reduce(x, op)
end

local function is_memory(x)
  return L.is_tensor(x) or L.is_buffer(x)
end

function distributed.broadcast(x, src)
  local fname = NAME .. ".broadcast"
  src = src or 0
  if math.type(src) ~= "integer" or src < 0 then options.fail(fname, "src must be a rank (an integer >= 0), got %s", options.describe(src)) end
  local d = started(fname)
  if src >= info.world_size then
    options.fail(fname, "src must be a rank from 0 to %d, got %d", info.world_size - 1, src)
  end
  if device.holds(x) then return device.broadcast(fname, mpi_of(d), x, src) end
  if is_memory(x) then return d.broadcast(x, src) end
  local bytes = info.rank == src and values.encode(x, fname) or nil
  return values.decode(d.broadcast_string(bytes, src))
end

--- Joins the group of the processes' GPUs now (NCCL; otherwise the first collective of a GPU tensor
-- does): every process, once MPI runs. Fails on every process when one of them cannot.
function distributed.init_device_group()
  local fname = NAME .. ".init_device_group"
  local d = started(fname)
  device.join(fname, mpi_of(d))
end

function distributed.barrier()
  started(NAME .. ".barrier").barrier()
end

function distributed.all_gather(value)
  local fname = NAME .. ".all_gather"
  local d = started(fname)
  local list = d.all_gather_strings(values.encode(value, fname))
  for i, bytes in ipairs(list) do list[i] = values.decode(bytes) end
  return list
end

function distributed.finalize()
  if distributed.is_initialized() then native.dist.finalize() end
end

--- The fault mark (see docs/distributed.md, "Faults"): a process marked ends the whole job at its exit
-- rather than finalizing MPI, which would wait for peers that may be waiting for it.
function distributed.set_fault(flag)
  if distributed.is_initialized() then native.dist.set_fault(flag) end
end

function distributed.fault()
  return distributed.is_initialized() and native.dist.fault() or false
end

--- The progress deadline: a collective that waits longer than this many seconds without completing
-- ends the job with a message naming it, the seconds and the rank (0: wait for ever). 60 by default;
-- the variable LIGHTNING_DIST_TIMEOUT sets it at init, DDPStrategy{timeout = s} at the start of a run.
function distributed.set_timeout(seconds)
  started(NAME .. ".set_timeout").set_timeout(seconds)
end

function distributed.timeout()
  return started(NAME .. ".timeout").timeout()
end

--- How long a process that ends waits for the others to end too before it ends the job (60 s; the
-- variable LIGHTNING_DIST_EXIT_TIMEOUT sets it at init).
function distributed.set_exit_timeout(seconds)
  started(NAME .. ".set_exit_timeout").set_exit_timeout(seconds)
end

return distributed
