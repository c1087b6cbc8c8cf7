-- The Trainer's strategy (lightning/strategies/): resolved from the strategy option, asked for every
-- zero_grad, backward and optimizer step, for loaders, checkpoints and sync_dist reductions, and
-- deciding which process writes; and its precision plugin (lightning/precision/).
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local strategies = require "lightning.strategies"
local Strategy, Single = strategies.Strategy, strategies.SingleDeviceStrategy

-- A SingleDeviceStrategy that records the calls it gets (name, and for backward its sync flag).
local function recording(overrides)
  local R = L.class("Recording", Single)
  function R:__init(opts)
    Single.__init(self, opts)
    self.calls, self.syncs = {}, {}
  end
  for _, m in ipairs {"setup_environment", "connect", "setup", "teardown", "optimizer_zero_grad", "backward",
      "optimizer_step", "process_dataloader", "save_checkpoint", "load_checkpoint", "reduce", "barrier"} do
    R[m] = function(self, ...)
      self.calls[#self.calls + 1] = m
      if m == "backward" then self.syncs[#self.syncs + 1] = select(5, ...) end
      return Single[m](self, ...)
    end
  end
  for k, v in pairs(overrides or {}) do R[k] = v end
  return R
end

local function count(list, name)
  local n = 0
  for _, x in ipairs(list) do if x == name then n = n + 1 end end
  return n
end

local function index_of(list, name)
  for i, x in ipairs(list) do if x == name then return i end end
end

describe("Trainer strategy", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function fit(trainer_opts, model_opts, batches)
    L.manual_seed(1)
    local model = S.Regression(model_opts or {noise = false})(3)
    local trainer = L.Trainer(S.quiet(dir, trainer_opts))
    trainer:fit(model, S.Loader(S.regression_batches(batches or 4, 4, 3, 2)))
    return trainer, model
  end

  it("is a SingleDeviceStrategy with a float32 plugin by default, and says this process is rank 0 of 1", function()
    for _, opts in ipairs {{}, {strategy = "auto"}, {strategy = "single"}, {precision = 32}, {precision = "32-true"}} do
      local trainer = L.Trainer(S.quiet(dir, opts))
      assert.is_true(L.class.is_instance(trainer.strategy, Single))
      assert.equal("32-true", trainer.precision_plugin.precision)
      assert.equal(trainer.strategy.precision_plugin, trainer.precision_plugin)
      assert.is_true(trainer.is_global_zero)
      assert.equal(0, trainer.global_rank)
      assert.equal(1, trainer.world_size)
    end
    local s = Single()
    assert.equal(5, s:reduce(5, "sum"))
    assert.same({7}, s:all_gather(7))
    assert.equal("x", s:broadcast("x", 0))
    assert.is_true(s:reduce_boolean_decision(true))
    assert.matches('reduce_op must be "mean", "sum", "max" or "min", got "avg"', H.error_of(s.reduce, s, 1, "avg"))
  end)

  it("takes a Strategy object, and refuses other values naming the choices", function()
    local s = Single()
    assert.equal(s, L.Trainer(S.quiet(dir, {strategy = s})).strategy)
    assert.matches('^Trainer: strategy must be "auto", "single", "ddp" or a Strategy object %(lightning.strategies%), ' ..
      'got "dp"', H.error_of(L.Trainer, {strategy = "dp"}))
    assert.matches("got \"singel\" %(did you mean 'single'%?%)", H.error_of(L.Trainer, {strategy = "singel"}))
    assert.matches("strategy must be .* got table", H.error_of(L.Trainer, {strategy = {}}))
    -- a plugin given twice
    local plugin = L.precision.Precision()
    assert.equal(plugin, L.Trainer(S.quiet(dir, {strategy = Single{precision_plugin = plugin}})).precision_plugin)
    assert.matches("precision is given twice",
      H.error_of(L.Trainer, {strategy = Single{precision_plugin = plugin}, precision = "32"}))
    assert.matches("SingleDeviceStrategy: precision_plugin must be a precision plugin %(lightning.precision%), got 3",
      H.error_of(Single, {precision_plugin = 3}))
    assert.matches("SingleDeviceStrategy: unknown option 'precision'", H.error_of(Single, {precision = "32"}))
  end)

  it("auto picks a registered strategy whose detect says so, in registration order", function()
    local Fake = L.class("FakeParallel", Single)
    strategies.register("fake", Fake, {detect = function() return true end})
    local ok, err = pcall(function()
      assert.is_true(L.class.is_instance(L.Trainer(S.quiet(dir)).strategy, Fake))
      assert.is_true(L.class.is_instance(L.Trainer(S.quiet(dir, {strategy = "fake"})).strategy, Fake))
      assert.is_true(L.class.is_instance(L.Trainer(S.quiet(dir, {strategy = "single"})).strategy, Single))
    end)
    strategies.register("fake", nil)
    assert(ok, err)
    assert.is_false(L.class.is_instance(L.Trainer(S.quiet(dir)).strategy, Fake))
    assert.matches('strategy must be "auto", "single", "ddp" or a Strategy', H.error_of(L.Trainer, {strategy = "fake"}))
    assert.matches("expected a Strategy subclass", H.error_of(strategies.register, "x", {}))
  end)

  it("gets every zero_grad, backward and optimizer step, with the sync flag of accumulation", function()
    local R = recording()
    local s = R()
    fit({strategy = s, max_epochs = 2, accumulate_grad_batches = 2}, nil, 4)
    assert.equal(8, count(s.calls, "backward"))
    assert.equal(4, count(s.calls, "optimizer_step"))
    assert.equal(4, count(s.calls, "optimizer_zero_grad"))
    assert.same({false, true, false, true, false, true, false, true}, s.syncs)
    -- life cycle: environment, module, loader, setup before the first step, teardown last
    assert.equal(1, index_of(s.calls, "setup_environment"))
    assert.equal(2, index_of(s.calls, "connect"))
    assert.is_true(index_of(s.calls, "process_dataloader") < index_of(s.calls, "setup"))
    assert.is_true(index_of(s.calls, "setup") < index_of(s.calls, "optimizer_zero_grad"))
    assert.equal("teardown", s.calls[#s.calls])
  end)

  it("is the only way to the backward pass and the optimizer step", function()
    local function weights(m) return {m.weight:clone(), m.bias:clone()} end
    L.manual_seed(1)
    local initial = weights(S.Regression{noise = false}(3))
    -- a strategy whose backward does nothing leaves the gradients zero: the weights do not move
    local _, m1 = fit({strategy = recording{backward = function() end}(), max_epochs = 1})
    H.assert_close(weights(m1), initial, 0, "weights without backward")
    -- one whose optimizer_step does nothing leaves them too
    local _, m2 = fit({strategy = recording{optimizer_step = function() end}(), max_epochs = 1})
    H.assert_close(weights(m2), initial, 0, "weights without optimizer steps")
    -- the default moves them
    local _, m3 = fit({max_epochs = 1})
    assert.is_true(H.max_rel_diff(weights(m3), initial) > 1e-4)
  end)

  it("writes and reads checkpoints, with a barrier after each save", function()
    local s = recording()()
    local trainer = fit({strategy = s, max_epochs = 2, enable_checkpointing = true})
    assert.equal(2, count(s.calls, "save_checkpoint"))
    assert.equal(2, count(s.calls, "barrier"))
    assert.equal("barrier", s.calls[index_of(s.calls, "save_checkpoint") + 1])
    local path = trainer.checkpoint_callback.best_model_path
    assert.is_true(require("lightning.util.fs").exists(path))
    local s2 = recording()()
    local t2 = L.Trainer(S.quiet(dir, {strategy = s2}))
    t2:validate(S.Regression{noise = false}(3), S.Loader(S.regression_batches(2, 4, 3, 2)), {ckpt_path = path, verbose = false})
    assert.equal(1, count(s2.calls, "load_checkpoint"))
    assert.equal(1, count(s2.calls, "process_dataloader"))
  end)

  it("reduces values logged with sync_dist through strategy:reduce", function()
    -- as if a second process logged the same values (sum doubles; max is one more, min one less)
    local seen = {}
    local function reduce(self, value, op)
      seen[#seen + 1] = op
      if op == "sum" then return 2 * value end
      if op == "max" then return value + 1 end
      if op == "min" then return value - 1 end
      return value
    end
    local R = recording{reduce = reduce}
    local logged = {}
    local methods = {validation_step = function(self, batch, i)
      self:log("v_mean", 3, {sync_dist = true})
      self:log("v_sum", 1, {sync_dist = true, reduce_fx = "sum"})
      self:log("v_max", i, {sync_dist = true, reduce_fx = "max"})
      self:log("v_min", i, {sync_dist = true, reduce_fx = "min"})
      self:log("v_local", 1, {reduce_fx = "sum"})
    end, on_validation_epoch_end = function(self)
      for k, v in pairs(self.trainer.callback_metrics) do logged[k] = v end
    end}
    local trainer = L.Trainer(S.quiet(dir, {strategy = R()}))
    L.manual_seed(1)
    trainer:validate(S.Regression{methods = methods}(3), S.Loader(S.regression_batches(3, 4, 3, 2)), {verbose = false})
    assert.equal(3, logged.v_mean)   -- (2 * sum) / (2 * batches)
    assert.equal(6, logged.v_sum)    -- 3 batches here, 3 there
    assert.equal(4, logged.v_max)
    assert.equal(0, logged.v_min)
    assert.equal(3, logged.v_local) -- not synced
    assert.is_true(#seen >= 5)
  end)

  it("writes nothing, prints no progress and saves no checkpoint where it is not global rank 0", function()
    local Rank1 = L.class("Rank1", Single)
    function Rank1:global_rank() return 1 end
    function Rank1:world_size() return 2 end
    function Rank1:is_global_zero() return false end
    local logger = S.MemoryLogger()
    local plots = L.plot.PlotCallback{dirpath = dir .. "/plots"}
    local text, trainer = output.capture(function()
      local t = L.Trainer{default_root_dir = dir, strategy = Rank1(), max_epochs = 2, logger = logger,
        enable_progress_bar = true, enable_model_summary = true, callbacks = {plots,
          L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", save_last = true}}}
      L.manual_seed(1)
      t:fit(S.Regression{}(3), S.Loader(S.regression_batches(2, 4, 3, 2)), S.Loader(S.regression_batches(2, 4, 3, 3)))
      return t
    end)
    assert.is_false(trainer.is_global_zero)
    assert.equal(1, trainer.global_rank)
    assert.equal(2, trainer.world_size)
    assert.equal("", text)
    assert.equal(0, #logger.records)
    assert.is_nil(logger.hparams)
    assert.is_nil(logger.finalized)
    assert.is_false(require("lightning.util.fs").exists(dir .. "/ckpt/last.safetensors"))
    assert.is_false(require("lightning.util.fs").exists(dir .. "/plots/metrics.png"))
    -- the bookkeeping goes on as on rank 0, so that every process decides the same
    assert.matches("last%.safetensors$", trainer.checkpoint_callback.last_model_path)
    assert.is_truthy(trainer.callback_metrics.val_loss)
  end)

  it("refuses processes whose loops differ before any batch, naming the ranks and values (a second process " ..
    "played by all_gather)", function()
    local Two = L.class("Two", Single)
    function Two:world_size() return 2 end
    -- rank 1 has 3 training batches of 8 samples, and max_epochs 3
    function Two:all_gather(values)
      local other = {}
      for i, v in ipairs(values) do other[i] = {name = v.name, value = v.value, detail = v.detail} end
      other[1].value, other[1].detail = "3", "batch size 8"
      for _, v in ipairs(other) do if v.name == "max_epochs" then v.value = "3" end end
      return {values, other}
    end
    local batches = 0
    local counter = {on_train_batch_start = function() batches = batches + 1 end}
    local t = L.Trainer(S.quiet(dir, {strategy = Two(), max_epochs = 2, callbacks = {counter}}))
    local err = H.error_of(t.fit, t, S.Regression{}(3), S.Loader(S.regression_batches(2, 4, 3, 2)))
    assert.matches("^Trainer:fit failed: the 2 processes disagree on what must be the same on each of them: training " ..
      "batches per epoch: 2 on rank 0, 3 on rank 1 %(batch size 8%); max_epochs: 2 on rank 0, 3 on rank 1; each would " ..
      "wait for ever", err)
    assert.equal(0, batches)
  end)

  it("clips through the precision plugin, also outside a Trainer", function()
    L.manual_seed(1)
    local model = S.Regression{}(3)
    model.weight.grad:fill(3)
    model.bias.grad:fill(4)
    local opt = S.SGD(model:parameters(), 0.1)
    model:clip_gradients(opt, 1.0, "norm")
    H.assert_close(L.optim.clip_grad_norm(model:parameters(), math.huge), 1.0, 1e-5, "total norm after clipping")
    model:clip_gradients(opt, 0.1, "value")
    H.assert_close(model.bias.grad:max(), 0.1, 1e-6, "clamped gradient")
    model:clip_gradients(opt, nil)  -- no value: nothing to do
    assert.matches('gradient_clip_algorithm must be "norm" or "value", got "l2"',
      H.error_of(model.clip_gradients, model, opt, 1.0, "l2"))
    local plugin = L.precision.Precision()
    assert.same(model:parameters(), plugin:main_params(opt, model))
    assert.same(model:parameters(), plugin:main_params({}, model))  -- an optimizer without param_groups
  end)

  it("leaves collectives to subclasses: the base class says what is missing", function()
    local s = Strategy()
    for _, m in ipairs {"global_rank", "world_size", "reduce", "broadcast", "all_gather", "barrier"} do
      assert.matches("^Strategy:" .. m .. " is not implemented", H.error_of(s[m], s, 1))
    end
  end)
end)
