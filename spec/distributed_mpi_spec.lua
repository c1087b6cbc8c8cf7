-- Data-parallel training under mpirun (spec/distributed/worker.lua is each process): the collectives
-- of L.distributed; N processes at batch B training as one process at N x B (2 processes, 4
-- oversubscribed, 2 over TCP with shared memory off; SyncBatchNorm; gradient accumulation); global
-- metrics and rank 0 alone writing; models that differ refused; a failing or killed process ending the
-- job within seconds, and the run resumed with another number of processes. Skipped, with the reason,
-- where lightning/dist.so or mpirun is missing.
local L = require "lightning"
local H = require "helpers"
local M = require "mpi_helpers"
local X = require "script_helpers"
local T = require "distributed.training"
local fs = require "lightning.util.fs"

local why = M.unavailable()
if why then
  describe("Data-parallel training under mpirun", function()
    pending(why)
  end)
  return
end

-- One process at the global batch, in this process, in a folder of its own.
local function single(opts)
  opts.root = H.tmpdir()
  return T.single(opts)
end

local function assert_same_weights(job, reference, tol)
  local weights = L.load_safetensors(job.out .. "/weights.safetensors")
  for name, t in pairs(reference.weights) do
    assert(weights[name], "the job saved no " .. name)
    H.assert_close(weights[name], t, tol, name)
  end
end

local function files(dir)
  local list = {}
  local p = io.popen(("cd %q && find . -type f | sort"):format(dir))
  for line in p:lines() do list[#list + 1] = line:sub(3) end
  p:close()
  return list
end

local function count_matching(list, pattern)
  local n = 0
  for _, name in ipairs(list) do if name:match(pattern) then n = n + 1 end end
  return n
end

describe("L.distributed under mpirun", function()
  it("reduces, broadcasts and gathers on 2 processes, and on 3 oversubscribed on 2 cores", function()
    for _, np in ipairs({2, 3}) do
      M.assert_each_ok(M.mpirun(np, "collectives", {}))
    end
  end)
end)

describe("nn.SyncBatchNorm under mpirun", function()
  it("gives each process its rows of one BatchNorm over the whole batch, forward and backward, 2 and 3 processes",
    function()
    for _, np in ipairs({2, 3}) do
      local job = M.mpirun(np, "syncbn", {})
      M.assert_ok(job)
      for _, report in ipairs(M.results(job)) do
        for dims, worst in pairs(report) do
          for what, d in pairs(worst) do assert(d < 2e-5, ("%d processes, %s input, %s: %g"):format(np, dims, what, d)) end
        end
      end
      H.rmdir(job.out)
    end
  end)
end)

describe("Data-parallel training (Trainer{strategy = \"ddp\"}, chosen by itself under mpirun)", function()
  it("2 processes at batch 4 train 20 steps as 1 at batch 8: SyncBatchNorm, the fused BatchNorm+ReLU+pool, " ..
    "global metrics, rank 0 alone writing",
    function()
    local reference = single({kind = "batchnorm", batch = 8, epochs = 2, checkpoint = true, loggers = true})
    local job = M.mpirun(2, "fit", {kind = "batchnorm", batch = 4, epochs = 2, checkpoint = true, loggers = true})
    M.assert_ok(job)
    assert_same_weights(job, reference, 1e-5)
    local reports = M.results(job)
    for r, report in ipairs(reports) do
      assert.equal(2, report.world_size)
      assert.equal(r - 1, report.rank)
      assert.equal(reference.summary.global_step, report.global_step)
      -- the built-in metrics are the global ones, the same on every process and as in one process
      for _, name in ipairs({"val_acc", "val_precision", "val_recall", "val_f1", "train_acc"}) do
        assert.equal(reference.summary.metrics[name], report.metrics[name], name)
        assert.equal(reports[1].metrics[name], report.metrics[name], name)
      end
      assert.equal(reports[1].metrics.val_loss, report.metrics.val_loss)
      H.assert_close(report.metrics.val_loss, reference.summary.metrics.val_loss, 1e-5, "val_loss")
      assert.equal(reference.summary.global_step, report.reductions)  -- one gradient reduction per step
    end
    -- rank 0 alone wrote: one log version, the checkpoints one process writes
    local written, expected = files(job.out), files(reference.dir)
    assert.equal(1, count_matching(written, "^logs/run/version_%d+/metrics%.csv$"))
    assert.equal(0, count_matching(written, "^logs/run/version_1"))
    local function checkpoints(list)
      local out = {}
      for _, name in ipairs(list) do if name:match("^ckpt/") then out[#out + 1] = name end end
      return out
    end
    assert.same(checkpoints(expected), checkpoints(written))
    assert.equal(1, count_matching(written, "^logs/run/version_0/events%.out%.tfevents"))
    H.rmdir(job.out)
    H.rmdir(reference.dir)
  end)

  it("4 processes oversubscribed on 2 cores at batch 2 train as 1 at batch 8 (no BatchNorm)", function()
    local ref = single({kind = "plain", batch = 8, epochs = 2})
    local job = M.mpirun(4, "fit", {kind = "plain", batch = 2, epochs = 2})
    M.assert_ok(job)
    assert_same_weights(job, ref, 1e-5)
    for _, report in ipairs(M.results(job)) do
      assert.equal(4, report.world_size)
      -- (the training scores of the metric objects too: over every process's batches, not its own)
      for _, name in ipairs({"val_acc", "train_acc", "train_f1"}) do
        assert.equal(ref.summary.metrics[name], report.metrics[name], name)
      end
    end
    H.rmdir(job.out)
    H.rmdir(ref.dir)
  end)

  it("a model written with forward only (autograd: two branches concatenated) trains on 2 processes as on 1", function()
    local ref = single({kind = "composite", batch = 8, epochs = 2})
    local job = M.mpirun(2, "fit", {kind = "composite", batch = 4, epochs = 2})
    M.assert_ok(job)
    assert_same_weights(job, ref, 1e-5)
    for _, report in ipairs(M.results(job)) do assert.equal(ref.summary.global_step, report.reductions) end
    H.rmdir(job.out)
    H.rmdir(ref.dir)
  end)

  it("2 processes over TCP with shared memory off (--mca btl tcp,self) train as 1 at batch 8", function()
    local ref = single({kind = "plain", batch = 8, epochs = 2})
    local job = M.mpirun(2, "fit", {kind = "plain", batch = 4, epochs = 2, bucket_cap_mb = 0.001},
      {mca = {{"btl", "tcp,self"}}})
    M.assert_ok(job)
    assert_same_weights(job, ref, 1e-5)
    assert.is_true(M.results(job)[1].buckets >= 2)   -- (small buckets: several reductions in flight at once)
    H.rmdir(job.out)
    H.rmdir(ref.dir)
  end)

  it("with gradient_dtype = \"bf16\" (the gradients travel as bf16) trains as 1 process within bf16 rounding", function()
    local ref = single({kind = "plain", batch = 8, epochs = 2})
    local job = M.mpirun(2, "fit", {kind = "plain", batch = 4, epochs = 2, gradient_dtype = "bf16", bucket_cap_mb = 0.01})
    M.assert_ok(job)
    -- Each step's averaged gradient is the float32 one within bf16's relative rounding (2^-8, twice: the
    -- values, then their sum); over two epochs of Adam the weights stay within a few thousandths of the
    -- one-process run, and they are not the float32 reduction's bits.
    assert_same_weights(job, ref, 2e-2)
    local weights = L.load_safetensors(job.out .. "/weights.safetensors")
    local differs = false
    for name, t in pairs(ref.weights) do
      if H.max_rel_diff(weights[name], t) > 1e-5 then differs = true end
    end
    assert.is_true(differs, "the bf16 reduction gave the float32 one's weights: did the gradients travel as bf16?")
    H.rmdir(job.out)
    H.rmdir(ref.dir)
  end)

  it("with gradient accumulation reduces only on the last batch of each group, and trains as 1 process", function()
    local ref = single({kind = "plain", batch = 8, epochs = 2, accumulate = 2})
    local job = M.mpirun(2, "fit", {kind = "plain", batch = 4, epochs = 2, accumulate = 2})
    M.assert_ok(job)
    assert_same_weights(job, ref, 1e-5)
    for _, report in ipairs(M.results(job)) do
      assert.equal(ref.summary.global_step, report.global_step)
      assert.equal(10, report.global_step)              -- 10 batches of 4 per epoch per process, in pairs
      assert.equal(report.global_step, report.reductions)
    end
    H.rmdir(job.out)
    H.rmdir(ref.dir)
  end)

  it("refuses processes that hold different models, on every process, with what differs", function()
    local job = M.mpirun(2, "mismatch", {})
    M.assert_ok(job)   -- (every process gets the error: the job ends in order)
    for _, report in ipairs(M.results(job)) do
      assert.matches("DDPStrategy: the processes hold different models: rank 1 has net%.7%.weight 4x4 where rank 0 " ..
        "has nothing %(8 tensors, 1808 parameters%), rank 0 6 tensors, 1788 parameters; every process must build " ..
        "the same model", report.error)
    end
    H.rmdir(job.out)
  end)
end)

-- Resumes a job's last checkpoint with 1 process at batch 8 and (from a copy) with 4 at batch 2: both
-- end where the uninterrupted run `straight` (1 process at batch 8) ended.
local function resume_with_1_and_4(job, straight, epochs)
  local copy = H.tmpdir()
  assert(os.execute(("cp -r %q/ckpt %q/"):format(job.out, copy)))
  for _, run in ipairs({{np = 1, batch = 8, out = job.out}, {np = 4, batch = 2, out = copy}}) do
    local resumed = M.mpirun(run.np, "fit", {kind = "plain", batch = run.batch, epochs = epochs, checkpoint = true,
      ckpt_path = "last", out = run.out})
    M.assert_ok(resumed)
    local report = M.results(resumed)[1]
    assert.equal(epochs, report.epoch)
    assert.equal(straight.summary.global_step, report.global_step)
    assert_same_weights(resumed, straight, 1e-5)
  end
  H.rmdir(job.out)
  H.rmdir(copy)
  H.rmdir(straight.dir)
end

describe("Faults in a data-parallel job", function()
  it("a process that fails in fit ends the job within seconds (the others were waiting for it)", function()
    local job = M.mpirun(2, "failure", {}, {timeout = 60})
    assert.are_not.equal(0, job.code)
    assert.matches("rank 1 fails on purpose", job.output)
    assert.matches("process 1 failed during a distributed run", job.output)
    local started = tonumber(H.read_file(job.out .. "/started_1"))
    assert.is_true(job.finished - started < 10, ("the job took %.1f s to end"):format(job.finished - started))
    H.rmdir(job.out)
  end)

  it("a process stuck outside MPI ends the job after DDPStrategy{timeout}: the others' collective says what it " ..
    "waited for, how long and where", function()
    local job = M.mpirun(2, "fit", {kind = "plain", batch = 4, epochs = 2, timeout = 3, stall_rank = 1, stall_at_step = 3},
      {timeout = 60})
    assert.are_not.equal(0, job.code)
    local stalled_at = tonumber(H.read_file(job.out .. "/stalled_at"))
    assert.is_true(job.finished - stalled_at < 10, ("the job took %.1f s to end after the stall:\n%s")
      :format(job.finished - stalled_at, job.output))
    assert.matches("lightning.distributed: [%w_ ]+ did not complete within 3 s on rank 0 of 2 %(host [^)]+%): a " ..
      "process it needs is stuck in other work, gone or unreachable; ending the job %(MPI_Abort%)%. The limit is " ..
      "DDPStrategy{timeout = seconds}", job.output)
    H.rmdir(job.out)
  end)

  it("processes whose loops differ (batch size, data set size, max_epochs, test data) are refused on every process, " ..
    "naming the ranks and values, instead of waiting for ever", function()
    local job = M.mpirun(2, "disagree", {}, {timeout = 60})
    M.assert_ok(job)   -- (every process gets the errors: the job ends in order)
    local prefix = "the 2 processes disagree on what must be the same on each of them: "
    for _, report in ipairs(M.results(job)) do
      local e = report.errors
      assert.matches("^Trainer:fit failed: " .. prefix .. "training batches per epoch: 4 on rank 0 %(batch " ..
        "size 8, 64 samples%), 8 on rank 1 %(batch size 4, 64 samples%); each would wait for ever", e[1])
      assert.matches(prefix .. "training batches per epoch: 4 on rank 0 %(batch size 8, 64 samples%), 3 on rank 1 " ..
        "%(batch size 8, 48 samples%);", e[2])
      assert.matches(prefix .. "max_epochs: 2 on rank 0, 3 on rank 1;", e[3])
      assert.matches("^Trainer:test failed: " .. prefix .. "test batches: 4 on rank 0 %(batch size 8, 64 samples%), 3 on " ..
        "rank 1 %(batch size 8, 48 samples%);", e[4])
    end
    H.rmdir(job.out)
  end)

  it("a process that fails alone says that it saved nothing (global rank 0 writes checkpoints), and nothing is " ..
    "written", function()
    local job = M.mpirun(2, "fit", {kind = "plain", batch = 4, epochs = 2, checkpoint = true, fail_at_step = 3,
      fail_rank = 1}, {timeout = 60})
    assert.are_not.equal(0, job.code)
    assert.matches("failing on purpose", job.output)
    assert.matches("Nothing was saved: checkpoints are written by global rank 0 and this is rank 1", job.output)
    assert.is_nil(job.output:find("was saved to", 1, true), job.output)
    assert.is_false(fs.exists(job.out .. "/ckpt/on_exception.safetensors"))
    H.rmdir(job.out)
  end)

  it("a process killed with SIGKILL ends the job within seconds; the run resumes from the last checkpoint with " ..
    "another number of processes", function()
    local straight = single({kind = "plain", batch = 8, epochs = 4})
    -- 2 processes, process 1 killed at the end of epoch 1 (the checkpoint of epoch 0 is the last)
    local job = M.mpirun(2, "fit", {kind = "plain", batch = 4, epochs = 4, checkpoint = true, kill_at_epoch = 1,
      kill_rank = 1}, {timeout = 60})
    assert.are_not.equal(0, job.code)
    assert.matches("exited on signal 9", job.output)
    local killed_at = tonumber(H.read_file(job.out .. "/killed_at"))
    assert.is_true(job.finished - killed_at < 5, ("the job took %.1f s to end after the kill"):format(job.finished - killed_at))
    assert.is_true(fs.exists(job.out .. "/ckpt/last.safetensors"))
    assert.is_nil(io.open(job.out .. "/weights.safetensors"), "the job finished after all")
    resume_with_1_and_4(job, straight, 4)
  end)
end)

describe("Resuming inside an epoch", function()
  it("from the state rank 0 saved when it failed, with 1 and with 4 processes, at the same sample", function()
    local straight = single({kind = "plain", batch = 8, epochs = 2})
    -- rank 0 fails after step 13 (batch 3 of epoch 1): it saves the last good state, on_exception
    local job = M.mpirun(2, "fit", {kind = "plain", batch = 4, epochs = 2, checkpoint = true, fail_at_step = 13,
      fail_rank = 0}, {timeout = 60})
    assert.are_not.equal(0, job.code)
    assert.matches("failing on purpose", job.output)
    assert.matches("saved to [^\n]*on_exception%.safetensors", job.output)
    resume_with_1_and_4(job, straight, 2)
  end)
end)

describe("lightning-train --nproc N (examples/train.lua)", function()
  it("starts mpirun with the options this machine needs; only rank 0 prints and writes", function()
    local dir = H.tmpdir()
    X.image_folder(dir .. "/imgs", 6)
    -- (14 training images: 7 per process, in batches of 5 and 2: BatchNorm1d needs 2 per batch)
    local code, text = X.run("train.lua", ("--nproc 2 --data_dir %s/imgs --image_size 16 --max_epochs 1 --batch_size 5 " ..
      "--num_workers 0 --quiet --output_dir %s/out"):format(dir, dir), {env = "OMPI_MCA_btl_vader_single_copy_mechanism=none"})
    assert.equal(0, code, text)
    local command = text:match("(mpirun [^\n]*)")
    assert(command, text)
    assert.matches("^mpirun %-np 2 ", command)
    assert.matches("%-x OMP_NUM_THREADS=1", command)
    assert.is_nil(command:find("--nproc", 1, true))
    if L.distributed.launch.is_root() then assert.matches("%-%-allow%-run%-as%-root", command) end
    local _, finished = text:gsub("Training finished after 1 epoch ", "")
    assert.equal(1, finished)   -- (rank 1 printed nothing)
    local _, device = text:gsub("\nDEVICE\n", "")
    assert.equal(1, device)
    assert.matches("DDPStrategy: 2 processes, gradients in %d+ buckets", text)
    assert.is_true(fs.exists(dir .. "/out/image_classifier/version_0/checkpoints/last.safetensors"))
    assert.is_false(fs.exists(dir .. "/out/image_classifier/version_1"))   -- (one version: rank 0's)
    -- the run's configuration names the processes and the batch of a step, which rank 0 alone cannot see
    local yaml = H.read_file(dir .. "/out/image_classifier/version_0/hparams.yaml")
    assert.matches("\nnproc: 2\n", yaml)
    assert.matches("\nglobal_batch_size: 10\n", yaml)
    H.rmdir(dir)
  end)
end)
