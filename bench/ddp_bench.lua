-- Data-parallel scaling on one machine: BasicImageClassifier (32x32, 10 classes, 1.05 M parameters)
-- trained by 2 processes x 1 thread (mpirun, the DDP strategy's gradient buckets) against 1 process x 2
-- threads at the same global batch, and the all-reduce of the model's gradients over shared memory
-- and over TCP on loopback.
--   flock /tmp/lightning-bench.lock lua bench/ddp_bench.lua [--pairs 5] [--batch 64] [--steps 20]
-- The two run in pairs (bench/paired.lua): they alternate in short rounds, each pair is printed, and the
-- report is the median of the per-pair ratios 2 processes' images/s / 1 process's (the goal: >= 0.90x)
-- with their range. Each round of the 2 processes also gives the time a step waits for the all-reduce
-- once its backward pass is over (with the buckets started during the pass, and with all of them
-- started at its end: the difference is what the overlap hides): their medians over the rounds, with
-- the range. Then the all-reduce's time and bandwidth; the load average before and after says how busy
-- the machine was.
--   flock /tmp/bench.lock lua5.4 bench/ddp_bench.lua --hosts 2,3 [--pairs 3 --steps 8 --batch 96]
-- runs across network namespaces as hosts over limited and lossy links instead (root; bench/ddp_hosts.lua);
-- --links none,1gbit keeps those links only (and leaves out the lossy ones); --wire bf16 sends the
-- gradients as bf16 (DDPStrategy{gradient_dtype = "bf16"}).
-- A training step: forward, cross-entropy, backward, the gradients' mean over processes, an Adam step.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath
local L = require "lightning"
local json = require "lightning.util.json"
local Reducer = require "lightning.distributed.reducer"

local opts = {pairs = 5, batch = 64, steps = 20, worker = nil, threads = 1, overlap = 1, reps = 30, numel = 0,
  bucket = 1, hosts = nil, wire = "float32", links = nil}
local WORDS = {worker = true, hosts = true, wire = true, links = true}   -- (the options whose value is not a number)
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-([%w_]+)$")
  assert(key and opts[key] ~= nil or WORDS[key], "unknown argument " .. arg[i])
  opts[key] = WORDS[key] and arg[i + 1] or tonumber(arg[i + 1])
  i = i + 2
end

-- ---- workers (run by the driver below, one process or under mpirun) ----

local function model_and_data(batch)
  L.manual_seed(0)
  local model = L.models.BasicImageClassifier{image_size = 32}
  L.manual_seed(1 + L.distributed.rank())
  local x = L.randn(batch, 3, 32, 32)
  local classes = {}
  for j = 1, batch do classes[j] = (j * 7 + L.distributed.rank()) % 10 + 1 end
  return model, x, L.tensor(classes)
end

local function train_worker()
  L.set_num_threads(opts.threads)
  local dist = L.distributed
  local world = dist.launched() and dist.init().world_size or 1
  local model, x, y = model_and_data(opts.batch // world)
  local crit = L.nn.CrossEntropyLoss()
  local opt = L.optim.Adam(model:parameters(), {lr = 1e-3})
  local reducer
  if world > 1 then
    reducer = Reducer{module = model, overlap = opts.overlap == 1, bucket_cap_mb = opts.bucket,
      comm = {all_reduce_async = function(t) return dist.all_reduce(t, "mean", {async = true, wire = opts.wire}) end}}
    dist.broadcast(model:flat_parameters(), 0)
  end
  local function step()
    opt:zero_grad()
    local logits = model:forward(x)
    crit:forward(logits, y)
    if reducer then reducer:prepare() end
    model:backward(x, crit:backward(logits, y))
    if reducer then reducer:finish() end
    opt:step()
  end
  for _ = 1, 3 do step() end
  if world > 1 then dist.barrier() end
  local before = reducer and reducer:stats()
  local t0 = L.now()
  for _ = 1, opts.steps do step() end
  local seconds = L.now() - t0
  local global_batch = opts.batch // world * world
  local result = {images_per_s = opts.steps * global_batch / seconds, step_ms = 1e3 * seconds / opts.steps}
  if reducer then
    local s = reducer:stats()
    result.wait_ms = 1e3 * (s.wait_s - before.wait_s) / opts.steps
    result.backward_ms = 1e3 * (s.backward_s - before.backward_s) / opts.steps
    result.buckets, result.bytes = s.buckets, s.bytes
    result.started_in_pass = (s.started_in_pass - before.started_in_pass) / opts.steps
    result.hidden = (s.bytes_done_in_pass - before.bytes_done_in_pass) / (s.bytes * opts.steps)
    result.params = model:num_parameters()
  end
  if dist.rank() == 0 then print("RESULT " .. json.encode(result)) end
end

local function allreduce_worker()
  local dist = L.distributed
  local info = dist.init()
  local t = L.ones(opts.numel)
  for _ = 1, 3 do dist.all_reduce(t, "mean") end
  dist.barrier()
  local t0 = L.now()
  for _ = 1, opts.reps do dist.all_reduce(t, "mean") end
  local seconds = (L.now() - t0) / opts.reps
  local bytes = 4 * opts.numel
  local n = info.world_size
  if info.rank == 0 then
    print("RESULT " .. json.encode({ms = 1e3 * seconds, algbw = bytes / seconds / 1e9,
      busbw = bytes / seconds / 1e9 * 2 * (n - 1) / n}))
  end
end

if opts.worker == "train" then return train_worker() end
if opts.worker == "allreduce" then return allreduce_worker() end
if opts.hosts then return dofile("bench/ddp_hosts.lua")(opts) end

-- ---- the driver ----

local paired = dofile("bench/paired.lua")
local launch = L.distributed.launch
assert(L.distributed.available(), L.distributed.UNAVAILABLE)
local script = arg[0]

local function run(argv)
  local line = launch.shell_words(argv) .. " 2>&1"
  local p = io.popen(line)
  local text = p:read("a")
  p:close()
  local result = text:match("RESULT (%b{})")
  if not result then error("the benchmark's worker failed:\n" .. line .. "\n" .. text, 0) end
  return json.decode(result)
end

local function mpirun(np, worker_args, mca)
  return launch.command{nproc = np, root = launch.is_root(), cores = L.info().cpu.logical_cpus, threads = 1,
    mca = mca, script = script, args = worker_args}
end

local function single(threads)
  return run({"env", "OMP_NUM_THREADS=" .. threads, "lua5.4", script, "--worker", "train", "--threads", tostring(threads),
    "--batch", tostring(opts.batch), "--steps", tostring(opts.steps)})
end

local function ddp(overlap)
  return run(mpirun(2, {"--worker", "train", "--batch", tostring(opts.batch), "--steps", tostring(opts.steps),
    "--overlap", tostring(overlap)}))
end

local function loadavg()
  local f = io.open("/proc/loadavg")
  local text = f and f:read("l") or "?"
  if f then f:close() end
  return text:match("^(%S+ %S+ %S+)") or text
end

print(("lightning DDP benchmark: BasicImageClassifier 32x32, global batch %d, %d steps per measurement, %d pairs")
  :format(opts.batch, opts.steps, opts.pairs))
print(("%s; %d logical CPUs; load average before: %s"):format(L.info().cpu.model, L.info().cpu.logical_cpus, loadavg()))
local last
-- ours: 2 processes x 1 thread, with the buckets' all-reduce overlapping the backward pass and without
local function ddp_round()
  local b, c = ddp(1), ddp(0)
  last = b
  return {images_per_s = b.images_per_s, wait = b.wait_ms, wait_end = c.wait_ms, backward = b.backward_ms}
end
local function single_round() return {images_per_s = single(2).images_per_s} end
local result = paired.run(opts.pairs, ddp_round, single_round)

local numel = last.params
local bandwidth = {}
for _, path in ipairs({{"shared memory", {{"btl", "self,vader"}}}, {"TCP on loopback", {{"btl", "self,tcp"}}}}) do
  local times = {}
  for r = 1, 2 do
    local res = run(mpirun(2, {"--worker", "allreduce", "--numel", tostring(numel), "--reps", tostring(opts.reps)},
      path[2]))
    times[r] = res
  end
  bandwidth[#bandwidth + 1] = {path[1], times}
end
print(("load average after: %s"):format(loadavg()))
print("")
paired.report(result, {
  {ours = "images_per_s", label = "training"},
  {ours = "wait", peer = false, unit = "ms",
    label = "all-reduce wait per step, buckets started during the backward pass"},
  {ours = "wait_end", peer = false, unit = "ms", label = "all-reduce wait per step, all started at its end"},
  {ours = "backward", peer = false, unit = "ms", label = "backward pass"},
}, {ours = "2 processes x 1 thread", peer = "1 process x 2 threads"}, {unit = "images/s"})
local _, med = paired.ratios(result, "images_per_s")
print(("goal: 2 processes x 1 thread at >= 0.90x of 1 process x 2 threads: %s; %d buckets, %.2f MB, %.0f %% of it " ..
  "averaged before the backward pass ended"):format(med >= 0.9 and "met" or "MISSED", last.buckets,
    last.bytes / 2 ^ 20, 100 * last.hidden))
for _, b in ipairs(bandwidth) do
  local ms, alg, bus = {}, {}, {}
  for r, res in ipairs(b[2]) do ms[r], alg[r], bus[r] = res.ms, res.algbw, res.busbw end
  local runs = {}
  for r, v in ipairs(ms) do runs[r] = ("%.2f"):format(v) end
  print(("all-reduce of %d floats (%.1f MB) over %s, 2 processes: %.2f ms (runs %s), %.2f GB/s algorithm bandwidth, " ..
    "%.2f GB/s bus bandwidth"):format(numel, 4 * numel / 2 ^ 20, b[1], paired.median(ms), table.concat(runs, ", "),
    paired.median(alg), paired.median(bus)))
end
