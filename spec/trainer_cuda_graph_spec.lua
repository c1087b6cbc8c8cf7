-- The Trainer's training step in a CUDA graph (Trainer{cuda_graph = ...}, lightning/trainer/graphed_step.lua)
-- on the specs' stand-in device, whose graphs record calls and replay them as a GPU's would
-- (csrc/testing/fake_graph.c): a fit whose steps are replays logs, trains and counts its metrics as the
-- same fit run eagerly, bit for bit; what cannot be captured is named. Each case runs in a process of its own.
local F = require "fake_device"

local on_fake = F.on_fake

local function case(name, fn)
  if not F.built() then return pending(name .. " (this build has no fake device)") end
  it(name, fn)
end

-- A LightningModule that logs its loss as a tensor, under OneCycleLR (the learning rate and Adam's first
-- beta change every step); 9 batches of 4 samples and a last one of 2; validation on batches of 3; its
-- fifth batch in an epoch is not to be replayed.
local MODULE = [[
  local nn = L.nn
  local S = require "trainer_standins"
  local Net = L.class("Net", L.LightningModule)
  function Net:__init()
    L.LightningModule.__init(self)
    self.net = self:add_module("net", nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3)))
    self.crit = nn.CrossEntropyLoss()
  end
  -- every batch but the fifth of an epoch: that one runs eagerly between the replays
  function Net:capturable_training_step(batch, i) return i ~= 5 end
  function Net:forward(x) return self.net(x) end
  function Net:training_step(batch)
    local loss = self.crit(self(batch.input), batch.target)
    self:log("train_loss", loss, {on_step = true, on_epoch = true, prog_bar = true})
    return loss
  end
  function Net:validation_step(batch)
    self:log("val_loss", self.crit(self(batch.input), batch.target))
  end
  function Net:configure_optimizers()
    local opt = L.optim.Adam(self:parameters(), {lr = 1e-2})
    return {optimizer = opt, lr_scheduler = {scheduler = L.optim.lr_scheduler.OneCycleLR(opt, {max_lr = 0.05,
      total_steps = 30}), interval = "step"}}
  end
  local function batches(n, size, last)
    L.manual_seed(2)
    local list = {}
    for i = 1, n do
      local b = i == n and last or size
      local t = {}
      for j = 1, b do t[j] = (i + j) % 3 + 1 end
      list[i] = {input = L.randn(b, 5), target = L.tensor(t)}
    end
    return list
  end
  -- the records a MemoryLogger got, one line a value; the final parameters; the trainer. extra: more
  -- Trainer options; ckpt_path: a checkpoint to resume from.
  local function fit(cuda_graph, extra, ckpt_path)
    L.manual_seed(5)
    L.cuda.manual_seed(7)
    local logger = S.MemoryLogger()
    local opts = {accelerator = "gpu", max_epochs = 3, logger = logger, log_every_n_steps = 2, cuda_graph = cuda_graph}
    for k, v in pairs(extra or {}) do opts[k] = v end
    local trainer = L.Trainer(S.quiet(opts.default_root_dir or os.tmpname() .. ".d", opts))
    local model = Net()
    trainer:fit(model, S.Loader(batches(10, 4, 2)), S.Loader(batches(3, 3, 3)), {ckpt_path = ckpt_path})
    local values = {}
    for i, p in ipairs(model:parameters()) do values[i] = table.concat(p:cpu():view(-1):totable(), " ") end
    return logger:text(), table.concat(values, "\n"), trainer
  end
]]

describe("the Trainer's training step in a CUDA graph", function()
  case("replays the step of each batch shape: the logs, the weights and the optimizer's state are the eager " ..
    "run's", function()
    local out = on_fake(MODULE .. [[
      local eager_logs, eager_values, eager = fit(false)
      local logs, values, graphed = fit(true)
      assert(eager.cuda_graph_stats == nil)
      local stats = graphed.cuda_graph_stats
      -- two shapes (4 and the last 2): each one's first batch eager, its second captured; the fifth batches eager
      assert(stats.captures == 2 and stats.replays == 30 - 2 - 3, stats.captures .. " " .. stats.replays)
      assert(logs == eager_logs, eager_logs .. "\n---\n" .. logs)
      assert(values == eager_values)
      assert(#logs > 0)
      assert(graphed.optimizers[1]:state_dict().state[1].step == 30)
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.equal("ok\n", out)
  end)

  case("a checkpoint keeps the GPU's generator: resumed at an epoch's end or inside one, the run draws the " ..
    "dropout masks of the uninterrupted one and ends with its bits", function()
    local out = on_fake(MODULE .. [[
      local H = require "helpers"
      local dir = H.tmpdir()
      local function options(extra)
        local o = {enable_checkpointing = true, default_root_dir = dir, val_check_interval = 5,
          callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", save_last = true}}}
        for k, v in pairs(extra) do o[k] = v end
        return o
      end
      local _, whole = fit(false, options{max_epochs = 3})
      for _, stop in ipairs {20, 15} do   -- the end of epoch 2; inside it, after its validation at batch 5
        fit(false, options{max_steps = stop})
        local ckpt = require("lightning.trainer.checkpoint").read(dir .. "/ckpt/last.safetensors")
        assert(type(ckpt.cuda_rng_state) == "string" and ckpt.cuda_rng_state ~= L.get_rng_state())
        if stop == 15 then assert(ckpt.loops.batches_done == 5 and ckpt.loops.device_rng, "not inside the epoch") end
        local _, resumed = fit(false, options{max_epochs = 3}, dir .. "/ckpt/last.safetensors")
        assert(resumed == whole, stop .. ":\n" .. resumed .. "\n---\n" .. whole)
      end
      H.rmdir(dir)
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.matches("ok\n$", out)
  end)

  case("clips the gradients inside the graph (their norm stays on the device): the eager run's bits, by norm " ..
    "and by value", function()
    local out = on_fake(MODULE .. [[
      for _, clip in ipairs {{gradient_clip_val = 0.05}, {gradient_clip_val = 0.01, gradient_clip_algorithm = "value"}} do
        local eager_logs, eager_values = fit(false, clip)
        local logs, values, graphed = fit(true, clip)
        assert(graphed.cuda_graph_stats.replays == 25, graphed.cuda_graph_stats.replays)
        assert(values == eager_values and logs == eager_logs)
        local _, unclipped = fit(false)
        assert(unclipped ~= values, "the clipping changed nothing")
      end
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.equal("ok\n", out)
  end)

  case("a graphed fit's checkpoint resumes: eagerly or graphed, the resumed runs are the same, bit for bit", function()
    local out = on_fake(MODULE .. [[
      local H = require "helpers"
      local dir = H.tmpdir()
      local function options(max_epochs)
        return {enable_checkpointing = true, default_root_dir = dir, max_epochs = max_epochs,
          callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", save_last = true}}}
      end
      local _, _, first = fit(true, options(2))
      assert(first.cuda_graph_stats.replays > 0)
      os.rename(dir .. "/ckpt/last.safetensors", dir .. "/epoch2.safetensors")
      local eager_logs, eager_values = fit(false, options(3), dir .. "/epoch2.safetensors")
      local logs, values, resumed = fit(true, options(3), dir .. "/epoch2.safetensors")
      assert(resumed.global_step == 30 and resumed.cuda_graph_stats.replays > 0, resumed.global_step)
      assert(values == eager_values, values .. "\n---\n" .. eager_values)
      assert(logs == eager_logs)
      H.rmdir(dir)
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.matches("ok\n$", out)
  end)

  case("\"auto\" replays an ImageClassifier's steps, its metrics added up as in the eager run", function()
    local out = on_fake([[
      local S = require "trainer_standins"
      local samples = S.band_images(36, 3, {classes = 3, channels = 1, size = 8, band = 2, step = 3, noise = 0.3})
      local function run(cuda_graph)
        L.manual_seed(1)
        L.cuda.manual_seed(1)
        local trainer = L.Trainer(S.quiet(os.tmpname() .. ".d", {accelerator = "gpu", max_epochs = 2,
          log_every_n_steps = 4, cuda_graph = cuda_graph}))
        local model = S.conv_classifier({})
        trainer:fit(model, L.data.DataLoader(samples, {batch_size = 8}))
        return trainer, model.epoch_metrics.train:compute()
      end
      local eager, eager_scores = run(false)
      local graphed, scores = run("auto")
      assert(graphed.cuda_graph_stats and graphed.cuda_graph_stats.replays > 0)
      -- the last epoch's EpochMetrics: its confusion counts and its losses, one a replay
      for k, v in pairs(eager_scores) do
        assert(scores[k] == v, k .. ": " .. tostring(v) .. " " .. tostring(scores[k]))
      end
      for _, k in ipairs {"train_acc", "train_loss_epoch", "train_f1", "train_precision", "train_recall"} do
        assert(eager.callback_metrics[k] == graphed.callback_metrics[k],
          k .. ": " .. tostring(eager.callback_metrics[k]) .. " " .. tostring(graphed.callback_metrics[k]))
      end
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.equal("ok\n", out)
  end)

  case("names what keeps a step from being captured; \"auto\" then runs it eagerly", function()
    local out = on_fake(MODULE .. [[
      local function refused(extra, pattern, model_hook)
        if model_hook then Net[model_hook] = function() end end
        local ok, err = pcall(fit, true, extra)
        if model_hook then Net[model_hook] = nil end
        assert(not ok and err:find("cuda_graph = true, but the training step cannot be captured: " .. pattern), err)
      end
      refused({accumulate_grad_batches = 2}, "accumulate_grad_batches is not 1")
      refused({callbacks = {{on_after_backward = function() end}}}, "callback 1 has the hook on_after_backward")
      refused({}, "Net defines on_before_optimizer_step", "on_before_optimizer_step")
      refused({accelerator = "cpu"}, "it trains on the CPU")
      local _, _, auto = fit("auto", {accumulate_grad_batches = 2})
      assert(auto.cuda_graph_stats == nil)
      -- a training_step that reads a value back cannot be captured: true fails, "auto" says so and goes on
      local step = Net.training_step
      Net.training_step = function(self, batch, i) local loss = step(self, batch, i) loss:item() return loss end
      local ok, err = pcall(fit, true)
      assert(not ok and err:find("cuda_graph = true, but the training step could not be captured in a CUDA " ..
        "graph: .*cannot be captured in a CUDA graph %(it makes the host wait for the GPU%)"), err)
      local eager_logs = fit(false)
      local logs, _, went_on = fit("auto")
      assert(went_on.cuda_graph_stats.replays == 0 and logs == eager_logs)
      Net.training_step = step
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    -- said once, by the trainer
    assert.matches("^cuda_graph: the training step could not be captured in a CUDA graph: [^\n]*Tensor:item: " ..
      "copying a tensor to the host cannot be captured in a CUDA graph %(it makes the host wait for the GPU%); the " ..
      "steps run eagerly\nok\n$", out)
  end)
end)
