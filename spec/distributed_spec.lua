-- Data-parallel training's parts that one process can check: DistributedSampler's shares of each epoch,
-- the mpirun command line, Lua values between processes, the gradient buckets (with a stand-in for the
-- collectives), the per-layer backward hook, nn.SyncBatchNorm and the BatchNorm statistics seam, L.buffer,
-- and DDPStrategy's options. (spec/distributed_mpi_spec.lua runs the jobs themselves.)
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"
local nn = L.nn
local C = L.core.nn
local launch = require "lightning.distributed.launch"
local values = require "lightning.distributed.values"
local Reducer = require "lightning.distributed.reducer"
local backward_hook = require "lightning.nn.backward_hook"
local output = require "lightning.util.output"

local DataLoader, DistributedSampler = L.data.DataLoader, L.data.DistributedSampler

-- The samples (their targets: the sample's index) of every batch of a loader's next epoch.
local function epoch(loader)
  local batches = {}
  for _, batch in loader:iter() do batches[#batches + 1] = batch.target:totable() end
  return batches
end

local function indexed(n)
  local list = {}
  for i = 1, n do list[i] = {input = L.zeros(1), target = i} end
  return list
end

describe("DistributedSampler", function()
  it("splits an epoch by PyTorch's rules: every N-th sample from the rank on, padded from the start", function()
    local ds = indexed(10)
    local shares = {}
    for r = 0, 2 do
      local loader = DataLoader(ds, {batch_size = 10, sampler = DistributedSampler{num_replicas = 3, rank = r,
        shuffle = false}})
      assert.equal(1, #loader)
      shares[r + 1] = epoch(loader)[1]
    end
    assert.same({{1, 4, 7, 10}, {2, 5, 8, 1}, {3, 6, 9, 2}}, shares)   -- 12 = 10 + the first 2 again
    -- drop_last cuts the tail instead: 3 each
    local cut = DataLoader(ds, {batch_size = 10, sampler = DistributedSampler{num_replicas = 3, rank = 2,
      shuffle = false, drop_last = true}})
    assert.same({{3, 6, 9}}, epoch(cut))
    assert.equal(3, DistributedSampler{num_replicas = 3, rank = 0, drop_last = true}:num_samples(10))
    assert.equal(4, DistributedSampler{num_replicas = 3, rank = 0}:num_samples(10))
    -- more processes than samples: the padding repeats the data set
    assert.same({{2}}, epoch(DataLoader(indexed(2), {sampler = DistributedSampler{num_replicas = 5, rank = 3,
      shuffle = false}, batch_size = 4})))
  end)

  local function check_global_batches(make_dataset, per_process, n_proc, seed)
    -- one process at N x B against N at B: the k-th batches of all of them hold the one process's k-th batch
    local opts = {batch_size = per_process * n_proc, shuffle = true, seed = seed}
    local whole = epoch(DataLoader(make_dataset(), opts))
    local parts = {}
    for r = 0, n_proc - 1 do
      L.manual_seed(21)   -- (without a seed, each process draws the same value of its generator)
      parts[r + 1] = epoch(DataLoader(make_dataset(), {batch_size = per_process, sampler = DistributedSampler{
        num_replicas = n_proc, rank = r, seed = seed}}))
    end
    for k, batch in ipairs(whole) do
      local union = {}
      for r = 1, n_proc do
        for _, v in ipairs(parts[r][k]) do union[#union + 1] = v end
      end
      table.sort(union)
      table.sort(batch)
      assert.same(batch, union)
    end
    return whole
  end

  it("gives N processes at batch B the batches of one process at N x B, seeded or drawn, in C and in Lua", function()
    local dir = H.tmpdir()
    D.make_cifar(dir, 8)   -- 40 training images; labels (3r mod 10) stand for the samples
    local cifar = function() return L.data.CIFAR10{root = dir, train = true, records_per_file = 8} end
    check_global_batches(cifar, 5, 2, 77)
    check_global_batches(cifar, 2, 4, 78)
    check_global_batches(function() return indexed(24) end, 3, 4, 5)
    -- without a seed, the order comes from one draw of the generator: the share's from the value the
    -- strategy broadcasts (draw), the whole loader's from the global generator
    for _, make in ipairs({cifar, function() return indexed(24) end}) do
      L.manual_seed(9)
      local whole = epoch(DataLoader(make(), {batch_size = 8, shuffle = true}))
      L.manual_seed(9)
      local value = L.core.data.random_seed()
      local union = {}
      for r = 0, 1 do
        L.manual_seed(1000 + r)   -- (the processes' own generators differ: the draw decides)
        local share = epoch(DataLoader(make(), {batch_size = 4, sampler = DistributedSampler{num_replicas = 2, rank = r,
          draw = function() return value end}}))
        for k, b in ipairs(share) do
          union[k] = union[k] or {}
          for _, v in ipairs(b) do table.insert(union[k], v) end
        end
      end
      for k, b in ipairs(whole) do
        table.sort(b)
        table.sort(union[k])
        assert.same(b, union[k])
      end
    end
    H.rmdir(dir)
  end)

  it("refuses what it cannot do, naming the option", function()
    assert.matches("num_replicas and rank are required", H.error_of(DistributedSampler, {rank = 0}))
    assert.matches("rank must be in %[0, num_replicas%) = %[0, 2%), got 2",
      H.error_of(DistributedSampler, {num_replicas = 2, rank = 2}))
    assert.matches("num_replicas must be an integer >= 1, got 0", H.error_of(DistributedSampler, {num_replicas = 0, rank = 0}))
    assert.matches("unknown option 'dorp_last' %(did you mean 'drop_last'%?%)",
      H.error_of(DistributedSampler, {num_replicas = 2, rank = 0, dorp_last = true}))
    local s = DistributedSampler{num_replicas = 2, rank = 0}
    assert.matches("shuffle and seed are the sampler's", H.error_of(DataLoader, indexed(4), {sampler = s, shuffle = true}))
    assert.matches("sampler must be a lightning.data.DistributedSampler, got table",
      H.error_of(DataLoader, indexed(4), {sampler = {}}))
    assert.matches("DistributedSampler%(rank 0 of 2", tostring(DataLoader(indexed(4), {sampler = s})))
  end)
end)

describe("lightning.distributed.launch", function()
  local function env(t) return function(name) return t[name] end end

  it("reads this process's place from Open MPI's variables", function()
    assert.is_nil(launch.environment(env({})))
    assert.same({rank = 1, world_size = 4, local_rank = 1, local_world_size = 2}, launch.environment(env({
      OMPI_COMM_WORLD_RANK = "1", OMPI_COMM_WORLD_SIZE = "4", OMPI_COMM_WORLD_LOCAL_RANK = "1",
      OMPI_COMM_WORLD_LOCAL_SIZE = "2"})))
    assert.is_nil(launch.environment(env({OMPI_COMM_WORLD_RANK = "4", OMPI_COMM_WORLD_SIZE = "4"})))
    assert.is_nil(launch.environment(env({OMPI_COMM_WORLD_RANK = "x", OMPI_COMM_WORLD_SIZE = "4"})))
    assert.is_false(L.distributed.launched())   -- (busted does not run under mpirun)
    assert.equal(0, L.distributed.rank())
    assert.equal(1, L.distributed.world_size())
  end)

  it("removes the Open MPI session folders that killed jobs left behind, and only those", function()
    local tmp = H.tmpdir()
    local fsio = L.core.io
    for _, path in ipairs({"/ompi.vm.0/pid.111/jf.1", "/ompi.vm.0/pid.222", "/ompi.other.5/pid.333",
      "/ompi.vm.0/notes", "/mine/pid.444"}) do
      fsio.mkdirs(tmp .. path)
    end
    H.write_file(tmp .. "/ompi.vm.0/pid.111/jf.1/shm", "x")
    local removed = launch.clean_stale_sessions(tmp, function(pid) return pid == "222" end)
    table.sort(removed)
    assert.same({tmp .. "/ompi.other.5/pid.333", tmp .. "/ompi.vm.0/pid.111"}, removed)
    assert.is_nil(fsio.file_type(tmp .. "/ompi.vm.0/pid.111"))
    assert.equal("directory", fsio.file_type(tmp .. "/ompi.vm.0/pid.222"))   -- its process runs
    assert.equal("directory", fsio.file_type(tmp .. "/ompi.vm.0/notes"))
    assert.equal("directory", fsio.file_type(tmp .. "/mine/pid.444"))        -- not Open MPI's
    assert.same({}, launch.clean_stale_sessions(tmp .. "/nothing here"))
    H.rmdir(tmp)
  end)

  it("builds the mpirun command line: root, oversubscription, threads, hosts, variables", function()
    local argv = launch.command{nproc = 4, root = true, cores = 2, script = "train.lua", args = {"--cifar10", "a b"},
      interpreter = {"/usr/bin/lua5.4", "-e", "x=1"}, getenv = env({LUA_PATH = "p"})}
    local keepalive = "--mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 6 --mca oob_tcp_keepalive_probes 3"
    assert.equal("mpirun -np 4 --allow-run-as-root --oversubscribe --bind-to none " .. keepalive ..
      " -x OMP_NUM_THREADS=1 -x LUA_PATH /usr/bin/lua5.4 -e x=1 train.lua --cifar10 'a b'", launch.shell_words(argv))
    argv = launch.command{nproc = 2, cores = 2, script = "t.lua", getenv = env({})}
    assert.equal("mpirun -np 2 " .. keepalive .. " -x OMP_NUM_THREADS=1 lua5.4 t.lua", launch.shell_words(argv))
    argv = launch.command{nproc = 8, cores = 2, threads = 2, hosts = "a:4,b:4", mca = {{"btl", "tcp,self"}},
      env = {"TERM=dumb"}, script = "t.lua", getenv = env({})}
    assert.equal("mpirun -np 8 --bind-to none -H a:4,b:4 " .. keepalive .. " --mca btl tcp,self -x OMP_NUM_THREADS=2 " ..
      "-x TERM=dumb lua5.4 t.lua", launch.shell_words(argv))
    -- the keepalive settings give way to the caller's and to Open MPI's variables
    argv = launch.command{nproc = 2, hostfile = "hosts", mca = {{"oob_tcp_keepalive_time", "60"}}, script = "t.lua",
      getenv = env({OMPI_MCA_oob_tcp_keepalive_probes = "5", LIGHTNING_DIST_TIMEOUT = "30"})}
    assert.equal("mpirun -np 2 --hostfile hosts --mca oob_tcp_keepalive_intvl 6 --mca oob_tcp_keepalive_time 60 " ..
      "-x OMP_NUM_THREADS=1 -x LIGHTNING_DIST_TIMEOUT lua5.4 t.lua", launch.shell_words(argv))
    assert.same({"--cifar10", "--seed", "1"}, launch.without_option({"--nproc", "4", "--cifar10", "--nproc=2", "--seed",
      "1"}, "--nproc"))
    assert.same({"lua5.4", "-e", "x"}, launch.interpreter({[-3] = "lua5.4", [-2] = "-e", [-1] = "x", [0] = "s.lua"}))
    assert.same({"lua5.4"}, launch.interpreter({[0] = "s.lua"}))
    assert.equal("'it'\\''s'", launch.shell_words({"it's"}))
  end)
end)

describe("Values between processes (lightning.distributed.values)", function()
  it("come back as they were: integers, floats to the bit, NaN, infinities, nested tables, nil", function()
    local v = {i = 1 << 60, f = 0.1, third = 1 / 3, nan = 0 / 0, inf = math.huge, ninf = -math.huge, s = "a\n\"b\"",
      list = {1, 2.0, true, {x = false}}, empty = {}}
    local back = values.decode(values.encode(v))
    assert.equal(1 << 60, back.i)
    assert.equal("integer", math.type(back.i))
    assert.equal("float", math.type(back.list[2]))
    assert.equal(0.1, back.f)
    assert.equal(1 / 3, back.third)
    assert.is_true(back.nan ~= back.nan)
    assert.equal(math.huge, back.inf)
    assert.equal(-math.huge, back.ninf)
    assert.equal(v.s, back.s)
    assert.is_false(back.list[4].x)
    assert.same({}, back.empty)
    assert.is_nil(values.decode(values.encode(nil)))
    assert.equal(-7, values.decode(values.encode(-7)))
  end)

  it("refuses what cannot travel, naming the caller", function()
    assert.matches("f: a function cannot be sent between processes", H.error_of(values.encode, {print}, "f"))
    assert.matches("a table with a key 0 cannot be sent", H.error_of(values.encode, {[0] = 1}))
    assert.matches("a table mixes list and string keys", H.error_of(values.encode, {1, a = 2}))
    assert.matches("a userdata cannot be sent", H.error_of(values.encode, L.zeros(1)))
  end)
end)

-- A stand-in for the collectives: records each reduction started, and when (between which layers).
local function fake_comm(log)
  return {all_reduce_async = function(t)
    log[#log + 1] = {kind = "start", numel = t:numel()}
    local done = false
    return {test = function() return done end, wait = function() done = true; log[#log + 1] = {kind = "wait"} end}
  end}
end

describe("The gradient buckets (distributed/reducer.lua)", function()
  it("take whole parameters in reverse order, closed at the cap; start as the backward pass finishes their layers",
    function()
    local net = nn.Sequential(nn.Linear(100, 300), nn.ReLU(), nn.Linear(300, 200), nn.Linear(200, 10))
    local log = {}
    -- the cap in MB: 60000 floats
    local r = Reducer{module = net, comm = fake_comm(log), bucket_cap_mb = 60000 * 4 / 2 ^ 20}
    -- parameters: 30000, 300, 60000, 200, 2000, 10 (registration order); buckets from the end
    assert.same({4 * (10 + 2000 + 200 + 60000), 4 * (300 + 30000)}, r:bucket_bytes())
    local flat_params, flat_grads = net:flat_parameters()
    assert.is_not_nil(flat_params)
    assert.equal(flat_grads:numel(), 92510)
    -- the layer whose backward pass ended, recorded between the reductions
    local layers = {}
    for i = 1, #net do layers[net[i]] = i end
    local previous = backward_hook.set(function(m) log[#log + 1] = {kind = "layer", layer = layers[m]} end)
    backward_hook.set(previous)
    local x = L.randn(4, 100)
    local out = net:forward(x)
    r:prepare()
    local watcher = backward_hook.set(nil)
    backward_hook.set(function(m)
      log[#log + 1] = {kind = "layer", layer = layers[m]}
      watcher(m)
    end)
    net:backward(x, L.ones(out:size()))
    backward_hook.set(watcher)
    r:finish()
    local seen = {}
    for _, e in ipairs(log) do
      seen[#seen + 1] = e.kind == "layer" and ("layer " .. e.layer) or e.kind == "start" and ("start " .. e.numel) or "wait"
    end
    -- the first bucket (layers 4 and 3) starts as soon as layer 3 is done, the second after layer 1
    assert.same({"layer 4", "layer 3", "start 62210", "layer 2", "layer 1", "start 30300", "wait", "wait"}, seen)
    local s = r:stats()
    assert.equal(1, s.steps)
    assert.equal(2, s.started_in_pass)
    assert.equal(4 * 92510, s.bytes)
    -- the views: a bucket's tensor is the slice of the flat gradient its parameters' gradients are in
    assert.equal(net[4].weight.grad[1][1], flat_grads[92510 - 10 - 2000 + 1])
  end)

  it("starts a bucket after the ones before it, and what no hook reported at the end of the pass", function()
    local net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    local log = {}
    local r = Reducer{module = net, comm = fake_comm(log), bucket_cap_mb = 1e-6}   -- one bucket per parameter
    assert.equal(4, #r:bucket_bytes())
    r:prepare()
    backward_hook.done(net[1])   -- the first layer's buckets are the last two: they wait for the first two
    assert.equal(0, #log)
    backward_hook.done(net[2])
    assert.equal(4, #log)
    r:finish()
    -- a model whose backward reports nothing: all at the end, still in order
    log = {}
    local r2 = Reducer{module = nn.Linear(3, 2), comm = fake_comm(log), overlap = true}
    r2:prepare()
    assert.equal(0, #log)
    r2:finish()
    assert.same({"start", "wait"}, {log[1].kind, log[2].kind})
    -- overlap = false: nothing starts during the pass
    log = {}
    local r3 = Reducer{module = nn.Sequential(nn.Linear(3, 2)), comm = fake_comm(log), overlap = false}
    r3:prepare()
    backward_hook.done(r3.module[1])
    assert.equal(0, #log)
    r3:finish()
    assert.equal(0, r3:stats().started_in_pass)
  end)

  it("leaves the backward pass alone after its end or an error, and follows parameters that were replaced", function()
    local net = nn.Sequential(nn.Linear(3, 2))
    local log = {}
    local r = Reducer{module = net, comm = fake_comm(log)}
    r:prepare()
    assert.matches("a reduction is in progress", H.error_of(r.prepare, r))
    r:teardown()   -- (as the strategy's teardown after an error inside the pass)
    backward_hook.done(net[1])
    assert.equal(0, #log)
    -- a gradient replaced (zero_grad(true), then a new tensor): the next pass flattens again
    net[1].weight.grad = L.zeros(2, 3)
    assert.is_nil(net:flat_parameters())
    r:prepare()
    assert.is_not_nil(net:flat_parameters())
    r:finish()
  end)
end)

describe("The backward pass's per-layer hook", function()
  it("is called by containers after each child, by the fused layer for its BatchNorm, and by the reference model",
    function()
    local reported = {}
    local previous = backward_hook.set(function(m) reported[#reported + 1] = m end)
    local ok, err = pcall(function()
      local a, b = nn.Linear(3, 3), nn.Linear(3, 3)
      local res = nn.Residual(nn.Sequential(a), b)
      local seq = nn.Sequential(res, nn.ReLU())
      local x = L.randn(2, 3)
      local out = seq:forward(x)
      seq:backward(x, L.ones(out:size()))
      assert.same({seq[2], a, res.block, b, res}, reported)
      reported = {}
      local bn = nn.BatchNorm2d(2)
      local fused = nn.BatchNormReLUMaxPool2d(bn)
      local y = fused:forward(L.randn(2, 2, 4, 4))
      fused:backward(L.randn(2, 2, 4, 4), L.ones(y:size()))
      assert.same({bn}, reported)
      reported = {}
      local model = L.models.BasicImageClassifier{image_size = 16, num_classes = 3}
      local xi = L.randn(2, 3, 16, 16)
      local logits = model:forward(xi)
      model:backward(xi, L.ones(logits:size()))
      local bns = 0
      for _, m in ipairs(reported) do if m == model.bn1 or m == model.bn4 then bns = bns + 1 end end
      assert.equal(2, bns)
      assert.equal(model.conv1, reported[#reported])
    end)
    backward_hook.set(previous)
    assert(ok, err)
  end)
end)

describe("The BatchNorm statistics seam (C) and nn.SyncBatchNorm in one process", function()
  local function forward_args(bn, x, sums)
    local a = bn:_forward_args("t", x)
    a.handle, a.output, a.sums = bn._kernel, bn.output, sums
    return a
  end

  it("statistics then normalisation is the forward pass; gradient sums then input gradient its backward", function()
    for _, shape in ipairs({{6, 3}, {5, 3, 7}, {4, 3, 5, 6}}) do
      L.manual_seed(4)
      local x, gy = L.randn(table.unpack(shape)):mul(2):add(50), L.randn(table.unpack(shape))
      local make = #shape == 4 and nn.BatchNorm2d or nn.BatchNorm1d
      local whole, split = make(3), make(3)
      whole.weight:copy(L.tensor{1, -2, 0.5})
      split.weight:copy(whole.weight)
      local y = whole:forward(x)
      local gx = whole:backward(x, gy)
      local sums = L.buffer("float64", 7)
      local a = forward_args(split, x, sums)
      C.batchnorm_statistics(a)
      assert.equal(x:numel() / 3, sums[7])
      H.assert_close(sums[1], x:select(2, 1):sum(), 1e-6, "sum")
      C.batchnorm_normalize(a)
      H.assert_close(split.output, y, 1e-5, "output")
      H.assert_close(split.running_var, whole.running_var, 1e-6, "running_var")
      local b = {handle = split._kernel, grad_input = split.grad_input, grad_weight = split.weight.grad,
        grad_bias = split.bias.grad, grad_output = gy, input = x, weight = split.weight, save_mean = split._save_mean,
        save_invstd = split._save_invstd, sums = sums}
      C.batchnorm_grad_sums(b)
      H.assert_close(split.weight.grad, whole.weight.grad, 1e-5, "grad_weight")
      H.assert_close(split.bias.grad, whole.bias.grad, 1e-5, "grad_bias")
      b.count = math.tointeger(x:numel() / 3)
      C.batchnorm_grad_input(b)
      H.assert_close(split.grad_input, gx, 1e-5, "grad_input")
    end
  end)

  it("refuses sums of the wrong size or kind, passes that are not training, and a backward before its forward",
    function()
    local bn = nn.BatchNorm1d(3)
    local x = L.randn(4, 3)
    assert.matches("sums must hold 2 x 3 %+ 1 = 7 float64 values %(2 per channel and the count%), got 6",
      H.error_of(C.batchnorm_statistics, forward_args(bn, x, L.buffer("float64", 6))))
    assert.matches("sums must be a float64 buffer, got an int64 one",
      H.error_of(C.batchnorm_statistics, forward_args(bn, x, L.buffer("int64", 7))))
    assert.matches("sums must be a float64 buffer %(L.buffer%), got tensor",
      H.error_of(C.batchnorm_statistics, forward_args(bn, x, L.zeros(7))))
    bn:eval()
    assert.matches("batch statistics are those of a training pass",
      H.error_of(C.batchnorm_statistics, forward_args(bn, x, L.buffer("float64", 7))))
    assert.matches("normalising with given statistics is a training pass",
      H.error_of(C.batchnorm_normalize, forward_args(bn, x, L.buffer("float64", 7))))
    bn:train()
    local sums = L.buffer("float64", 7)
    assert.matches("expected more than 1 value per channel when training, got a count of 0",
      H.error_of(C.batchnorm_normalize, forward_args(bn, x, sums)))
    sums[7] = 1.5
    assert.matches("got a count of 1.5", H.error_of(C.batchnorm_normalize, forward_args(bn, x, sums)))
    local fresh = nn.BatchNorm1d(3)
    assert.matches("backward before forward", H.error_of(C.batchnorm_grad_sums, {handle = fresh._kernel,
      grad_output = x, input = x, save_mean = fresh._save_mean, save_invstd = fresh._save_invstd, sums = sums}))
    local a = forward_args(bn, x, sums)
    C.batchnorm_statistics(a)
    C.batchnorm_normalize(a)
    local b = {handle = bn._kernel, grad_output = x, input = x, save_mean = bn._save_mean, save_invstd = bn._save_invstd,
      sums = sums}
    C.batchnorm_grad_sums(b)
    b.count = 4
    assert.matches("grad_input is required", H.error_of(C.batchnorm_grad_input, b))
    b.grad_input, b.count = L.empty(0), 0
    assert.matches("count must be >= 1, got 0", H.error_of(C.batchnorm_grad_input, b))
    b.count = nil
    assert.matches("count must be an integer", H.error_of(C.batchnorm_grad_input, b))
  end)

  it("is BatchNorm alone; convert_sync_batchnorm makes a model's BatchNorm layers SyncBatchNorm in place", function()
    local s, b = nn.SyncBatchNorm(4), nn.BatchNorm2d(4)
    local x = L.randn(3, 4, 2, 2)
    H.assert_close(s:forward(x), b:forward(x), 0, "forward")
    H.assert_close(s:backward(x, x), b:backward(x, x), 0, "backward")
    assert.is_false(s:_reduces_statistics())
    assert.equal("SyncBatchNorm(4, eps=1e-05, momentum=0.1)", tostring(s))
    H.assert_close(nn.SyncBatchNorm(4):forward(L.randn(5, 4)), nn.SyncBatchNorm(4):forward(L.randn(5, 4)), 10, "2-D")
    assert.matches("SyncBatchNorm:forward: expected a 2%-D or 3%-D or 4%-D or 5%-D input", H.error_of(s.forward, s, L.randn(4)))
    local model = L.models.BasicImageClassifier{image_size = 16, num_classes = 3}
    local xi = L.randn(2, 3, 16, 16)
    L.manual_seed(1)
    local before = model:forward(xi):clone()
    local bn1, keys = model.bn1, model:state_dict_keys()
    nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert.equal(bn1, model.bn1)
    assert.equal("SyncBatchNorm", L.class.name_of(model.bn1))
    assert.equal("SyncBatchNorm", L.class.name_of(model.bn_fc1))
    assert.same(keys, model:state_dict_keys())
    L.manual_seed(1)
    H.assert_close(model:forward(xi), before, 0, "the converted model")
    assert.matches("BatchNorm2d:forward: expected a 4%-D input", H.error_of(model.bn1.forward, model.bn1, L.randn(2, 32)))
  end)
end)

describe("L.buffer", function()
  it("holds float64 or int64 values, 1-based, and refuses what it cannot hold", function()
    local b = L.buffer("int64", 3)
    assert.equal(3, #b)
    assert.same({0, 0, 0}, b:totable())
    b[2] = 1 << 62
    b[3] = 4.0
    assert.equal(1 << 62, b[2])
    assert.equal("integer", math.type(b[3]))
    assert.equal("int64", b:dtype())
    assert.equal("Buffer(int64, 3)", tostring(b))
    assert.is_true(L.is_buffer(b))
    assert.is_false(L.is_buffer(L.zeros(1)))
    local d = L.buffer("float64", 2):fill(0.1)
    assert.same({0.1, 0.1}, d:totable())
    assert.matches("an int64 buffer takes integers, got 1.5", H.error_of(function() b[1] = 1.5 end))
    assert.matches("index 4 is out of range 1..3", H.error_of(function() return b[4] end))
    assert.matches("index 0 is out of range", H.error_of(function() b[0] = 1 end))
    assert.matches("Buffer%[i%]: the index must be an integer, got 1.5", H.error_of(function() return b[1.5] end))
    assert.is_nil(b.nothing)   -- (a name is a method or nothing)
    assert.matches('dtype must be "float64" or "int64", got "float32"', H.error_of(L.buffer, "float32", 2))
    assert.matches("size must be 0 to", H.error_of(L.buffer, "int64", -1))
    assert.equal(0, #L.buffer("float64", 0))
  end)
end)

describe("DDPStrategy in one process", function()
  it("is registered as \"ddp\", takes PyTorch's bucket option, and is not picked outside mpirun", function()
    assert.equal(L.strategies.DDPStrategy, rawget(L.strategies, "DDPStrategy"))
    assert.is_false(L.strategies.DDPStrategy.detect())
    if not L.distributed.available() then
      assert.matches("built without MPI", H.error_of(L.strategies.DDPStrategy, {}))
      assert.matches("built without MPI", H.error_of(L.Trainer, {strategy = "ddp", logger = false}))
      return
    end
    local s = L.strategies.DDPStrategy{bucket_cap_mb = 4, overlap = false}
    assert.equal(4, s.bucket_cap_mb)
    assert.matches("bucket_cap_mb must be a number > 0, got 0", H.error_of(L.strategies.DDPStrategy, {bucket_cap_mb = 0}))
    assert.matches("unknown option 'bucket_cap'", H.error_of(L.strategies.DDPStrategy, {bucket_cap = 1}))
    local t = L.Trainer{strategy = "ddp", logger = false, enable_checkpointing = false, enable_progress_bar = false}
    assert.equal("ddp", t.strategy.strategy_name)
    assert.equal(1, t.world_size)   -- (MPI starts at the first fit)
    assert.matches("Trainer: sync_batchnorm must be a boolean", H.error_of(L.Trainer, {sync_batchnorm = 1}))
  end)

  -- A strategy whose reducer is a stand-in: each synced step waits `wait` s after a `backward` s pass.
  local function stepped(wait, backward, steps, sync)
    local s = L.strategies.DDPStrategy{}
    s._info = {rank = 0, local_rank = 0, world_size = 2}
    local st = {steps = 0, wait_s = 0, backward_s = 0, bytes = 4200000, buckets = 5}
    s._reducer = {finish = function()
      st.steps, st.wait_s, st.backward_s = st.steps + 1, st.wait_s + wait, st.backward_s + backward
    end, stats = function() return {steps = st.steps, wait_s = st.wait_s, backward_s = st.backward_s, bytes = st.bytes,
      buckets = st.buckets} end}
    return (output.capture(function() for _ = 1, steps do s:finish_backward(sync ~= false) end end))
  end

  it("says once, after a few steps, that the all-reduce dominates when it outlasts the backward pass", function()
    if not L.distributed.available() then return end
    local text = stepped(0.52, 0.108, 20)
    assert.equal(1, select(2, text:gsub("\n", "")))
    assert.matches("DDPStrategy: the gradient all%-reduce dominates training: each step waited 520 ms for it after " ..
      "a 108 ms backward pass %(4.01 MB of gradients a step in 5 buckets, 2 processes%).*try larger buckets " ..
      "%(bucket_cap_mb, now 1%)", text)
    assert.truthy(text:find('bf16 gradients (gradient_dtype = "bf16", half the bytes)', 1, true))
    assert.equal("", stepped(0.52, 0.108, L.strategies.DDPStrategy.DOMINATED_AFTER))   -- (the first is a warm-up)
    assert.equal("", stepped(0.05, 0.108, 20))   -- the pass hides or outlasts it: nothing to say
    assert.equal("", stepped(0.0015, 0.0001, 20))   -- a toy model's steps: too short to matter
    assert.equal("", stepped(0.52, 0.108, 20, false))   -- accumulating steps reduce nothing
  end)
end)
