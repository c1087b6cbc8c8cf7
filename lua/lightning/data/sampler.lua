--- DistributedSampler{num_replicas, rank, shuffle = true, seed, drop_last = false, draw}: which samples of
-- each epoch one process of a data-parallel run reads, PyTorch's DistributedSampler's rules. Given to a
-- DataLoader (DataLoader(ds, {batch_size = 32, sampler = s})); the "ddp" strategy makes one for each
-- loader of the run, so users rarely do.
--   * The epoch's order is the one the loader would draw in one process: from (seed, epoch) with a seed
--     (PyTorch's seed + epoch, the epoch counting the loader's iterations), else from one value of the
--     global generator. With `draw` (a function returning that value: the strategy's broadcast of
--     global rank 0's draw), every process uses the same value, so they agree on the order even when
--     their generators differ; without it each process draws from its own (seed them alike).
--   * Without drop_last the order is padded by repeating its start until it splits evenly: every
--     process gets ceil(n / num_replicas) samples (a few read twice). With drop_last the tail is cut:
--     floor(n / num_replicas) each.
--   * Process `rank` takes every num_replicas-th sample from position rank on. So with batch_size b per
--     process, the k-th batches of all processes hold the k-th batch of one process reading
--     b * num_replicas: N processes at batch b see the data of one process at batch N x b.
-- Augmentation is seeded per sample, so a sample gets the same augmentation on any process.
local options = require "lightning.util.options"

local DistributedSampler = {}
DistributedSampler.__index = DistributedSampler
DistributedSampler.__name = "DistributedSampler"

local NAME = "lightning.data.DistributedSampler"

local SPECS = {
  num_replicas = {kind = "integer", min = 1},
  rank = {kind = "integer", min = 0},
  shuffle = {kind = "boolean", default = true},
  seed = {kind = "integer"},
  drop_last = {kind = "boolean", default = false},
  draw = {kind = "function"},
}

local function new(_, opts)
  local o = options.check(NAME, opts, SPECS)
  if o.num_replicas == nil or o.rank == nil then
    options.fail(NAME, "num_replicas and rank are required (the number of processes and this one's rank)")
  end
  if o.rank >= o.num_replicas then
    options.fail(NAME, "rank must be in [0, num_replicas) = [0, %d), got %d", o.num_replicas, o.rank)
  end
  return setmetatable(o, DistributedSampler)
end

function DistributedSampler.is_sampler(x)
  return getmetatable(x) == DistributedSampler
end

--- Samples per process per epoch for a data set of n.
function DistributedSampler:num_samples(n)
  if self.drop_last then return n // self.num_replicas end
  return (n + self.num_replicas - 1) // self.num_replicas
end

--- The shard argument of the C loader's start for one epoch ({rank, replicas, drop_last, draw}); draw is
-- the shared generator value (nil with a seed, or without a draw function).
function DistributedSampler:shard()
  local draw = nil
  if self.seed == nil and self.draw then draw = self.draw() end
  return {rank = self.rank, replicas = self.num_replicas, drop_last = self.drop_last, draw = draw}
end

function DistributedSampler:__tostring()
  return ("DistributedSampler(rank %d of %d, shuffle=%s, drop_last=%s)"):format(self.rank, self.num_replicas,
    tostring(self.shuffle), tostring(self.drop_last))
end

return setmetatable(DistributedSampler, {__call = new})
