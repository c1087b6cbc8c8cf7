-- One process of the distributed specs (spec/distributed_mpi_spec.lua starts them with mpirun):
--   lua5.4 spec/distributed/worker.lua <scenario> '<JSON options>'
-- Each process writes what the spec checks into options.out: rank_<r>.json, and rank 0 the final
-- weights (weights.safetensors); assertions that fail raise, and the job fails.
local L = require "lightning"
local json = require "lightning.util.json"
local values = require "lightning.distributed.values"
local T = require "distributed.training"
local H = require "helpers"

local dist = L.distributed
local scenario, o = arg[1], values.decode(arg[2] or "{}")

local function write(name, text)
  local f = assert(io.open(o.out .. "/" .. name, "wb"))
  f:write(text)
  f:close()
end

local function report(value)
  write(("rank_%d.json"):format(dist.rank()), values.encode(value))
end

local function same(a, b, what)
  assert(json.encode(a) == json.encode(b), ("%s: %s ~= %s"):format(what, json.encode(a), json.encode(b)))
end

local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

local scenarios = {}

-- The API of L.distributed, checked on every process.
function scenarios.collectives()
  local info = dist.init()
  local r, n = info.rank, info.world_size
  assert(dist.is_initialized() and dist.rank() == r and dist.world_size() == n)
  -- local ranks count the processes of a host (per_host each, in rank order); on one machine, all of them
  local per_host = o.per_host or n
  assert(info.local_rank == r % per_host and info.local_world_size == per_host,
    ("local rank %d of %d on rank %d"):format(info.local_rank, info.local_world_size, r))
  assert(info.library:match("Open MPI"), info.library)
  -- tensors in place: sum, mean, max, min
  local t = L.tensor{1, 2, 3}:mul(r + 1)
  assert(dist.all_reduce(t, "sum") == t)
  local tri = n * (n + 1) / 2
  same(t:totable(), {tri, 2 * tri, 3 * tri}, "sum")
  t = L.tensor{r, -r}
  dist.all_reduce(t, "mean")
  same(t:totable(), {(n - 1) / 2, -(n - 1) / 2}, "mean")
  t = L.tensor{r, -r}
  dist.all_reduce(t, "max")
  same(t:totable(), {n - 1, 0}, "max")
  dist.all_reduce(t:fill(r), "min")
  same(t:totable(), {0, 0}, "min")
  -- a view into a larger tensor reduces in place (a bucket is a narrow of the flat gradient)
  local flat = L.ones(10)
  dist.all_reduce(flat:narrow(1, 3, 4), "sum")
  same(flat:totable(), {1, 1, n, n, n, n, 1, 1, 1, 1}, "narrow")
  -- int64 and float64 buffers, numbers and lists
  local b = L.buffer("int64", 2)
  b[1], b[2] = (1 << 40) + r, r
  dist.all_reduce(b, "sum")
  same(b:totable(), {n * (1 << 40) + n * (n - 1) // 2, n * (n - 1) // 2}, "int64")
  local d = L.buffer("float64", 1)
  d[1] = 0.1 * (r + 1)
  dist.all_reduce(d, "max")
  assert(d[1] == 0.1 * n)
  assert(math.type(dist.all_reduce(r, "sum")) == "integer" and dist.all_reduce(r, "sum") == n * (n - 1) // 2)
  same(dist.all_reduce({1, r, 2.5}, "max"), {1.0, n - 1.0, 2.5}, "list")
  same(dist.all_reduce({2, 4}, "mean"), {2.0, 4.0}, "mean of integers")
  -- not blocking
  local a = L.ones(1000):mul(r)
  local work = dist.all_reduce(a, "mean", {async = true})
  assert(work:wait() == a and work:is_completed() and work:test())
  assert(a[1000] == (n - 1) / 2)
  local works = {}
  for k = 1, 4 do works[k] = dist.all_reduce(L.ones(100000):mul(k), "sum", {async = true}) end
  for k = 4, 1, -1 do assert(works[k]:wait()[1] == k * n) end
  -- bf16 on the wire: each value rounded to bf16, the sum in bf16, widened back (one process's bits
  -- whatever the rank); 1 + 2^-9 rounds to 1 in bf16, so a float32 reduction would give n + n * 2^-9
  local h = L.ones(300001):mul(1 + 2 ^ -9)
  h[1] = r + 1
  assert(dist.all_reduce(h, "sum", {async = true, wire = "bf16"}):wait() == h)
  assert(h[2] == n and h[300001] == n, ("bf16 sum of 1 + 2^-9: %.9g"):format(h[2]))
  assert(h[1] == n * (n + 1) / 2)   -- small integers are exact in bf16
  local m = L.tensor{0.1 * (r + 1), -3}
  dist.all_reduce(m, "mean", {async = true, wire = "bf16"}):wait()
  assert(math.abs(m[1] - 0.05 * (n + 1)) <= 0.05 * (n + 1) * 2 ^ -7 and m[2] == -3, "bf16 mean")
  assert(error_of(dist.all_reduce, L.ones(2), "max", {async = true, wire = "bf16"}):match("only sum and mean travel as bf16"))
  assert(error_of(dist.all_reduce, L.ones(2), "sum", {wire = "bf16"}):match('{wire = "bf16"} is for async reductions'))
  assert(error_of(dist.all_reduce, L.ones(2), "sum", {async = true, wire = "fp8"}):match('wire must be "bf16" or "float32", got "fp8"'))
  assert(error_of(dist.all_reduce, L.buffer("float64", 1), "sum", {async = true, wire = "bf16"})
    :match("must be a float32 tensor to travel as bf16"))
  -- broadcast: tensors in place, Lua values as rank src has them
  local bt = L.tensor{r, r}
  dist.broadcast(bt, n - 1)
  same(bt:totable(), {n - 1, n - 1}, "broadcast tensor")
  local value = dist.broadcast(r == 0 and {name = "x", list = {1, 2.5, 0 / 0 == 0 / 0}, big = 1 << 62,
    nan = 0 / 0, inf = -math.huge, nested = {{a = 1}}} or nil, 0)
  assert(value.name == "x" and value.list[2] == 2.5 and value.list[3] == false and value.big == 1 << 62)
  assert(math.type(value.list[1]) == "integer" and value.nan ~= value.nan and value.inf == -math.huge)
  assert(value.nested[1].a == 1)
  assert(dist.broadcast(nil, 0) == nil)
  -- all_gather
  local all = dist.all_gather({rank = r, text = ("x"):rep(r * 1000)})
  assert(#all == n)
  for k = 1, n do assert(all[k].rank == k - 1 and #all[k].text == (k - 1) * 1000) end
  same(dist.all_gather(0.1 + r), (function() local l = {} for k = 1, n do l[k] = 0.1 + (k - 1) end return l end)(), "gather")
  dist.barrier()
  -- errors: named and the same on every process
  assert(error_of(dist.all_reduce, L.randn(3, 4):t(), "sum"):match("must be a contiguous tensor"))
  assert(error_of(dist.all_reduce, L.ones(2), "avg"):match('the operation must be "sum", "mean", "max" or "min", got "avg"'))
  assert(error_of(dist.all_reduce, "x"):match("must be a tensor or a buffer"))
  assert(error_of(dist.all_reduce, L.buffer("int64", 1), "mean"):match("the mean of int64 values is not an int64"))
  assert(error_of(dist.broadcast, 1, n):match("src must be a rank from 0 to " .. (n - 1)))
  assert(error_of(dist.all_reduce, {1, "x"}):match("element 2 must be a number"))
  assert(error_of(dist.all_gather, {f = print}):match("a function cannot be sent"))
  assert(error_of(dist.all_reduce, {1}, "sum", {async = true}):match("async reductions take a tensor or a buffer"))
  report({ok = true, rank = r})
end

-- The collectives of GPU tensors (L.distributed routes them to L.cuda.comm: NCCL on a GPU, MPI behind the
-- specs' stand-in device), checked on every process.
function scenarios.device_collectives()
  local info = dist.init()
  local r, n = info.rank, info.world_size
  assert(L.cuda.comm.joined() == nil, "no group before the first collective of a GPU tensor")
  local t = L.tensor{1, 2, 3}:mul(r + 1):cuda()
  assert(dist.all_reduce(t, "sum") == t and t:device() == "cuda:0")
  local tri = n * (n + 1) / 2
  same(t:totable(), {tri, 2 * tri, 3 * tri}, "sum")
  local jr, jn = L.cuda.comm.joined()
  assert(jr == r and jn == n, "joined as the MPI rank")
  t = L.tensor{r, -r}:cuda()
  same(dist.all_reduce(t, "mean"):totable(), {(n - 1) / 2, -(n - 1) / 2}, "mean")
  same(dist.all_reduce(L.tensor{r, -r}:cuda(), "max"):totable(), {n - 1, 0}, "max")
  same(dist.all_reduce(L.tensor{r, -r}:cuda(), "min"):totable(), {0, -(n - 1)}, "min")
  -- a bucket: a narrow of a flat gradient, not blocking
  local flat = L.ones(10):cuda()
  local work = dist.all_reduce(flat:narrow(1, 3, 4), "sum", {async = true})
  assert(work:wait():numel() == 4 and work:test() and work:is_completed())
  same(flat:totable(), {1, 1, n, n, n, n, 1, 1, 1, 1}, "narrow")
  local works = {}
  for k = 1, 3 do works[k] = dist.all_reduce(L.ones(100000):mul(k):cuda(), "mean", {async = true}) end
  for k = 3, 1, -1 do assert(works[k]:wait():cpu()[100000] == k) end
  -- broadcast: a tensor in place from the last rank; Lua values still through MPI
  local bt = L.tensor{r, r}:cuda()
  dist.broadcast(bt, n - 1)
  same(bt:totable(), {n - 1, n - 1}, "broadcast")
  assert(dist.broadcast(r == 0 and "from 0" or nil, 0) == "from 0")
  -- host tensors beside them still go through MPI
  same(dist.all_reduce(L.tensor{r}, "sum"):totable(), {n * (n - 1) / 2}, "host")
  -- errors: named, the same on every process
  assert(error_of(dist.all_reduce, L.ones(2):cuda(), "sum", {async = true, wire = "bf16"})
    :match('{wire = "bf16"} is for tensors on the host'))
  assert(error_of(dist.all_reduce, L.randn(3, 4):cuda():t(), "sum"):match("takes a contiguous tensor"))
  assert(error_of(dist.all_reduce, L.ones(2):cuda(), "avg"):match('the operation must be "sum", "mean", "max" or "min"'))
  assert(error_of(L.cuda.comm.init, L.cuda.comm.unique_id(), r, n):match("already joined a group"))
  report({ok = true, rank = r})
end

-- nn.SyncBatchNorm on this process's part of a batch against nn.BatchNorm on all of it, for (N, C),
-- (N, C, L) and (N, C, H, W) inputs: outputs and input gradients (this process's rows), parameter
-- gradients (added over processes, as the strategy's averaging of N processes' losses adds them) and
-- running statistics. Each process reports the largest relative differences.
function scenarios.syncbn()
  local info = dist.init()
  local r, n = info.rank, info.world_size
  local worst = {}
  for _, shape in ipairs({{12, 5}, {12, 3, 7}, {12, 4, 5, 3}}) do
    L.manual_seed(3)
    local x = L.randn(table.unpack(shape)):mul(3):add(10)   -- (a mean far from 0: the sums must not cancel)
    local gy = L.randn(table.unpack(shape))
    local C = shape[2]
    local ref = #shape == 4 and L.nn.BatchNorm2d(C) or L.nn.BatchNorm1d(C)
    ref.weight:copy(L.randn(C)); ref.bias:copy(L.randn(C))
    local sync = L.nn.SyncBatchNorm(C)
    sync.weight:copy(ref.weight); sync.bias:copy(ref.bias)
    local part = shape[1] // n
    local function mine(t) return t:narrow(1, r * part + 1, part):clone() end
    local y, gx
    for _ = 1, 2 do   -- (twice: the running statistics move twice)
      y = ref:forward(x):clone()
      ref.weight.grad:zero(); ref.bias.grad:zero()
      gx = ref:backward(x, gy):clone()
      sync.weight.grad:zero(); sync.bias.grad:zero()
      sync:forward(mine(x))
      sync:backward(mine(x), mine(gy))
    end
    dist.all_reduce(sync.weight.grad, "sum")
    dist.all_reduce(sync.bias.grad, "sum")
    local key = #shape .. "d"
    worst[key] = {output = H.max_rel_diff(sync.output, mine(y)), grad_input = H.max_rel_diff(sync.grad_input, mine(gx)),
      grad_weight = H.max_rel_diff(sync.weight.grad, ref.weight.grad), grad_bias = H.max_rel_diff(sync.bias.grad, ref.bias.grad),
      running_mean = H.max_rel_diff(sync.running_mean, ref.running_mean),
      running_var = H.max_rel_diff(sync.running_var, ref.running_var)}
  end
  report(worst)
end

-- Training with the Trainer: what the spec compares with one process.
function scenarios.fit()
  local trainer, model = T.fit({kind = o.kind, batch = o.batch, epochs = o.epochs, accumulate = o.accumulate, root = o.out,
    checkpoint = o.checkpoint, loggers = o.loggers, early_stopping = o.early_stopping, ckpt_path = o.ckpt_path,
    bucket_cap_mb = o.bucket_cap_mb, timeout = o.timeout, gradient_dtype = o.gradient_dtype, samples = o.samples,
    accelerator = o.accelerator, sync_batchnorm = o.sync_batchnorm, precision = o.precision,
    callbacks = {{
      on_train_epoch_end = function(_, tr)
        if tr.current_epoch == o.kill_at_epoch and tr.global_rank == o.kill_rank then
          write("killed_at", tostring(L.now()))
          local stat = io.open("/proc/self/stat"):read("l")
          os.execute("kill -9 " .. stat:match("^(%d+)"))
        end
      end,
      on_train_batch_end = function(_, tr)
        if tr.global_step == o.fail_at_step and tr.global_rank == o.fail_rank then error("failing on purpose", 0) end
        if tr.global_step == o.stall_at_step and tr.global_rank == o.stall_rank then
          -- stuck in work of its own (not in MPI) while the others wait in the next all-reduce
          write("stalled_at", tostring(L.now()))
          local until_s = L.now() + 120
          while L.now() < until_s do end
        end
        if tr.global_step == o.kill_host_at_step and tr.global_rank == o.kill_host_rank then
          -- every process of this host (this network namespace) killed, this one last
          write("killed_at", tostring(L.now()))
          local me = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
          local p = io.popen("ip netns pids \"$(ip netns identify)\"")
          for pid in p:lines() do
            local f = io.open("/proc/" .. pid .. "/cmdline")
            local cmdline = f and f:read("a") or ""
            if f then f:close() end
            if pid ~= me and cmdline:find("worker.lua", 1, true) then os.execute("kill -9 " .. pid) end
          end
          p:close()
          os.execute("kill -9 " .. me)
        end
        if tr.global_step == o.kill_mpirun_at_step and tr.global_rank == o.kill_mpirun_rank then
          -- mpirun killed: the first process named mpirun above this one
          local pid = io.open("/proc/self/stat"):read("l"):match("^%d+ %b() %a (%d+)")
          while pid and pid ~= "1" do
            local comm = io.open("/proc/" .. pid .. "/comm"):read("l")
            if comm == "mpirun" then break end
            pid = io.open("/proc/" .. pid .. "/stat"):read("l"):match("^%d+ %b() %a (%d+)")
          end
          assert(pid and pid ~= "1", "no mpirun above this process")
          write("killed_at", tostring(L.now()))
          write("mpirun_pid", pid)
          os.execute("kill -9 " .. pid)
        end
        if tr.global_step == o.flap_at_step and tr.global_rank == o.flap_rank then
          -- this host's link goes down for flap_seconds while training goes on
          write("flap_at", tostring(L.now()))
          assert(os.execute(("(sleep %g; ip link set eth0 down; sleep %g; ip link set eth0 up) >/dev/null 2>&1 &")
            :format(o.flap_after or 0, o.flap_seconds)))
          if o.flap_after then os.execute(("sleep %g"):format(o.flap_after + o.flap_seconds + 2)) end
        end
        if tr.global_step == o.link_down_at_step and tr.global_rank == o.link_down_rank then
          -- this host's link to the others goes down (the spec made its namespace)
          write("link_down_at", tostring(L.now()))
          assert(os.execute("ip link set eth0 down"))
        end
      end}}})
  local summary = T.summary(trainer)
  -- where the process ran: its host's share of the processes, and its network namespace if any
  summary.local_rank, summary.local_world_size = dist.local_rank(), dist.local_world_size()
  local p = io.popen("ip netns identify 2>/dev/null")
  summary.netns = p:read("l") or ""
  p:close()
  report(summary)
  if trainer.is_global_zero then L.save_safetensors(o.out .. "/weights.safetensors", model:cpu():state_dict()) end
end

-- Process 1 builds a larger model: every process must refuse to train.
function scenarios.mismatch()
  local model = T.model("plain")
  if dist.rank() == 1 then model.net:add(L.nn.Linear(T.CLASSES, T.CLASSES)) end
  local trainer = L.Trainer{max_epochs = 1, logger = false, enable_checkpointing = false, enable_progress_bar = false,
    enable_model_summary = false, default_root_dir = o.out}
  local ok, err = pcall(trainer.fit, trainer, model, L.data.DataLoader(T.dataset(8, 1, 8), {batch_size = 2}))
  assert(not ok, "the processes trained with different models")
  report({error = tostring(err)})
end

-- Processes whose loops would differ: rank 1 at batch size 4 instead of 8, with 48 samples instead of
-- 64, with max_epochs 3 instead of 2, testing on 48 samples instead of 64. Every process must refuse,
-- naming the ranks and values, instead of waiting for ever for the other.
function scenarios.disagree()
  local r = dist.rank()
  local function trainer(epochs)
    return L.Trainer{max_epochs = epochs, logger = false, enable_checkpointing = false, enable_progress_bar = false,
      enable_model_summary = false, default_root_dir = o.out}
  end
  local function loader(samples, batch) return L.data.DataLoader(T.dataset(samples, 1, 8), {batch_size = batch}) end
  local cases = {
    function() local t = trainer(1) return t.fit, t, T.model("plain"), loader(64, r == 1 and 4 or 8) end,
    function() local t = trainer(1) return t.fit, t, T.model("plain"), loader(r == 1 and 48 or 64, 8) end,
    function() local t = trainer(r == 1 and 3 or 2) return t.fit, t, T.model("plain"), loader(64, 8) end,
    function() local t = trainer(1) return t.test, t, T.model("plain"), loader(r == 1 and 48 or 64, 8) end,
  }
  local errors = {}
  for i, case in ipairs(cases) do errors[i] = error_of(case()) end
  report({errors = errors})
end

-- A process that fails inside fit: the job ends (the others wait in a collective) within seconds.
function scenarios.failure()
  local model = T.model("plain")
  local failing = {on_train_batch_end = function(_, trainer, _, _, _, batch_idx)
    if trainer.global_rank == 1 and batch_idx == 2 then error("rank 1 fails on purpose") end
  end}
  local trainer = L.Trainer{max_epochs = 1, logger = false, enable_checkpointing = false, enable_progress_bar = false,
    enable_model_summary = false, default_root_dir = o.out, callbacks = {failing}}
  write(("started_%d"):format(dist.rank()), tostring(L.now()))
  trainer:fit(model, L.data.DataLoader(T.dataset(40, 1, 8), {batch_size = 2}))
end

assert(scenarios[scenario], "unknown scenario " .. tostring(scenario))()
