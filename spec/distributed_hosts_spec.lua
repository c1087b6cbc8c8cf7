-- Data-parallel training across hosts over TCP: network namespaces of this machine as the hosts
-- (spec/netns_hosts.lua: a bridge in a namespace of its own, a veth per host, a subnet that exists only
-- there), Open MPI started with a hostfile and the rsh agent tools/netns_rsh, the mpirun line of
-- docs/distributed.md ("Several machines"). N processes at batch B train as one process at N x B, as
-- on one machine. Pending, with the reason, where namespaces cannot be made (not root, no iproute2) or
-- MPI is missing.
local L = require "lightning"
local H = require "helpers"
local M = require "mpi_helpers"
local N = require "netns_hosts"
local T = require "distributed.training"
local X = require "script_helpers"

local why = N.unavailable()
if why then
  describe("Data-parallel training across hosts (network namespaces)", function()
    pending(why)
  end)
  return
end

-- One process at the global batch, in this process, in a folder of its own.
local function single(opts)
  opts.root = H.tmpdir()
  return T.single(opts)
end

-- A network of n hosts, torn down after the test however it ends.
local networks = {}
local function network(n)
  local net = N.create(n)
  networks[#networks + 1] = net
  return net
end

-- Waits up to `seconds` for the namespaces to hold no process; returns what is left.
local function left_after(net, seconds)
  local deadline = L.now() + seconds
  local pids = net:pids()
  while #pids > 0 and L.now() < deadline do
    os.execute("sleep 0.2")
    pids = net:pids()
  end
  return pids
end

local function teardown_all()
  for _, net in ipairs(networks) do net:teardown() end
  networks = {}
end

local function files(dir)
  local list = {}
  local p = io.popen(("cd %q && find . -type f | sort"):format(dir))
  for line in p:lines() do list[#list + 1] = line:sub(3) end
  p:close()
  return list
end

-- The job's processes ran per_host to a host, in rank order, each host a namespace of the network, and
-- every report agrees with the one-process run.
local function assert_like_one_process(net, job, per_host, reference)
  M.assert_ok(job)
  local weights = L.load_safetensors(job.out .. "/weights.safetensors")
  for name, t in pairs(reference.weights) do H.assert_close(weights[name], t, 1e-5, name) end
  local reports = M.results(job)
  for r, report in ipairs(reports) do
    assert.equal(#net.hosts * per_host, report.world_size)
    assert.equal(r - 1, report.rank)
    assert.equal(net.hosts[(r - 1) // per_host + 1], report.netns)
    assert.equal((r - 1) % per_host, report.local_rank)
    assert.equal(per_host, report.local_world_size)
    assert.equal(reference.summary.global_step, report.global_step)
    assert.equal(reference.summary.global_step, report.reductions)
    for _, name in ipairs({"val_acc", "val_precision", "val_recall", "val_f1", "train_acc"}) do
      assert.equal(reference.summary.metrics[name], report.metrics[name], name)
    end
    assert.equal(reports[1].metrics.val_loss, report.metrics.val_loss)
    H.assert_close(report.metrics.val_loss, reference.summary.metrics.val_loss, 1e-5, "val_loss")
  end
  assert.same({}, left_after(net, 5))   -- (the daemons and processes ended with the job)
end

describe("Across hosts (network namespaces, mpirun --hostfile with an rsh agent, TCP)", function()
  after_each(teardown_all)

  it("the collectives, with each host's local ranks, on 2 hosts x 2 processes", function()
    local net = network(2)
    local job = net:mpirun(2, "collectives", {per_host = 2})
    M.assert_ok(job)
    for r, report in ipairs(M.results(job)) do assert.equal(r - 1, report.rank) end
    H.rmdir(job.out)
  end)

  it("2 hosts x 1 process at batch 4 train 20 steps as 1 at batch 8 (SyncBatchNorm): metrics, rank 0 alone " ..
    "writing", function()
    local net = network(2)
    local reference = single({kind = "batchnorm", batch = 8, epochs = 2, checkpoint = true, loggers = true})
    local job = net:mpirun(1, "fit", {kind = "batchnorm", batch = 4, epochs = 2, checkpoint = true, loggers = true})
    assert_like_one_process(net, job, 1, reference)
    assert.equal(20, reference.summary.global_step)
    -- the files one process writes, once: rank 0's (the other host shares this machine's folders)
    local written, expected = files(job.out), files(reference.dir)
    local function outputs(list)
      local out = {}
      for _, name in ipairs(list) do
        if name:match("^ckpt/") or name:match("^logs/") then out[#out + 1] = (name:gsub("events%.out%.tfevents.*", "events")) end
      end
      return out
    end
    assert.same(outputs(expected), outputs(written))
    H.rmdir(job.out)
    H.rmdir(reference.dir)
  end)

  it("lightning-train --nproc 2 with Open MPI's variables for the hostfile, the agent and the network", function()
    local net = network(2)
    local dir = H.tmpdir()
    X.image_folder(dir .. "/imgs", 6)
    local settings = {orte_default_hostfile = net:hostfile(1), rmaps_base_display_map = 1}
    for _, pair in ipairs(net:mca()) do settings[pair[1]] = pair[2] end
    local words = {}
    for name, value in pairs(settings) do words[#words + 1] = ("OMPI_MCA_%s=%s"):format(name, value) end
    local code, text = X.run("train.lua", ("--nproc 2 --data_dir %s/imgs --image_size 16 --max_epochs 1 --batch_size 5 " ..
      "--num_workers 0 --quiet --output_dir %s/out"):format(dir, dir),
      {env = table.concat(words, " ") .. " ip netns exec " .. net.bridge})
    assert.equal(0, code, text)
    -- (Open MPI's map: one process on each host)
    for _, host in ipairs(net.hosts) do assert.matches("Data for node: " .. host:gsub("%-", "%%-") .. "%s+Num slots: 1", text) end
    assert.matches("DDPStrategy: 2 processes", text)
    assert.is_false(io.open(dir .. "/out/image_classifier/version_1") ~= nil)   -- (one version: rank 0's)
    assert.same({}, left_after(net, 5))
    H.rmdir(dir)
  end)

  it("3 hosts x 2 processes at batch 2 train 20 steps as 1 at batch 12 (no BatchNorm)", function()
    local net = network(3)
    local reference = single({kind = "plain", batch = 12, epochs = 2, samples = 120})
    local job = net:mpirun(2, "fit", {kind = "plain", batch = 2, epochs = 2, samples = 120})
    assert_like_one_process(net, job, 2, reference)
    assert.equal(20, reference.summary.global_step)
    H.rmdir(job.out)
    H.rmdir(reference.dir)
  end)
end)


describe("A lost host never hangs the job", function()
  after_each(teardown_all)

  it("a host's link down ends the job within 35 s (Open MPI's keepalive as launch sets it), naming the host; " ..
    "nothing is left running; the run resumes on the remaining host with 2 processes", function()
    local net = network(2)
    -- (the link goes down in epoch 1: epoch 0's checkpoint is the last)
    local job = net:mpirun(1, "fit", {kind = "plain", batch = 4, epochs = 2, checkpoint = true, link_down_rank = 1,
      link_down_at_step = 13}, {timeout = 90})
    assert.are_not.equal(0, job.code)
    local down_at = tonumber(H.read_file(job.out .. "/link_down_at"))
    assert.is_true(job.finished - down_at < 35, ("the job took %.1f s to end after the link went down:\n%s")
      :format(job.finished - down_at, job.output))
    assert.matches("lost communication with a remote daemon", job.output)
    assert.matches("Remote daemon: [^\n]* on node " .. net.hosts[2]:gsub("%-", "%%-"), job.output)
    assert.same({}, left_after(net, 5))
    -- host 1 alone, 2 processes at batch 4: the run ends where one uninterrupted process at batch 8 does
    local straight = single({kind = "plain", batch = 8, epochs = 2})
    local remaining = network(1)
    local resumed = remaining:mpirun(2, "fit", {kind = "plain", batch = 4, epochs = 2, checkpoint = true, ckpt_path = "last",
      out = job.out})
    M.assert_ok(resumed)
    assert.equal(straight.summary.global_step, M.results(resumed)[2].global_step)
    local weights = L.load_safetensors(job.out .. "/weights.safetensors")
    for name, t in pairs(straight.weights) do H.assert_close(weights[name], t, 1e-5, name) end
    H.rmdir(job.out)
    H.rmdir(straight.dir)
  end)

  it("mpirun killed (SIGKILL) ends every process on every host within seconds", function()
    local net = network(2)
    local job = net:mpirun(1, "fit", {kind = "plain", batch = 4, epochs = 2, kill_mpirun_rank = 1,
      kill_mpirun_at_step = 3}, {timeout = 60})
    assert.are_not.equal(0, job.code)
    assert.same({}, left_after(net, 5))
    -- (Open MPI cannot remove the session folder of an mpirun killed so: the spec does)
    local pid = H.read_file(job.out .. "/mpirun_pid")
    assert(pid:match("^%d+$"))
    os.execute(("rm -rf /tmp/ompi.*/pid.%s"):format(pid))
    H.rmdir(job.out)
  end)

  it("a host's link down for 10 s while the daemons were idle is survived, and the run finishes", function()
    local net = network(2)
    -- (rank 1 waits out the flap in its callback, rank 0 in the next all-reduce: nothing passes between
    -- the daemons, whose keepalive probes the link while it is down; 3 probes 2 s apart would all be lost)
    local job = net:mpirun(1, "fit", {kind = "plain", batch = 4, epochs = 2, flap_rank = 1, flap_at_step = 3,
      flap_after = 6, flap_seconds = 10}, {timeout = 90})
    M.assert_ok(job)
    for _, report in ipairs(M.results(job)) do assert.equal(20, report.global_step) end
    H.rmdir(job.out)
  end)

  it("every process of a host killed (SIGKILL) ends the job within seconds; nothing is left running", function()
    local net = network(2)
    local job = net:mpirun(2, "fit", {kind = "plain", batch = 2, epochs = 2, kill_host_rank = 2, kill_host_at_step = 3},
      {timeout = 60})
    assert.are_not.equal(0, job.code)
    local killed_at = tonumber(H.read_file(job.out .. "/killed_at"))
    assert.is_true(job.finished - killed_at < 10, ("the job took %.1f s to end after the kill:\n%s")
      :format(job.finished - killed_at, job.output))
    assert.matches("exited on signal 9", job.output)
    assert.same({}, left_after(net, 5))
    H.rmdir(job.out)
  end)
end)
