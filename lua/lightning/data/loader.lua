--- DataLoader{dataset, batch_size = 1, shuffle = false, drop_last = false, num_workers = 0, seed, sampler, device}
--   #loader                          number of batches per epoch
--   for i, batch in loader:iter() do -- batch.input (B, C, H, W), batch.target (B): classes 1..K as floats
-- A data set whose samples and transforms are all in C loads in C: with num_workers > 0, worker threads
-- prepare batches ahead into a small ring of reused buffers. A batch is valid until the next step of the
-- loop: its tensors are then closed and their memory goes back to the workers (clone() what you keep; the
-- last batch seen stays valid after a break). Other data sets (Lua tables, Lua transforms) load on the
-- calling thread. The shuffle order and augmentation come from the global generator (L.manual_seed)
-- unless seed is given, are redrawn at each iter() (each epoch), and do not depend on num_workers.
-- sampler: a DistributedSampler (lightning/data/sampler.lua): this process's share of each epoch in a
-- data-parallel run; it then holds shuffle and seed (the loader's own must be left out). batch_size is
-- per process.
-- device = "cuda" (or "gpu"): the data set's bytes are put on the GPU once and each batch is made there
-- (flips, crops, pads and Normalize run on the device; only a batch's draws and targets cross), holding
-- the same values as on the host for the same seed, epoch and order; batches are then GPU tensors. It
-- needs a data set held in memory (CIFAR-10, MNIST, Fashion-MNIST) whose transforms are all flips, crops,
-- pads and at most one Normalize; num_workers is not used there. "cpu" (or nil): the host loader.
-- loader:set_epoch(e) makes the next iter() epoch e (PyTorch's sampler.set_epoch; the Trainer calls it
-- with its current epoch): the epoch seeds the order when seed is given, and transforms such as the
-- alternating flip see it.
local L = require "lightning"
local U = require "lightning.util.checks"
local Dataset = require "lightning.data.dataset"
local DistributedSampler = require "lightning.data.sampler"

local core = L.core.data

local DataLoader = {}
DataLoader.__index = DataLoader
DataLoader.__name = "DataLoader"

local fname = "lightning.data.DataLoader"

local function check_dataset(ds)
  if Dataset.is_dataset(ds) then return end
  local mt = getmetatable(ds)
  if type(ds) ~= "table" and not (mt and mt.__len and mt.__index) then
    U.fail(fname, "dataset must be a data set (#ds and ds[i]), got %s", U.describe(ds))
  end
end

--- DataLoader(dataset, opts) or DataLoader{dataset = ..., batch_size = ..., ...}
local function new(_, dataset, opts)
  if opts == nil and type(dataset) == "table" and not Dataset.is_dataset(dataset) and #dataset == 0
      and next(dataset) ~= nil and type(next(dataset)) == "string" then
    opts, dataset = dataset, dataset.dataset  -- the one-table form {dataset = ..., batch_size = ...}
  end
  opts = U.check_options(fname, opts, {"dataset", "batch_size", "shuffle", "drop_last", "num_workers", "seed", "sampler",
    "device"})
  if dataset == nil then U.fail(fname, "a dataset is required") end
  check_dataset(dataset)
  local self = setmetatable({
    dataset = dataset,
    batch_size = opts.batch_size == nil and 1 or U.positive_int(fname, "batch_size", opts.batch_size),
    shuffle = U.boolean(fname, "shuffle", opts.shuffle, false),
    drop_last = U.boolean(fname, "drop_last", opts.drop_last, false),
    num_workers = opts.num_workers == nil and 0 or U.nonneg_int(fname, "num_workers", opts.num_workers),
    _epoch = 0,
  }, DataLoader)
  if opts.seed ~= nil then
    if math.type(opts.seed) ~= "integer" then U.fail(fname, "seed must be an integer, got %s", U.describe(opts.seed)) end
    self.seed = opts.seed
  end
  if self.num_workers > 64 then U.fail(fname, "num_workers must be at most 64, got %d", self.num_workers) end
  if opts.sampler ~= nil then
    if not DistributedSampler.is_sampler(opts.sampler) then
      U.fail(fname, "sampler must be a lightning.data.DistributedSampler, got %s", U.describe(opts.sampler))
    end
    if opts.shuffle ~= nil or opts.seed ~= nil then
      U.fail(fname, "shuffle and seed are the sampler's when a sampler is given: leave them out of the loader")
    end
    self.sampler, self.shuffle, self.seed = opts.sampler, opts.sampler.shuffle, opts.sampler.seed
  end
  local device = opts.device
  if device ~= nil and type(device) ~= "string" then U.fail(fname, "device must be a device name, got %s", U.describe(device)) end
  if device == "cpu" then device = nil end
  if Dataset.is_dataset(dataset) and dataset:runs_in_c() then
    self._c = core.loader(dataset._c, dataset:c_pipeline() or nil, self.batch_size, self.drop_last, self.num_workers,
      device)
    self.device = device
  elseif device then
    U.fail(fname, "batches on %s need a C data set with C transforms (CIFAR10, MNIST, FashionMNIST), got %s", device,
      Dataset.is_dataset(dataset) and tostring(dataset) or U.describe(dataset))
  end
  return self
end

--- Whether batches are made in C (worker threads when num_workers > 0) rather than on the Lua thread.
function DataLoader:runs_in_c() return self._c ~= nil end

function DataLoader:__len()
  local n = #self.dataset
  if self.sampler then n = self.sampler:num_samples(n) end
  if self.drop_last then return n // self.batch_size end
  return (n + self.batch_size - 1) // self.batch_size
end

function DataLoader:__tostring()
  return ("DataLoader(%s, batch_size=%d, shuffle=%s, num_workers=%d%s%s)"):format(tostring(self.dataset), self.batch_size,
    tostring(self.shuffle), self.num_workers, self.sampler and (", " .. tostring(self.sampler)) or "",
    self.device and (", made on " .. self.device) or self._c and "" or ", on the Lua thread")
end

--- The epoch the next iter() runs (epochs count from 0, one per iter()).
function DataLoader:set_epoch(epoch)
  if math.type(epoch) ~= "integer" or epoch < 0 then
    U.fail(fname .. ":set_epoch", "epoch must be a non-negative integer, got %s", U.describe(epoch))
  end
  self._epoch = epoch
end

-- The input and target of sample i of a Lua data set (or a Dataset with Lua transforms).
local function lua_sample(ds, i, aug_seed, epoch)
  if Dataset.is_dataset(ds) then return ds:load(i, aug_seed, epoch) end
  local s = ds[i]
  if type(s) ~= "table" then U.fail(fname, "dataset[%d] must be a table {input = tensor, target = class}, got %s", i, U.describe(s)) end
  local input, target = s.input or s[1], s.target or s[2]
  if L.is_tensor(target) then target = target:item() end
  return input, target
end

-- Batches assembled on the Lua thread.
local function lua_iter(self)
  local ds, bs = self.dataset, self.batch_size
  local epoch = self._epoch
  local order, aug_seed = core.epoch_plan(#ds, self.shuffle, self.seed, epoch,
    self.sampler and self.sampler:shard())
  local n = #order
  self._epoch = epoch + 1
  local nbatches = #self
  local b = 0
  return function()
    if b >= nbatches then return nil end
    local first = b * bs
    local count = math.min(bs, n - first)
    local input, shape
    local targets = {}
    for j = 1, count do
      local idx = order[first + j]
      local x, y = lua_sample(ds, idx, aug_seed, epoch)
      if not L.is_tensor(x) then U.fail(fname, "sample %d: input must be a tensor, got %s", idx, U.describe(x)) end
      if type(y) ~= "number" then U.fail(fname, "sample %d: target must be a class number, got %s", idx, U.describe(y)) end
      if not input then
        shape = x:size()
        local size = {count}
        for d = 1, #shape do size[d + 1] = shape[d] end
        input = L.empty(size)
      elseif x:size() ~= shape then
        U.fail(fname, "sample %d has size %s, the batch's first sample %s", idx, tostring(x:size()), tostring(shape))
      end
      input:select(1, j):copy(x)
      targets[j] = y
    end
    b = b + 1
    return b, {input = input, target = L.tensor(targets)}
  end
end

--- Iterates over one epoch: for i, batch in loader:iter() do ... end. Leaving the loop early stops the
-- workers.
function DataLoader:iter()
  if not self._c then return lua_iter(self) end
  local c = self._c
  local gen = c:start(self.shuffle, self.seed, self._epoch, self.sampler and self.sampler:shard())
  self._epoch = self._epoch + 1
  local i = 0
  local function stop() c:stop(gen) end
  -- to-be-closed by the generic for (break, error or end); collected otherwise
  local closer = setmetatable({}, {__close = stop, __gc = stop})
  return function()
    local _ = closer  -- the step function keeps the closer alive: collecting both stops the workers
    local input, target = c:next(gen)
    if not input then return nil end
    i = i + 1
    return i, {input = input, target = target}
  end, nil, nil, closer
end

--- The shape of one sample as batched (C, H, W), for C loaders.
function DataLoader:sample_shape()
  if self._c then return self._c:sample_shape() end
  return nil
end

return setmetatable(DataLoader, {__call = new})
