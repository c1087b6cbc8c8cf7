--- Reducer: a model's gradients averaged over processes in buckets that start their all-reduce while the
-- backward pass still runs (PyTorch DDP's Reducer, Horovod's tensor fusion).
--   local r = Reducer{module = model, comm = comm, bucket_cap_mb = 1, overlap = true}
--   r:prepare()     before a backward pass whose gradients are to be averaged (the last micro-batch
--                   of an accumulation group); watches the pass through lightning.nn.backward_hook
--   r:finish()      after it: starts the buckets not started yet, waits for all; the gradients are
--                   then the mean over processes
--   r:stats()       what the reductions cost (see below); r:teardown()
-- The parameters are flattened (Module:flatten_parameters), so a bucket is a contiguous slice of the
-- flat gradient: no copies in or out. Buckets take whole parameters in reverse order of registration
-- (the order the backward pass finishes them), each closed once it holds bucket_cap_mb; the first one
-- holds the model's last layers. A bucket is ready when every module that owns one of its parameters
-- has reported the end of its backward pass (backward_hook.done); ready buckets start in bucket order
-- only (a later one waits for an earlier one), so every process starts the same reductions in the same
-- order, as MPI requires. A parameter no hook reported (a model whose backward calls no hook, a layer
-- that did not run) is final when the pass ends: finish() starts what is left. MPI progresses the
-- reductions in flight when they are tested: each hook tests them.
-- comm: {all_reduce_async = function(tensor) --> work with test() and wait()} (the mean over processes).
local L = require "lightning"
local class = require "lightning.class"
local options = require "lightning.util.options"
local backward_hook = require "lightning.nn.backward_hook"

local Reducer = class("Reducer")

local MB = 1024 * 1024

-- The buckets, from the last parameter back: {params = indices (descending), offset, numel}. Parameters
-- without elements belong to none.
local function plan_buckets(sizes, offsets, cap_elements)
  local buckets = {}
  local current
  for i = #sizes, 1, -1 do
    if sizes[i] > 0 then
      if not current then
        current = {params = {}, numel = 0}
        buckets[#buckets + 1] = current
      end
      current.params[#current.params + 1] = i
      current.numel = current.numel + sizes[i]
      current.offset = offsets[i]
      if current.numel >= cap_elements then current = nil end
    end
  end
  return buckets
end
Reducer.plan_buckets = plan_buckets

function Reducer:__init(opts)
  self.module, self.comm = opts.module, opts.comm
  self.bucket_cap_mb = opts.bucket_cap_mb or 1
  self.overlap = opts.overlap ~= false
  self:_build()
  self._stats = {steps = 0, wait_s = 0, backward_s = 0, started_in_pass = 0, buckets_started = 0, bytes_done_in_pass = 0}
end

-- Flattens the parameters and lays out the buckets and who owns which parameter.
function Reducer:_build()
  local params = self.module:parameters()
  local flat_params, flat_grads = self.module:flatten_parameters()
  self.params, self.flat_params, self.flat_grads = params, flat_params, flat_grads
  local index, sizes, offsets, at = {}, {}, {}, 0
  for i, p in ipairs(params) do
    index[p], sizes[i], offsets[i] = i, p:numel(), at
    at = at + p:numel()
  end
  self.buckets = plan_buckets(sizes, offsets, math.max(1, math.floor(self.bucket_cap_mb * MB / 4)))
  self.bucket_of = {}
  for b, bucket in ipairs(self.buckets) do
    bucket.grad = flat_grads:narrow(1, bucket.offset + 1, bucket.numel)
    for _, i in ipairs(bucket.params) do self.bucket_of[i] = b end
  end
  -- module -> the indices of the parameters of its subtree: a report of m finishes all of them
  self.owned = setmetatable({}, {__mode = "k"})
  for _, m in ipairs(self.module:modules()) do
    local list = {}
    for _, p in ipairs(m:parameters()) do
      if index[p] and self.bucket_of[index[p]] then list[#list + 1] = index[p] end
    end
    if #list > 0 then self.owned[m] = list end
  end
  self.ready = {}
end

--- The buckets' sizes in bytes, in the order they start.
function Reducer:bucket_bytes()
  local list = {}
  for i, b in ipairs(self.buckets) do list[i] = 4 * b.numel end
  return list
end

-- Starts ready buckets in order; tests the ones in flight (MPI progresses them then).
function Reducer:_progress()
  local buckets = self.buckets
  while self.next_start <= #buckets and buckets[self.next_start].pending == 0 do
    self:_start(self.next_start)
  end
  -- (one test progresses every operation in flight: MPI's progress engine is per process)
  for b = self.first_unfinished, self.next_start - 1 do
    if not buckets[b].work:test() then break end
    self.first_unfinished = b + 1
  end
end

function Reducer:_start(b)
  local bucket = self.buckets[b]
  bucket.work = self.comm.all_reduce_async(bucket.grad)
  self.next_start = b + 1
  self._stats.buckets_started = self._stats.buckets_started + 1
  if self.in_pass then self._stats.started_in_pass = self._stats.started_in_pass + 1 end
end

-- A module finished its backward pass: its parameters' gradients are final.
function Reducer:_on_done(m)
  local list = self.owned[m]
  if not list then return end
  local ready, changed = self.ready, false
  for _, i in ipairs(list) do
    if not ready[i] then
      ready[i] = true
      local bucket = self.buckets[self.bucket_of[i]]
      bucket.pending = bucket.pending - 1
      changed = true
    end
  end
  if changed and self.overlap then self:_progress() end
end

--- Before a backward pass whose gradients are averaged.
function Reducer:prepare()
  if self.active then options.fail("Reducer:prepare", "a reduction is in progress (finish() was not called)") end
  if not self.module:flat_parameters() then self:_build() end  -- a parameter or gradient was replaced
  for i in pairs(self.ready) do self.ready[i] = false end
  for _, bucket in ipairs(self.buckets) do bucket.pending, bucket.work = #bucket.params, nil end
  self.next_start, self.first_unfinished = 1, 1
  self.active, self.in_pass = true, true
  self._pass_started = L.now()
  self._previous_watcher = backward_hook.set(function(m) if self.active then self:_on_done(m) end end)
end

--- After the backward pass: starts what is left, waits for every bucket.
function Reducer:finish()
  if not self.active then return end
  self.in_pass = false
  local waiting = L.now()
  backward_hook.set(self._previous_watcher)
  local ok, err = pcall(function()
    -- what the pass hid: the bytes whose reduction was over when the pass ended
    for b = 1, self.next_start - 1 do
      if self.buckets[b].work:test() then self._stats.bytes_done_in_pass = self._stats.bytes_done_in_pass + 4 * self.buckets[b].numel end
    end
    while self.next_start <= #self.buckets do self:_start(self.next_start) end
    for _, bucket in ipairs(self.buckets) do bucket.work:wait() end
  end)
  self.active = false
  if not ok then error(err, 0) end
  local done = L.now()
  local s = self._stats
  s.steps = s.steps + 1
  s.wait_s = s.wait_s + (done - waiting)
  s.backward_s = s.backward_s + (waiting - self._pass_started)
end

--- {steps, buckets, bucket_bytes, bytes (per step), wait_s (total time blocked in finish), backward_s (total
-- time of the passes before it), started_in_pass (buckets started while a pass still ran), buckets_started,
-- bytes_done_in_pass (of the reductions over by the end of their pass: what the overlap hid)}
function Reducer:stats()
  local s = {}
  for k, v in pairs(self._stats) do s[k] = v end
  s.buckets, s.bucket_bytes = #self.buckets, self:bucket_bytes()
  s.bytes = 0
  for _, b in ipairs(s.bucket_bytes) do s.bytes = s.bytes + b end
  return s
end

--- Leaves the backward pass alone again (also after an error inside it).
function Reducer:teardown()
  if self.active then
    backward_hook.set(self._previous_watcher)
    self.active = false
  end
end

return Reducer
