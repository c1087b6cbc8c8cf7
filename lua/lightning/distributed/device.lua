--- The collectives of tensors on a GPU (L.cuda.comm: NCCL), for lightning.distributed, which routes a GPU
-- tensor's all_reduce and broadcast here (host tensors go through MPI). The processes' group is joined
-- on the first such collective (every process makes them in the same order): each says whether it can
-- take part, rank 0 makes the group's identity and MPI carries it to the others.
-- A reduction is queued on the GPU after the work that wrote the tensor and runs beside what follows;
-- its Work's wait() makes the work queued after it wait for it, without blocking the host.
local L = require "lightning"
local options = require "lightning.util.options"

local device = {}

--- Whether x is a tensor on a GPU.
function device.holds(x)
  return L.is_tensor(x) and x:device() ~= "cpu"
end

-- mpi: {rank, world_size, all_gather(value), broadcast_string(bytes or nil, root)}.
local function join(fname, mpi)
  local comm = L.cuda.comm
  if comm.joined() then return comm end
  local ok, why = comm.ready()
  local answers = mpi.all_gather(ok and "" or why)
  for rank, answer in ipairs(answers) do
    if answer ~= "" then
      options.fail(fname, "process %d cannot reduce tensors on its GPU: %s", rank - 1, answer)
    end
  end
  local id, made = nil, true
  if mpi.rank == 0 then made, id = pcall(comm.unique_id) end
  local sent = mpi.broadcast_string(mpi.rank == 0 and ((made and "id:" or "error:") .. tostring(id)) or nil, 0)
  local failure = sent:match("^error:(.*)$")
  if failure then options.fail(fname, "process 0 could not start the GPUs' group: %s", failure) end
  comm.init(sent:sub(4), mpi.rank, mpi.world_size)
  return comm
end

-- What the work of an async reduction is on a GPU: done once the GPU finished it; wait() orders the
-- GPU's later work after it.
local Work = {}
Work.__index = Work
function Work:wait() self.comm.join() return self.tensor end
function Work:test() return self.comm.query() end
function Work:is_completed() return self.comm.query() end

function device.all_reduce(fname, mpi, x, op, async)
  local comm = join(fname, mpi)
  comm.all_reduce(x, op)
  if async then return setmetatable({comm = comm, tensor = x}, Work) end
  comm.join()
  return x
end

function device.broadcast(fname, mpi, x, src)
  local comm = join(fname, mpi)
  comm.broadcast(x, src)
  comm.join()
  return x
end

--- Joins the processes' group now (DDPStrategy does, so that a missing NCCL shows before training).
function device.join(fname, mpi) join(fname, mpi) end

return device
