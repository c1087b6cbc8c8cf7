-- self:log with PyTorch Lightning's meaning: where values go, per-step and per-epoch defaults that
-- depend on the hook, epoch means weighted by batch size, forked _step/_epoch names, errors.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"

-- batches of the given sizes, each with target = its own index, so logged values are predictable
local function sized_loader(sizes)
  local batches = {}
  for i, n in ipairs(sizes) do batches[i] = {input = L.randn(n, 3), target = L.randn(n, 1), value = i} end
  return S.Loader(batches)
end

local function fit(dir, methods, trainer_opts, sizes, val_sizes)
  local model = S.Regression{methods = methods}(3)
  local lg = S.MemoryLogger()
  local opts = S.quiet(dir, {max_epochs = 1, logger = lg, log_every_n_steps = 1, num_sanity_val_steps = 0})
  for k, v in pairs(trainer_opts or {}) do opts[k] = v end
  local trainer = L.Trainer(opts)
  trainer:fit(model, sized_loader(sizes or {4, 4}), val_sizes and sized_loader(val_sizes) or nil)
  return trainer, lg, model
end

local function logged_keys(lg)
  local keys = {}
  for _, r in ipairs(lg.records) do
    for k in pairs(r.metrics) do keys[k] = true end
  end
  return keys
end

describe("self:log", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("logs per step by default in training_step", function()
    local trainer, lg = fit(dir, {training_step = function(self, batch, i)
      local out = S.Regression{}.training_step(self, batch, i)
      self:log("value", batch.value)
      return out
    end})
    assert.equal(2, trainer.callback_metrics.value)   -- the last step's
    assert.is_nil(trainer.callback_metrics.value_epoch)
    local steps = {}
    for _, r in ipairs(lg.records) do
      if r.metrics.value then steps[#steps + 1] = {r.step, r.metrics.value, r.metrics.epoch} end
    end
    assert.same({{0, 1, 0}, {1, 2, 0}}, steps)   -- Lightning's step numbers: steps taken before this one
  end)

  it("forks name_step and name_epoch with on_step and on_epoch, the epoch value a mean weighted by batch size", function()
    local trainer, lg = fit(dir, {training_step = function(self, batch, i)
      local out = S.Regression{}.training_step(self, batch, i)
      self:log("value", batch.value, {on_step = true, on_epoch = true, prog_bar = true})
      return out
    end}, nil, {3, 1})
    local mean = (1 * 3 + 2 * 1) / 4
    assert.equal(mean, trainer.callback_metrics.value)
    assert.equal(mean, trainer.callback_metrics.value_epoch)
    assert.equal(2, trainer.callback_metrics.value_step)
    assert.equal(mean, trainer.progress_bar_metrics.value_epoch)
    assert.equal(2, trainer.progress_bar_metrics.value_step)
    local keys = logged_keys(lg)
    assert.is_true(keys.value_step and keys.value_epoch)
    assert.is_nil(keys.value)
    assert.equal(mean, trainer.logged_metrics.value_epoch)
  end)

  it("logs per epoch by default in validation_step, weighted by batch size", function()
    local trainer, lg = fit(dir, {validation_step = function(self, batch, i) self:log("v", batch.value) end}, nil,
      {2}, {4, 4, 2})
    local mean = (1 * 4 + 2 * 4 + 3 * 2) / 10
    assert.near(mean, trainer.callback_metrics.v, 1e-12)
    local found
    for _, r in ipairs(lg.records) do if r.metrics.v then found = r end end
    assert.near(mean, found.metrics.v, 1e-12)
    assert.equal(0, found.metrics.epoch)
    assert.is_nil(trainer.progress_bar_metrics.v)
  end)

  it("uses batch_size when given, and the reductions sum, max and min", function()
    local trainer = fit(dir, {validation_step = function(self, batch, i)
      self:log("weighted", batch.value, {batch_size = i == 1 and 1 or 3})
      self:log("total", batch.value, {reduce_fx = "sum"})
      self:log("largest", batch.value, {reduce_fx = "max"})
      self:log("smallest", batch.value, {reduce_fx = "min"})
    end}, nil, {2}, {4, 4, 2})
    assert.near((1 * 1 + 2 * 3 + 3 * 3) / 7, trainer.callback_metrics.weighted, 1e-12)
    assert.equal(6, trainer.callback_metrics.total)
    assert.equal(3, trainer.callback_metrics.largest)
    assert.equal(1, trainer.callback_metrics.smallest)
  end)

  it("logs per epoch in epoch hooks, visible to monitoring callbacks at once", function()
    local seen
    local cb = L.callbacks.EarlyStopping{monitor = "epoch_value", patience = 10}
    local spy = {on_train_epoch_end = function(_, trainer) seen = trainer.callback_metrics.epoch_value end}
    local trainer = fit(dir, {on_train_epoch_end = function(self) self:log("epoch_value", 42) end},
      {callbacks = {spy, cb}})
    assert.equal(42, trainer.callback_metrics.epoch_value)
    assert.is_nil(seen)   -- an ordinary callback runs before the module's hook
    assert.equal(42, cb.best_score)   -- EarlyStopping, a monitoring callback, after it
  end)

  it("keeps logger = false values out of the logger but in callback_metrics", function()
    local trainer, lg = fit(dir, {training_step = function(self, batch, i)
      local out = S.Regression{}.training_step(self, batch, i)
      self:log("hidden", 1, {logger = false})
      return out
    end})
    assert.equal(1, trainer.callback_metrics.hidden)
    assert.is_nil(logged_keys(lg).hidden)
  end)

  it("accepts one-element tensors", function()
    local trainer = fit(dir, {training_step = function(self, batch, i)
      local out = S.Regression{}.training_step(self, batch, i)
      self:log("t", L.tensor{2.5})
      return out
    end})
    assert.equal(2.5, trainer.callback_metrics.t)
  end)

  it("discards what the sanity check logs", function()
    local trainer, lg = fit(dir, {validation_step = function(self, batch, i)
      self:log("sanity_only", self.trainer.sanity_checking and 1 or 0)
    end}, {num_sanity_val_steps = 1, limit_val_batches = 0.5}, {2}, {4, 4})
    for _, r in ipairs(lg.records) do
      if r.metrics.sanity_only then assert.equal(0, r.metrics.sanity_only) end
    end
    assert.equal(0, trainer.callback_metrics.sanity_only)
  end)

  it("writes step values to the logger every log_every_n_steps steps", function()
    local _, lg = fit(dir, {}, {log_every_n_steps = 3}, {1, 1, 1, 1, 1, 1, 1})
    local steps = {}
    for _, r in ipairs(lg.records) do if r.metrics.train_loss_step then steps[#steps + 1] = r.step end end
    assert.same({2, 5}, steps)
  end)

  it("gives trainer:validate its result: the epoch values", function()
    local model = S.Regression{methods = {validation_step = function(self, batch, i)
      self:log("v", batch.value)
      self:log("both", batch.value, {on_step = true})
    end}}(3)
    local trainer = L.Trainer(S.quiet(dir))
    local text, r = require("lightning.util.output").capture(trainer.validate, trainer, model, sized_loader({2, 2}))
    assert.matches("Validation metric", text)
    assert.equal(1, #r)
    assert.equal(1.5, r[1].v)
    assert.equal(1.5, r[1].both_epoch)
    assert.equal("finished", trainer.state.status)
  end)

  it("does nothing outside a Trainer", function()
    local model = S.Regression{}(3)
    assert.has_no.errors(function() model:log("x", 1) end)
  end)

  local bad = {
    {"inside on_fit_start", {on_fit_start = function(self) self:log("x", 1) end}, "self.log%(\"x\"%): you can't log inside on_fit_start"},
    {"on_step in an epoch hook", {on_train_epoch_end = function(self) self:log("x", 1, {on_step = true}) end},
      "self.log%(\"x\"%): on_step = true is not allowed in on_train_epoch_end"},
    {"a string value", {on_train_epoch_end = function(self) self:log("x", "high") end},
      "self.log%(\"x\"%): value must be a number or a one%-element tensor, got string"},
    {"a tensor of several elements", {on_train_epoch_end = function(self) self:log("x", L.ones(2)) end},
      "got a tensor of size 2"},
    {"an unknown option", {on_train_epoch_end = function(self) self:log("x", 1, {on_epch = true}) end},
      "self.log%(\"x\"%): unknown option 'on_epch' %(did you mean 'on_epoch'%?%) %(known: .*on_epoch"},
    {"a non-boolean option", {on_train_epoch_end = function(self) self:log("x", 1, {prog_bar = 1}) end},
      "prog_bar must be a boolean, got 1"},
    {"an empty name", {on_train_epoch_end = function(self) self:log("", 1) end}, "the name must be a non%-empty string"},
    {"an unknown reduction", {on_train_epoch_end = function(self) self:log("x", 1, {reduce_fx = "median"}) end},
      "reduce_fx must be \"mean\", \"sum\", \"max\" or \"min\", got \"median\""},
    {"neither on_step nor on_epoch", {training_step = function(self, batch, i)
      self:log("x", 1, {on_step = false, on_epoch = false}) end}, "on_step and on_epoch are both false"},
  }
  for _, case in ipairs(bad) do
    it("rejects " .. case[1], function()
      assert.matches(case[3], H.error_of(fit, dir, case[2]))
    end)
  end
end)
