-- Our event files read by TensorBoard itself: its EventAccumulator and hparams protobufs see every
-- scalar, step and wall time we wrote and the hyperparameters; `tensorboard --logdir` serves the run
-- over its HTTP API. Pending where TensorBoard is not installed (bench/setup_peers.sh; CI installs it).
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local peers = require "peers"
local tfevents = require "lightning.loggers.tfevents"
local fsio = L.core.io

local READER = "spec/peers/tensorboard_read.py"
local python, why = peers.python("tensorboard")

local function float32(x) return string.unpack("<f", string.pack("<f", x)) end

local function event_file(dir)
  for _, name in ipairs(fsio.listdir(dir)) do
    if name:match("^events%.out%.tfevents%.") then return dir .. "/" .. name end
  end
end

-- What we wrote: {tag = {{step, value, wall_time}, ...}} from our own logger calls, wall times from our
-- reader (itself checked against a file TensorBoard wrote, in io_tfevents_spec).
local function our_scalars(path)
  local out = {}
  for tag, list in pairs(tfevents.scalars(path)) do
    out[tag] = {}
    for i, e in ipairs(list) do out[tag][i] = {e.step, e.value, e.wall_time} end
  end
  return out
end

-- TensorBoard's [[wall_time, step, value], ...] per tag against ours, value for value.
local function assert_same_series(ours, theirs, where)
  local tags_ours, tags_theirs = {}, {}
  for tag in pairs(ours) do tags_ours[#tags_ours + 1] = tag end
  for tag in pairs(theirs) do tags_theirs[#tags_theirs + 1] = tag end
  table.sort(tags_ours) table.sort(tags_theirs)
  assert.are.same(tags_ours, tags_theirs, where .. ": scalar tags")
  for tag, list in pairs(ours) do
    assert.are.equal(#list, #theirs[tag], where .. ": events of " .. tag)
    for i, e in ipairs(list) do
      local t = theirs[tag][i]
      assert.are.equal(e[1], t[2], ("%s: %s[%d] step"):format(where, tag, i))
      assert.are.equal(float32(e[2]), t[3], ("%s: %s[%d] value"):format(where, tag, i))
      assert.is_true(math.abs(e[3] - t[1]) < 1e-6, ("%s: %s[%d] wall time %.6f against %.6f"):format(where, tag, i, e[3], t[1]))
    end
  end
end

describe("TensorBoard reads our event files (the real tool)", function()
  local dir
  -- (busted allows pending inside a test only: each test says why it cannot run where TensorBoard is missing)
  before_each(function()
    if python then dir = H.tmpdir() end
  end)
  after_each(function() if dir then H.rmdir(dir) dir = nil end end)

  it("sees every scalar, step, wall time and the hyperparameters that TensorBoardLogger wrote", function()
    if not python then return pending(why) end
    local t0 = fsio.wall_time()
    local tb = L.loggers.TensorBoardLogger{save_dir = dir, name = "exp"}
    tb:log_hyperparams({lr = 0.01, batch_size = 64, optimizer = "adam", nesterov = true,
      net = {depth = 3, widths = {16, 32}}}, {val_acc = 0})
    local written = {}
    for step = 0, 9 do
      local m = {train_loss = 2.5 / (step + 1), lr = 0.1 * 0.9 ^ step, ["val/acc"] = step / 10 + 1 / 3}
      tb:log_metrics(m, step * 7)
      for k, v in pairs(m) do
        written[k] = written[k] or {}
        table.insert(written[k], {step * 7, v})
      end
    end
    tb:log_metrics({huge = 3.4e38, tiny = 1e-40, negative = -0.0}, 100)
    tb:finalize("success")
    local t1 = fsio.wall_time()

    local got = peers.json(python, READER, "read", dir .. "/exp")
    local run = assert(got["version_0"], "TensorBoard found no run version_0")
    local ours = our_scalars(event_file(tb.log_dir))
    assert_same_series(ours, run.scalars, "EventAccumulator")
    -- and ours are what the logger was given (float32 values, the steps we passed, wall times of this run)
    for tag, list in pairs(written) do
      for i, e in ipairs(list) do
        assert.are.equal(e[1], run.scalars[tag][i][2])
        assert.are.equal(float32(e[2]), run.scalars[tag][i][3])
        assert.is_true(run.scalars[tag][i][1] >= t0 - 1e-3 and run.scalars[tag][i][1] <= t1 + 1e-3)
      end
    end
    assert.are.equal(0, run.scalars.val_acc[1][2])   -- the hparams metric, logged at step 0 as Lightning does
    assert.are.equal(float32(3.4e38), run.scalars.huge[1][3])

    local hp = run.hparams
    assert.are.same({"batch_size", "lr", "nesterov", "net/depth", "net/widths", "optimizer"}, hp.experiment.hparams)
    assert.are.same({"val_acc"}, hp.experiment.metrics)
    assert.are.same({batch_size = 64, lr = 0.01, nesterov = true, ["net/depth"] = 3, ["net/widths"] = "[16, 32]",
      optimizer = "adam"}, hp.session_start)
    assert.are.same({}, run.images)
  end)

  it("sees what a Trainer logs during fit (per-step and per-epoch metrics, epoch, learning rate)", function()
    if not python then return pending(why) end
    local Regression = S.Regression({scheduler = true})
    local model = Regression(3)
    local batches = S.regression_batches(6, 8, 3, 5)
    local logger = L.loggers.TensorBoardLogger{save_dir = dir}
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 2, logger = logger, log_every_n_steps = 1,
      callbacks = {L.callbacks.LearningRateMonitor{}}}))
    trainer:fit(model, S.Loader(batches), S.Loader(batches))
    local got = peers.json(python, READER, "read", dir .. "/lightning_logs")
    local run = assert(got["version_0"])
    assert_same_series(our_scalars(event_file(logger.log_dir)), run.scalars, "EventAccumulator")
    for _, tag in ipairs({"train_loss_step", "train_loss_epoch", "val_loss", "epoch"}) do
      assert.is_truthy(run.scalars[tag], "TensorBoard shows no " .. tag)
    end
    assert.are.equal(12, #run.scalars.train_loss_step)        -- 6 steps x 2 epochs
    assert.are.equal(2, #run.scalars.val_loss)
    assert.are.equal(3, run.hparams.session_start.dim)             -- save_hyperparameters' values
    assert.are.equal(float32(0.05), float32(run.hparams.session_start.lr))
  end)

  it("tensorboard --logdir serves our run: its HTTP API lists the run, the tags and every value", function()
    if not python then return pending(why) end
    local tb = L.loggers.TensorBoardLogger{save_dir = dir, name = "served"}
    for step = 0, 4 do tb:log_metrics({loss = 1 / (step + 1), acc = step / 4}, step) end
    tb:finalize("success")
    local got = peers.json(python, READER, "serve", dir)
    assert.are.same({"served/version_0"}, got.runs)
    local ours = our_scalars(event_file(tb.log_dir))
    assert_same_series(ours, got.scalars["served/version_0"], "tensorboard's HTTP API")
  end)
end)
