--- DDPStrategy (Trainer{strategy = "ddp"}, and what "auto" picks under mpirun): data-parallel training
-- over MPI, PyTorch Lightning's DDPStrategy on Open MPI (lightning.distributed). Each process holds the
-- whole model and trains on its share of every batch; N processes at batch_size B train like one at
-- N x B.
--   L.strategies.DDPStrategy{bucket_cap_mb = 1, overlap = true, sync_batchnorm = false, timeout = 60,
--     gradient_dtype = "float32", precision_plugin}
-- gradient_dtype "bf16": the gradients travel as bf16, half the bytes, summed in bf16 (PyTorch's
-- bf16_compress_hook); where the network is slow next to the backward pass (docs/distributed.md, "The
-- cost at scale"). Results then match one process within bf16 rounding of the gradients, not float32's.
-- timeout: seconds a collective may wait without completing before the job ends with a message naming
-- it (PyTorch's process-group timeout; 0: for ever; default LIGHTNING_DIST_TIMEOUT, else 60).
-- On GPUs (accelerator "gpu", a process per GPU) the gradients are averaged on the GPUs through NCCL
-- (distributed/device.lua); everything else (numbers, checkpoints' agreement) still goes through MPI.
-- What it does:
--   setup_environment  starts MPI (mpirun started the processes: lightning-train --nproc N, or
--                      mpirun -np N lua train.lua ...); library output is silenced on the processes but
--                      global rank 0 (errors still reach standard error)
--   setup              converts BatchNorm layers to nn.SyncBatchNorm (sync_batchnorm, or the Trainer's
--                      option), refuses processes whose models differ (names and shapes of parameters
--                      and buffers, all_gather), broadcasts global rank 0's parameters and buffers, and
--                      (fit) flattens the parameters for the gradient buckets (distributed/reducer.lua)
--   backward           with sync (the last micro-batch of an accumulation group) the gradients are
--                      averaged over the processes: each bucket's all-reduce starts as soon as the
--                      backward pass has finished its layers and is waited for when the pass ends;
--                      without sync they accumulate locally (PyTorch's no_sync); when the steps wait
--                      longer for the all-reduce than the pass takes, one line says so (once a fit)
--   reduce, all_gather, broadcast, barrier, reduce_boolean_decision: over every process; numbers are
--                      combined in rank order, so every process gets the same bits
--   process_dataloader each lightning.data.DataLoader becomes this process's share of it
--                      (DistributedSampler: see lightning/data/sampler.lua)
--   save_checkpoint    global rank 0 writes (the others wait at the Trainer's barrier); the file also
--                      records the number of processes and each one's generator
--   load_checkpoint    every process reads the file global rank 0 names, and checks they read the same
--                      (a position inside an epoch resumes at the same sample with another process count)
--   teardown           after an error marks this process as failed (lightning.distributed.set_fault):
--                      at its exit it ends the whole job rather than leave the others waiting
local L = require "lightning"
local class = require "lightning.class"
local Strategy = require "lightning.strategies.strategy"
local distributed = require "lightning.distributed"
local Reducer = require "lightning.distributed.reducer"
local SyncBatchNorm = require "lightning.nn.sync_batchnorm"
local DataLoader = require "lightning.data.loader"
local DistributedSampler = require "lightning.data.sampler"
local options = require "lightning.util.options"
local output = require "lightning.util.output"

local DDPStrategy = class("DDPStrategy", Strategy)
DDPStrategy.strategy_name = "ddp"

DDPStrategy.option_specs = {
  precision_plugin = Strategy.option_specs.precision_plugin,
  bucket_cap_mb = {kind = "number", above = 0, finite = true, default = 1},
  overlap = {kind = "boolean", default = true},
  sync_batchnorm = {kind = "boolean", default = false},
  timeout = {kind = "number", min = 0, max = 604800},
  gradient_dtype = {kind = "string", one_of = {"float32", "bf16"}, default = "float32"},
}

local REDUCE_OP = {kind = "string", one_of = {"mean", "sum", "max", "min"}}

--- "auto" picks ddp when mpirun started this process among several.
function DDPStrategy.detect()
  local env = distributed.launch.environment()
  return env ~= nil and env.world_size > 1
end

function DDPStrategy:__init(opts)
  local o = options.check("DDPStrategy", opts, self.option_specs)
  if not distributed.available() then options.fail("DDPStrategy", "%s", distributed.UNAVAILABLE) end
  self.precision_plugin = o.precision_plugin
  self.bucket_cap_mb, self.overlap, self.sync_batchnorm = o.bucket_cap_mb, o.overlap, o.sync_batchnorm
  self.timeout = o.timeout
  self.gradient_dtype = o.gradient_dtype
  self.lightning_module, self.trainer = nil, nil
  self._loaders = setmetatable({}, {__mode = "k"})   -- a loader given -> this process's share of it
end

-- ---- processes ----

function DDPStrategy:setup_environment()
  local on_gpu = self:root_device() ~= "cpu"
  if on_gpu then self:_check_gpu_options() end
  local info = distributed.init()
  if self.timeout then distributed.set_timeout(self.timeout) end
  -- a process per GPU: the gradients are averaged on the GPUs (NCCL), the rest goes through MPI
  if on_gpu then distributed.init_device_group() end
  self._info = info
  self._agreed_failure = false
  if info.rank ~= 0 and not self._silenced then
    self._previous_writer = output.set(function() end)
    self._silenced = true
  end
  Strategy.setup_environment(self)  -- the accelerator's device, once the ranks are known
end

-- What data-parallel training on GPUs does not do yet, refused before MPI starts.
function DDPStrategy:_check_gpu_options()
  if self.gradient_dtype == "bf16" then
    options.fail("DDPStrategy", "gradient_dtype = \"bf16\" compresses gradients that MPI carries between hosts; on " ..
      "GPUs they travel as float32 through NCCL: leave gradient_dtype out")
  end
end

local function place(self)
  return self._info or {rank = distributed.rank(), local_rank = distributed.local_rank(),
    world_size = distributed.world_size()}
end

function DDPStrategy:global_rank() return place(self).rank end
function DDPStrategy:local_rank() return place(self).local_rank end
function DDPStrategy:world_size() return place(self).world_size end
function DDPStrategy:is_global_zero() return place(self).rank == 0 end

local function to_number(fname, value)
  if L.is_tensor(value) and value:numel() == 1 then return value:item() end
  if type(value) ~= "number" then options.fail(fname, "expected a number or a one-element tensor, got %s", options.describe(value)) end
  return value
end

local COMBINE = {
  sum = function(a, b) return a + b end,
  max = function(a, b) return (b > a or b ~= b) and b or a end,
  min = function(a, b) return (b < a or b ~= b) and b or a end,
}

local function all_integers(list)
  for _, v in ipairs(list) do if math.type(v) ~= "integer" then return false end end
  return true
end

-- The values of every process combined in rank order (so every process gets the same bits).
local function combined(all, reduce_op)
  local combine = COMBINE[reduce_op] or COMBINE.sum
  local result = all[1]
  for i = 2, #all do result = combine(result, all[i]) end
  if reduce_op == "mean" then result = result / #all end
  return result
end

--- value over every process: "mean" (default), "sum", "max", "min". value is a number, a one-element
-- tensor, or a list of numbers (element by element: integers are added exactly, as int64, such as a
-- confusion matrix's counts). Every process gets the same result.
function DDPStrategy:reduce(value, reduce_op)
  local fname = "DDPStrategy:reduce"
  reduce_op = reduce_op or "mean"
  if not COMBINE[reduce_op] and reduce_op ~= "mean" then options.check_value(fname, "", "reduce_op", REDUCE_OP, reduce_op) end
  if type(value) == "table" and getmetatable(value) == nil then
    if all_integers(value) and reduce_op ~= "mean" then return distributed.all_reduce(value, reduce_op) end
    local all = distributed.all_gather(value)
    local out = {}
    for i = 1, #value do
      local column = {}
      for r, list in ipairs(all) do column[r] = list[i] end
      out[i] = combined(column, reduce_op)
    end
    return out
  end
  return combined(distributed.all_gather(to_number(fname, value)), reduce_op)
end

function DDPStrategy:all_gather(value) return distributed.all_gather(value) end
function DDPStrategy:broadcast(value, src) return distributed.broadcast(value, src or 0) end
function DDPStrategy:barrier(name) distributed.barrier() end

function DDPStrategy:reduce_boolean_decision(decision, all)
  local votes = distributed.all_gather(decision and true or false)
  local result = all ~= false
  for _, v in ipairs(votes) do
    if all ~= false then result = result and v else result = result or v end
  end
  return result
end

-- ---- setup: one model on every process ----

-- The names and sizes of a module's parameters and buffers, one line each.
local function signature(module)
  local lines = {}
  local sd = module:state_dict()
  for _, name in ipairs(module:state_dict_keys()) do lines[#lines + 1] = name .. " " .. tostring(sd[name]:size()) end
  return lines
end

-- The first line where two signatures differ, described.
local function difference(mine, theirs)
  for i = 1, math.max(#mine, #theirs) do
    if mine[i] ~= theirs[i] then
      return ("%s where rank 0 has %s"):format(mine[i] or "nothing", theirs[i] or "nothing")
    end
  end
end

local function count(module)
  return ("%d tensors, %d parameters"):format(#module:state_dict_keys(), module:num_parameters())
end

--- Refuses processes that hold different models (every process raises the same error).
function DDPStrategy:check_same_model(module)
  local all = distributed.all_gather({lines = signature(module), count = count(module)})
  local reference = all[1]
  for rank = 2, #all do
    local diff = difference(all[rank].lines, reference.lines)
    if diff then
      self._agreed_failure = true
      options.fail("DDPStrategy", "the processes hold different models: rank %d has %s (%s), rank 0 %s; every " ..
        "process must build the same model", rank - 1, diff, all[rank].count, reference.count)
    end
  end
end

--- Global rank 0's parameters and buffers on every process.
function DDPStrategy:broadcast_model(module)
  local flat_params = module:flat_parameters()
  if flat_params then
    distributed.broadcast(flat_params, 0)
  else
    for _, p in ipairs(module:parameters()) do self:_broadcast_tensor(p) end
  end
  for _, b in ipairs(module:buffers()) do self:_broadcast_tensor(b) end
end

function DDPStrategy:_broadcast_tensor(t)
  if t:is_contiguous() then
    distributed.broadcast(t, 0)
  else
    t:copy(distributed.broadcast(t:contiguous(), 0))
  end
end

function DDPStrategy:setup(trainer)
  Strategy.setup(self, trainer)
  local module = self.lightning_module
  if self.sync_batchnorm or trainer.sync_batchnorm then
    SyncBatchNorm.convert_sync_batchnorm(module)
    self:model_to_device()   -- (the layers the conversion made start on the host)
  end
  self:check_same_model(module)
  distributed.set_fault(false)   -- (a collective went through: the processes are in step)
  self._reducer, self._dominated_checked, self._dominated_from = nil, false, nil
  if trainer.state.fn == "fit" then
    self._reducer = Reducer{module = module, bucket_cap_mb = self.bucket_cap_mb, overlap = self.overlap,
      comm = {all_reduce_async = function(t)
        return distributed.all_reduce(t, "mean", {async = true, wire = self.gradient_dtype})
      end}}
  end
  self:broadcast_model(module)
end

-- ---- the backward pass ----

function DDPStrategy:pre_backward(loss, sync)
  if sync and self._reducer then self._reducer:prepare() end
end

function DDPStrategy:finish_backward(sync)
  if sync and self._reducer then
    self._reducer:finish()
    -- (on GPUs the host does not wait for NCCL's reductions: its clock says nothing of them)
    if self:root_device() == "cpu" then self:_check_dominated() end
  end
end

-- Steps measured (after the first, a warm-up) before the strategy looks, once, whether the all-reduce
-- dominates them; and the wait per step below which it says nothing (a toy model's steps of a
-- millisecond on one machine: nobody waits for those).
DDPStrategy.DOMINATED_AFTER = 5
DDPStrategy.DOMINATED_MIN_WAIT_S = 0.002

-- Once per fit: when the steps waited longer for the all-reduce after the backward pass than the pass
-- itself took, one line says so: the user sees why training is slow (the network, not the model).
function DDPStrategy:_check_dominated()
  if self._dominated_checked then return end
  local s = self._reducer:stats()
  if s.steps <= 1 then
    self._dominated_from = s
    return
  end
  local from = self._dominated_from or {steps = 0, wait_s = 0, backward_s = 0}
  local n = s.steps - from.steps
  if n < self.DOMINATED_AFTER then return end
  self._dominated_checked = true
  local wait, backward = (s.wait_s - from.wait_s) / n, (s.backward_s - from.backward_s) / n
  if wait <= backward or wait < self.DOMINATED_MIN_WAIT_S then return end
  output.print(("DDPStrategy: the gradient all-reduce dominates training: each step waited %.0f ms for it after " ..
    "a %.0f ms backward pass (%.2f MB of gradients a step in %d buckets, %d processes); the network between the " ..
    "processes is the bottleneck: try larger buckets (bucket_cap_mb, now %g), a larger batch per process, %sor a " ..
    "faster network (docs/distributed.md, \"The cost at scale\")")
    :format(1e3 * wait, 1e3 * backward, s.bytes / 2 ^ 20, s.buckets, self:world_size(), self.bucket_cap_mb,
      self.gradient_dtype == "bf16" and "" or "bf16 gradients (gradient_dtype = \"bf16\", half the bytes), "))
end

--- What the gradient reductions cost (distributed/reducer.lua's stats), or nil before a fit.
function DDPStrategy:reduction_stats()
  return self._reducer and self._reducer:stats()
end

-- ---- data ----

-- One draw of global rank 0's generator, the same on every process: the unseeded order of an epoch.
function DDPStrategy:_shared_draw()
  local draw = self:is_global_zero() and L.core.data.random_seed() or nil
  return distributed.broadcast(draw, 0)
end

function DDPStrategy:process_dataloader(loader, kind)
  local share = self:_share_of(loader, kind)
  if kind == "train" then self:resume_position(share) end
  return share
end

function DDPStrategy:_share_of(loader, kind)
  if self:world_size() == 1 then return loader end
  if getmetatable(loader) ~= DataLoader then
    if not self._warned_loader and self:is_global_zero() then
      output.print(("DDPStrategy: the %s loader is a %s, not a lightning.data.DataLoader: every process reads all " ..
        "of it (a DataLoader is split between the processes)"):format(kind, class.name_of(loader)))
    end
    self._warned_loader = true
    return loader
  end
  if loader.sampler then return loader end
  local share = self._loaders[loader]
  if not share then
    local sampler = DistributedSampler{num_replicas = self:world_size(), rank = self:global_rank(),
      shuffle = loader.shuffle, seed = loader.seed, drop_last = loader.drop_last,
      draw = function() return self:_shared_draw() end}
    share = DataLoader(loader.dataset, {batch_size = loader.batch_size, drop_last = loader.drop_last,
      num_workers = loader.num_workers, sampler = sampler})
    self._loaders[loader] = share
  end
  return share
end

-- ---- checkpoints ----

function DDPStrategy:save_checkpoint(ckpt, path)
  local trainer = self.lightning_module and self.lightning_module.trainer
  if type(ckpt.loops) == "table" then
    ckpt.loops.world_size = self:world_size()
    -- each process's generator (dropout masks differ between them), unless only this process saves
    -- (the last good state after an error: the others are not here)
    if not (trainer and trainer.interrupted) then ckpt.loops.rng_states = distributed.all_gather(L.get_rng_state()) end
  end
  Strategy.save_checkpoint(self, ckpt, path)
end

function DDPStrategy:load_checkpoint(path)
  local fname = "DDPStrategy:load_checkpoint"
  local chosen = distributed.broadcast(path, 0)
  local ok, ckpt = pcall(self.checkpoint_io.load_checkpoint, self.checkpoint_io, chosen)
  local reads = distributed.all_gather(ok and {step = ckpt.global_step, epoch = ckpt.epoch} or {error = tostring(ckpt)})
  for rank, r in ipairs(reads) do
    if r.error or r.step ~= reads[1].step or r.epoch ~= reads[1].epoch then
      self._agreed_failure = true
      options.fail(fname, "process %d cannot read the checkpoint %s that rank 0 resumes from (%s); every machine " ..
        "needs it at the same path (a shared folder)", rank - 1, chosen,
        r.error or ("it reads global step " .. tostring(r.step) .. ", rank 0 " .. tostring(reads[1].step)))
    end
  end
  if type(ckpt.loops) == "table" then
    local states = ckpt.loops.rng_states
    if type(states) == "table" and #states == self:world_size() then ckpt.rng_state = states[self:global_rank() + 1] end
  end
  self._resumed_loops = ckpt.loops   -- (the position inside an epoch: see Strategy:resume_position)
  return ckpt
end

-- ---- the end ----

function DDPStrategy:teardown()
  local trainer = self.trainer or (self.lightning_module and self.lightning_module.trainer)
  if self._reducer then self._reducer:teardown() end
  if trainer and trainer.interrupted and not self._agreed_failure then
    -- the others may be waiting in a collective for this process: it ends the job when it exits
    distributed.set_fault(true)
  elseif trainer and trainer.state.fn == "fit" and self._reducer and self:is_global_zero() and self:world_size() > 1 then
    self:_report(self._reducer:stats())
  end
  if self._silenced then
    output.set(self._previous_writer)
    self._silenced, self._previous_writer = false, nil
  end
  Strategy.teardown(self)
end

-- One line after a fit: how much of the gradient reduction the backward pass hid.
function DDPStrategy:_report(s)
  if s.steps == 0 then return end
  local sizes = {}
  for i, b in ipairs(s.bucket_bytes) do sizes[i] = ("%.2f"):format(b / 2 ^ 20) end
  if self:root_device() ~= "cpu" then
    output.print(("DDPStrategy: %d processes on GPUs, gradients in %d buckets (%s MB), averaged through NCCL on a " ..
      "stream of their own beside the backward pass"):format(self:world_size(), s.buckets, table.concat(sizes, ", ")))
    return
  end
  output.print(("DDPStrategy: %d processes, gradients in %d buckets (%s MB); waited %.2f ms per step for the " ..
    "all-reduce after a %.1f ms backward pass; %.0f %% of the gradients were averaged during the pass")
    :format(self:world_size(), s.buckets, table.concat(sizes, ", "), 1e3 * s.wait_s / s.steps,
    1e3 * s.backward_s / s.steps, 100 * s.bytes_done_in_pass / (s.bytes * s.steps)))
end

function DDPStrategy:__tostring()
  return ("DDPStrategy(rank %d of %d, precision=%s, bucket_cap_mb=%g)"):format(self:global_rank(), self:world_size(),
    self.precision_plugin and self.precision_plugin.precision or "?", self.bucket_cap_mb)
end

return DDPStrategy
