-- Every Trainer option, with PyTorch Lightning's meaning, and the errors for bad values.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"

local function loader(n, batch_size, seed)
  return S.Loader(S.regression_batches(n, batch_size or 4, 3, seed or 1))
end

-- A Regression that counts its steps.
local function counting_model(counts, opts)
  opts = opts or {}
  local methods = opts.methods or {}
  local Base = S.Regression(opts)
  methods.validation_step = methods.validation_step or function(self, batch, i)
    counts.val = (counts.val or 0) + 1
    if self.trainer.sanity_checking then counts.sanity = (counts.sanity or 0) + 1 end
    return Base.validation_step(self, batch, i)
  end
  methods.training_step = methods.training_step or function(self, batch, i)
    counts.train = (counts.train or 0) + 1
    return Base.training_step(self, batch, i)
  end
  opts.methods = methods
  return S.Regression(opts)(3)
end

local function run(dir, trainer_opts, train_n, val_n, model_opts)
  local counts = {}
  local model = counting_model(counts, model_opts)
  local trainer = L.Trainer(S.quiet(dir, trainer_opts))
  local text = output.capture(trainer.fit, trainer, model, loader(train_n or 4), val_n and loader(val_n, 4, 2) or nil)
  return trainer, counts, model, text
end

describe("Trainer options", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("max_epochs: that many epochs; 1000 by default, unlimited with max_steps alone", function()
    local trainer, counts = run(dir, {max_epochs = 3}, 4)
    assert.equal(3, trainer.current_epoch)
    assert.equal(12, trainer.global_step)
    assert.equal(12, counts.train)
    assert.equal(1000, L.Trainer{logger = false}.max_epochs)
    assert.equal(-1, L.Trainer{logger = false, max_steps = 5}.max_epochs)
  end)

  it("max_steps: stops inside an epoch", function()
    local trainer, counts = run(dir, {max_steps = 6, max_epochs = 10}, 4)
    assert.equal(6, trainer.global_step)
    assert.equal(6, counts.train)
    assert.equal(2, trainer.current_epoch)   -- the interrupted epoch still ends (its hooks run)
  end)

  it("min_epochs: training continues after a stop request until it is reached", function()
    local stopper = {on_train_epoch_end = function(_, trainer) trainer.should_stop = true end}
    local trainer, _, _, text = run(dir, {max_epochs = 10, min_epochs = 3, callbacks = {stopper}}, 2)
    assert.equal(3, trainer.current_epoch)
    assert.matches("min_epochs = 3", text)
    local t2 = run(dir, {max_epochs = 10, callbacks = {stopper}}, 2)
    assert.equal(1, t2.current_epoch)
  end)

  it("min_steps: a stop request waits for that many steps", function()
    local stopper = {on_train_batch_end = function(_, trainer) trainer.should_stop = true end}
    local trainer = run(dir, {max_epochs = 10, min_steps = 5, callbacks = {stopper}}, 4)
    assert.equal(5, trainer.global_step)
  end)

  it("limit_train_batches / limit_val_batches: a count (integer) or a fraction (float)", function()
    local trainer, counts = run(dir, {max_epochs = 1, limit_train_batches = 3, limit_val_batches = 0.5,
      num_sanity_val_steps = 0}, 10, 4)
    assert.equal(3, counts.train)
    assert.equal(2, counts.val)
    assert.equal(3, trainer.num_training_batches)
    local _, c2 = run(dir, {max_epochs = 1, limit_train_batches = 0.25, num_sanity_val_steps = 0}, 8)
    assert.equal(2, c2.train)
    local _, c3 = run(dir, {max_epochs = 1, limit_train_batches = 1, limit_val_batches = 0}, 8, 4)
    assert.equal(1, c3.train)   -- 1 (an integer) is one batch, 1.0 all of them
    assert.is_nil(c3.val)       -- no validation at all
  end)

  it("limit_test_batches and limit_predict_batches", function()
    local model = S.Regression{}(3)
    local trainer = L.Trainer(S.quiet(dir, {limit_test_batches = 2, limit_predict_batches = 0.5}))
    local seen = 0
    model.test_step = function() seen = seen + 1 end
    trainer:test(model, loader(5), {verbose = false})
    assert.equal(2, seen)
    assert.equal(3, #trainer:predict(model, loader(6)))
  end)

  it("check_val_every_n_epoch: validates after every n-th epoch", function()
    local epochs = {}
    local model_opts = {methods = {on_validation_epoch_end = function(self)
      if not self.trainer.sanity_checking then epochs[#epochs + 1] = self.trainer.current_epoch end
    end}}
    run(dir, {max_epochs = 5, check_val_every_n_epoch = 2}, 2, 2, model_opts)
    assert.same({1, 3}, epochs)
  end)

  it("num_sanity_val_steps: batches of the sanity check (0 none, -1 all)", function()
    local _, c = run(dir, {max_epochs = 1}, 1, 5)
    assert.equal(2, c.sanity)
    _, c = run(dir, {max_epochs = 1, num_sanity_val_steps = 0}, 1, 5)
    assert.is_nil(c.sanity)
    _, c = run(dir, {max_epochs = 1, num_sanity_val_steps = -1}, 1, 5)
    assert.equal(5, c.sanity)
  end)

  it("gradient_clip_val with the norm algorithm scales the gradients to that total norm", function()
    local norms = {}
    local spy = {on_before_optimizer_step = function(_, trainer, module)
      norms.before = math.sqrt(module.weight.grad:norm() ^ 2 + module.bias.grad:norm() ^ 2)
    end}
    local model_opts = {methods = {optimizer_step = function(self, epoch, i, opt)
      norms.after = math.sqrt(self.weight.grad:norm() ^ 2 + self.bias.grad:norm() ^ 2)
      opt:step()
    end}}
    run(dir, {max_steps = 1, gradient_clip_val = 0.01, callbacks = {spy}}, 1, nil, model_opts)
    assert.is_true(norms.before > 0.01)
    assert.near(0.01, norms.after, 1e-6)
    norms = {}
    run(dir, {max_steps = 1, gradient_clip_val = 1e6, callbacks = {spy}}, 1, nil, model_opts)
    assert.near(norms.before, norms.after, 1e-6 * norms.before)   -- below the limit: unchanged
  end)

  it("gradient_clip_algorithm = \"value\" clamps each gradient element", function()
    local largest
    local model_opts = {methods = {optimizer_step = function(self, epoch, i, opt)
      largest = math.max((self.weight.grad:abs():max()), (self.bias.grad:abs():max()))
      opt:step()
    end}}
    run(dir, {max_steps = 1, gradient_clip_val = 0.001, gradient_clip_algorithm = "value"}, 1, nil, model_opts)
    assert.near(0.001, largest, 1e-9)
  end)

  it("accumulate_grad_batches: one step per n batches with the mean gradient", function()
    -- two batches of 4 accumulated equal one batch of 8 (noise off, plain SGD)
    local batches = S.regression_batches(2, 4, 3, 7)
    local joined = {input = L.zeros(8, 3), target = L.zeros(8, 1)}
    joined.input:narrow(1, 1, 4):copy(batches[1].input)
    joined.input:narrow(1, 5, 4):copy(batches[2].input)
    joined.target:narrow(1, 1, 4):copy(batches[1].target)
    joined.target:narrow(1, 5, 4):copy(batches[2].target)
    local zero_grads = 0
    local counter = {on_before_zero_grad = function() zero_grads = zero_grads + 1 end}
    L.manual_seed(5)
    local a = S.Regression{noise = false, momentum = 0}(3)
    local ta = L.Trainer(S.quiet(dir, {max_epochs = 1, accumulate_grad_batches = 2, callbacks = {counter}}))
    ta:fit(a, S.Loader(batches))
    L.manual_seed(5)
    local b = S.Regression{noise = false, momentum = 0}(3)
    L.Trainer(S.quiet(dir, {max_epochs = 1})):fit(b, S.Loader({joined}))
    assert.equal(1, ta.global_step)
    assert.equal(1, zero_grads)
    H.assert_close(a.weight, b.weight, 1e-6, "weights")
    H.assert_close(a.bias, b.bias, 1e-6, "bias")
    -- an odd number of batches: the last, incomplete group steps too
    local t3 = run(dir, {max_epochs = 1, accumulate_grad_batches = 2}, 5)
    assert.equal(3, t3.global_step)
  end)

  it("deterministic: the same seed gives the same weights", function()
    local function train()
      L.manual_seed(11)
      local m = S.Regression{}(3)
      L.Trainer(S.quiet(dir, {max_epochs = 2, deterministic = true})):fit(m, S.Loader(S.regression_batches(3, 4, 3, 1), true))
      return m.weight:clone()
    end
    assert.same(train():totable(), train():totable())
    assert.matches("deterministic must be true, false or \"warn\", got 1", H.error_of(L.Trainer, {deterministic = 1}))
  end)

  it("default_root_dir: where checkpoints and logs go", function()
    local trainer = run(dir, {max_epochs = 1, enable_checkpointing = true}, 2)
    assert.equal(dir .. "/checkpoints", trainer.checkpoint_callback.dirpath)
    assert.is_true(H.read_file(dir .. "/checkpoints/epoch=0-step=2.safetensors") ~= nil)
    assert.equal(dir, trainer.log_dir)
  end)

  it("fast_dev_run: one batch of training and validation, no sanity check, checkpoints or logs", function()
    local lg = S.MemoryLogger()
    local trainer, counts = run(dir, {fast_dev_run = true, enable_checkpointing = true, logger = lg, max_epochs = 5}, 4, 4)
    assert.equal(1, counts.train)
    assert.equal(1, counts.val)
    assert.is_nil(counts.sanity)
    assert.equal(0, #trainer.loggers)
    assert.equal(0, #lg.records)
    assert.is_nil(io.open(dir .. "/checkpoints/epoch=0-step=1.safetensors"))
    local t2, c2 = run(dir, {fast_dev_run = 3}, 10, 10)
    assert.equal(3, c2.train)
    assert.equal(3, c2.val)
    assert.equal(3, t2.global_step)
  end)

  it("enable_progress_bar, enable_model_summary, enable_checkpointing add the default callbacks", function()
    local t = L.Trainer{logger = false, default_root_dir = dir}
    local kinds = {}
    for _, cb in ipairs(t.callbacks) do kinds[#kinds + 1] = L.class.name_of(cb) end
    assert.same({"ProgressBar", "ModelSummary", "ModelCheckpoint"}, kinds)
    assert.same({}, L.Trainer(S.quiet(dir)).callbacks)
    local _, _, _, text = run(dir, {max_epochs = 1, enable_progress_bar = true, enable_model_summary = true}, 2)
    assert.matches("Total params", text)
    assert.matches("Epoch 0: 2/2 batches", text)
    assert.matches("enable_checkpointing = false but a ModelCheckpoint is in callbacks",
      H.error_of(L.Trainer, {logger = false, enable_checkpointing = false, callbacks = {L.callbacks.ModelCheckpoint{}}}))
  end)

  it("logger: none, one, several, or TensorBoard under default_root_dir by default", function()
    assert.equal(0, #L.Trainer{logger = false}.loggers)
    local a, b = S.MemoryLogger(), S.MemoryLogger()
    local trainer = run(dir, {max_epochs = 1, logger = {a, b}}, 2)
    assert.equal(a, trainer.logger)
    assert.is_true(#a.records > 0 and #a.records == #b.records)
    assert.equal("success", a.finalized)
    local default = L.Trainer{default_root_dir = dir}
    assert.equal("TensorBoardLogger", L.class.name_of(default.logger))
    assert.matches("logger 2 must have log_metrics", H.error_of(L.Trainer, {logger = {a, {}}}))
    assert.matches("logger must be a logger, a list of loggers, true or false, got \"tb\"",
      H.error_of(L.Trainer, {logger = "tb"}))
  end)

  it("precision: 32, bf16-mixed and (on a GPU) 16-mixed by Lightning's names, anything else a clear error", function()
    for _, ok in ipairs {"32", 32, "32-true"} do
      assert.equal("32-true", L.Trainer{logger = false, precision = ok}.precision_plugin.precision)
    end
    for _, ok in ipairs {"bf16-mixed", "bf16"} do
      assert.equal("bf16-mixed", L.Trainer{logger = false, precision = ok}.precision_plugin.precision)
    end
    for _, fp16 in ipairs {"16-mixed", 16, "16"} do
      assert.matches("Trainer: 16%-mixed %(fp16 with a loss scaler%) needs a GPU: the CPU has no fp16 kernels " ..
        "%(Lightning refuses it on a CPU too%); use precision = \"bf16%-mixed\"",
        H.error_of(L.Trainer, {accelerator = "cpu", logger = false, precision = fp16}))
    end
    assert.matches("precision \"16%-true\": 16%-true .* is not supported: use precision = \"16%-mixed\"",
      H.error_of(L.Trainer, {precision = "16-true"}))
    assert.matches("precision \"bf16%-true\": bf16%-true .* is not supported: use precision = \"bf16%-mixed\"",
      H.error_of(L.Trainer, {precision = "bf16-true"}))
    assert.matches("precision 64: float64 is not supported", H.error_of(L.Trainer, {precision = 64}))
    assert.matches("precision \"8\" is not supported: use precision = \"32\" %(float32%), \"bf16%-mixed\" or " ..
      "\"16%-mixed\" %(on a GPU%)",
      H.error_of(L.Trainer, {precision = "8"}))
  end)

  it("detect_anomaly: a NaN loss stops training, naming the batch", function()
    local model_opts = {methods = {training_step = function(self, batch, i)
      local out = S.Regression{}.training_step(self, batch, i)
      if i == 3 then out.loss = 0 / 0 end
      return out
    end}}
    local err = H.error_of(run, dir, {max_epochs = 1, detect_anomaly = true}, 4, nil, model_opts)
    assert.matches("detect_anomaly: the loss is [-]?nan at epoch 0, batch 3 %(global step 2%)", err)
    -- without it, training goes on
    assert.has_no.errors(function() run(dir, {max_epochs = 1}, 4, nil, model_opts) end)
  end)

  it("detect_anomaly: a NaN or infinite gradient names the parameter", function()
    local model_opts = {methods = {backward = function(self, x, grad_out)
      self.weight.grad:add(L.mm(x:t(), grad_out))
      self.bias.grad:add(math.huge)
    end}}
    local err = H.error_of(run, dir, {max_epochs = 1, detect_anomaly = true}, 2, nil, model_opts)
    assert.matches("detect_anomaly: the gradient of bias has 1 NaN or infinite value at epoch 0, batch 1", err)
  end)

  local bad = {
    {{max_epoch = 3}, "Trainer: unknown option 'max_epoch' %(did you mean 'max_epochs'%?%) %(known: .*max_epochs"},
    {{max_epochs = 1.5}, "max_epochs must be an integer >= %-1, got 1.5"},
    {{max_steps = -2}, "max_steps must be an integer >= %-1, got %-2"},
    {{limit_train_batches = 1.5}, "limit_train_batches must be a number of batches %(an integer >= 0%) or a fraction"},
    {{limit_val_batches = -1}, "limit_val_batches must be a number of batches"},
    {{check_val_every_n_epoch = 0}, "check_val_every_n_epoch must be an integer >= 1, got 0"},
    {{num_sanity_val_steps = -2}, "num_sanity_val_steps must be an integer >= %-1"},
    {{log_every_n_steps = 0}, "log_every_n_steps must be an integer >= 1, got 0"},
    {{gradient_clip_val = -1}, "gradient_clip_val must be a number >= 0, got %-1"},
    {{gradient_clip_algorithm = "l2"}, "gradient_clip_algorithm must be \"norm\" or \"value\", got \"l2\""},
    {{accumulate_grad_batches = 0}, "accumulate_grad_batches must be an integer >= 1, got 0"},
    {{default_root_dir = 5}, "default_root_dir must be a string, got 5"},
    {{fast_dev_run = "yes"}, "fast_dev_run must be a boolean or an integer >= 0, got \"yes\""},
    {{enable_progress_bar = 1}, "enable_progress_bar must be a boolean, got 1"},
    {{callbacks = 3}, "callbacks must be a table, got 3"},
    {{detect_anomaly = "on"}, "detect_anomaly must be a boolean, got \"on\""},
    {{accelerator = "tpu"}, "accelerator must be \"auto\", \"cpu\", \"gpu\" or \"cuda\", got \"tpu\""},
    {{devices = 2}, "devices must be \"auto\" or 1 %(one device per process; several processes: strategy = \"ddp\" " ..
      "under mpirun%), got 2"},
    {"fast", "Trainer: expected a table of options, got \"fast\""},
  }
  for _, case in ipairs(bad) do
    it("rejects " .. (type(case[1]) == "table" and next(case[1]) or tostring(case[1])), function()
      assert.matches(case[2], H.error_of(L.Trainer, case[1]))
    end)
  end

  it("rejects a fraction that leaves no batch", function()
    assert.matches("limit_train_batches = 0.1 of 4 batches is less than one batch",
      H.error_of(run, dir, {limit_train_batches = 0.1}, 4))
  end)

  it("rejects fit without training data, and bad data arguments", function()
    local trainer = L.Trainer(S.quiet(dir))
    local model = S.Regression{}(3)
    assert.matches("no training data", H.error_of(trainer.fit, trainer, model))
    assert.matches("Trainer:fit: argument 2 must be a data module, a loader", H.error_of(trainer.fit, trainer, model, 42))
    assert.matches("Trainer:fit: unknown option 'ckpt' %(did you mean 'ckpt_path'%?%) %(known: .*ckpt_path", H.error_of(trainer.fit, trainer, model, loader(1), {ckpt = "x"}))
    assert.matches("Trainer:fit: checkpoint /nonexistent.safetensors not found",
      H.error_of(trainer.fit, trainer, model, loader(1), {ckpt_path = "/nonexistent.safetensors"}))
  end)
end)
