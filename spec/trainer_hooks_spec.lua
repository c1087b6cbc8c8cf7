-- The order in which the Trainer calls hooks, against PyTorch Lightning's, and the check that callbacks
-- and modules name only real hooks.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local hooks = require "lightning.trainer.hooks"

-- A Regression whose every hook (and step) records its name, then does what it would have done.
local function recording_model(called, opts)
  local Base = S.Regression(opts)
  local Model = L.class("HookedModel", Base)
  for name in pairs(hooks.module) do
    if name ~= "on_exception" then
      local inner = Base[name]
      Model[name] = function(self, ...)
        called[#called + 1] = name
        if inner then return inner(self, ...) end
      end
    end
  end
  return Model
end

local function recording_callback(called)
  local cb = {}
  for name in pairs(hooks.callback) do
    if name ~= "state_dict" and name ~= "load_state_dict" then
      cb[name] = function() called[#called + 1] = "Callback." .. name end
    end
  end
  return cb
end

-- Both a callback's and the module's hook: Lightning calls the callbacks first.
local function both(list, name)
  list[#list + 1] = "Callback." .. name
  list[#list + 1] = name
end

local function eval_epoch(list, n)
  both(list, "on_validation_epoch_start")
  for _ = 1, n do
    both(list, "on_validation_batch_start")
    list[#list + 1] = "validation_step"
    both(list, "on_validation_batch_end")
  end
  both(list, "on_validation_epoch_end")
end

local function validation(list, n)
  list[#list + 1] = "on_validation_model_eval"
  both(list, "on_validation_start")
  eval_epoch(list, n)
  both(list, "on_validation_end")
  list[#list + 1] = "on_validation_model_train"
end

local function train_batches(list, n, with_scheduler)
  for i = 1, n do
    both(list, "on_train_batch_start")
    list[#list + 1] = "training_step"
    both(list, "on_before_zero_grad")
    list[#list + 1] = "optimizer_zero_grad"
    both(list, "on_before_backward")
    list[#list + 1] = "backward_step"
    both(list, "on_after_backward")
    both(list, "on_before_optimizer_step")
    list[#list + 1] = "configure_gradient_clipping"
    list[#list + 1] = "optimizer_step"
    if with_scheduler and i == n then list[#list + 1] = "lr_scheduler_step" end
    both(list, "on_train_batch_end")
  end
end

-- Lightning 2.x's expected calls for fit with validation (tests/tests_pytorch/models/test_hooks.py,
-- test_trainer_model_hook_system_fit), without the device-transfer hooks and forward; the model's
-- eval()/train() appear as the on_validation_model_eval/_train hooks that make them.
local function lightning_fit_order(train_n, val_n, with_scheduler)
  local e = {"configure_callbacks", "prepare_data", "Callback.setup", "setup", "configure_model", "configure_optimizers"}
  both(e, "on_fit_start")
  e[#e + 1] = "Callback.on_sanity_check_start"
  validation(e, val_n)
  e[#e + 1] = "Callback.on_sanity_check_end"
  both(e, "on_train_start")
  both(e, "on_train_epoch_start")
  train_batches(e, train_n, with_scheduler)
  validation(e, val_n)
  both(e, "on_train_epoch_end")   -- the module's before ModelCheckpoint, a monitoring callback
  -- ModelCheckpoint saves here
  both(e, "on_save_checkpoint")
  both(e, "on_train_end")
  both(e, "on_fit_end")
  both(e, "teardown")
  return e
end

local function batches(n)
  local all = S.regression_batches(n, 4, 3, 1)
  return S.Loader(all)
end

describe("Trainer hook order", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("is Lightning's for fit with validation, callbacks before the module, ModelCheckpoint last", function()
    local called = {}
    local model = recording_model(called)(3)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, limit_train_batches = 2, limit_val_batches = 2,
      enable_checkpointing = true, callbacks = {recording_callback(called)}}))
    trainer:fit(model, batches(3), batches(3))
    assert.same(lightning_fit_order(2, 2, false), called)
    -- the default ModelCheckpoint is at the end of the list
    assert.equal(L.callbacks.ModelCheckpoint, getmetatable(trainer.callbacks[#trainer.callbacks]))
  end)

  it("steps an epoch scheduler after the last batch's optimizer step", function()
    local called = {}
    local model = recording_model(called, {scheduler = true})(3)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, enable_checkpointing = true,
      callbacks = {recording_callback(called)}}))
    trainer:fit(model, batches(2), batches(2))
    assert.same(lightning_fit_order(2, 2, true), called)
  end)

  it("puts user checkpoint callbacks after the others and keeps their order", function()
    local a = L.callbacks.ModelCheckpoint{dirpath = dir .. "/a"}
    local b = L.callbacks.ModelCheckpoint{dirpath = dir .. "/b"}
    local other = {on_fit_start = function() end}
    local trainer = L.Trainer(S.quiet(dir, {enable_checkpointing = true, callbacks = {a, other, b}}))
    assert.same({other, a, b}, trainer.callbacks)
    assert.equal(a, trainer.checkpoint_callback)
  end)

  it("calls test hooks in order", function()
    local called = {}
    local model = recording_model(called)(3)
    local trainer = L.Trainer(S.quiet(dir, {callbacks = {recording_callback(called)}}))
    trainer:test(model, batches(2), {verbose = false})
    local e = {"Callback.setup", "setup", "on_test_model_eval"}
    both(e, "on_test_start")
    both(e, "on_test_epoch_start")
    for _ = 1, 2 do
      both(e, "on_test_batch_start")
      e[#e + 1] = "test_step"
      both(e, "on_test_batch_end")
    end
    both(e, "on_test_epoch_end")
    both(e, "on_test_end")
    both(e, "teardown")
    assert.same(e, called)
  end)

  it("calls predict hooks in order and returns the predictions", function()
    local called = {}
    local model = recording_model(called)(3)
    local trainer = L.Trainer(S.quiet(dir, {callbacks = {recording_callback(called)}}))
    local predictions = trainer:predict(model, batches(2))
    assert.equal(2, #predictions)
    assert.same({4, 1}, {predictions[1]:size(1), predictions[1]:size(2)})
    local e = {"Callback.setup", "setup", "on_predict_model_eval"}
    both(e, "on_predict_start")
    both(e, "on_predict_epoch_start")
    for _ = 1, 2 do
      both(e, "on_predict_batch_start")
      e[#e + 1] = "predict_step"
      both(e, "on_predict_batch_end")
    end
    both(e, "on_predict_epoch_end")
    both(e, "on_predict_end")
    both(e, "teardown")
    assert.same(e, called)
  end)

  it("passes Lightning's arguments to callback hooks (1-based batch_idx)", function()
    local seen = {}
    local cb = {
      setup = function(_, trainer, module, stage) seen.setup = {trainer, module, stage} end,
      on_train_batch_start = function(_, trainer, module, batch, batch_idx) seen.start = batch_idx end,
      on_train_batch_end = function(_, trainer, module, outputs, batch, batch_idx)
        seen.outputs, seen.batch_idx = outputs, batch_idx
      end,
      on_before_backward = function(_, trainer, module, loss) seen.loss = loss end,
      on_before_optimizer_step = function(_, trainer, module, optimizer) seen.optimizer = optimizer end,
    }
    local model = S.Regression{}(3)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, callbacks = {cb}}))
    trainer:fit(model, batches(2))
    assert.equal(trainer, seen.setup[1])
    assert.equal(model, seen.setup[2])
    assert.equal("fit", seen.setup[3])
    assert.equal(2, seen.start)
    assert.equal(2, seen.batch_idx)
    assert.is_number(seen.outputs.loss)
    assert.equal(seen.outputs.loss, seen.loss)
    assert.equal(trainer.optimizers[1], seen.optimizer)
  end)
end)

describe("Trainer hook names", function()
  it("rejects a callback with a misspelt hook, suggesting the right one", function()
    local err = H.error_of(L.Trainer, {logger = false, callbacks = {{on_trian_epoch_end = function() end}}})
    assert.matches("Trainer: callback 1 %(table%): unknown hook on_trian_epoch_end %(did you mean on_train_epoch_end%?%)", err)
  end)

  it("rejects near misses of hooks without the on_ prefix", function()
    local err = H.error_of(L.Trainer, {logger = false, callbacks = {{seetup = function() end}}})
    assert.matches("unknown hook seetup %(did you mean setup%?%)", err)
    err = H.error_of(L.Trainer, {logger = false, callbacks = {{state_dcit = function() end}}})
    assert.matches("unknown hook state_dcit %(did you mean state_dict%?%)", err)
  end)

  it("checks the methods of L.Callback subclasses, inherited ones included", function()
    local Base = L.class("Base", L.Callback)
    function Base:on_validation_ned() end
    local Derived = L.class("Derived", Base)
    function Derived:on_fit_start() end
    local err = H.error_of(L.Trainer, {logger = false, callbacks = {Derived()}})
    assert.matches("callback 1 %(Derived%): unknown hook on_validation_ned %(did you mean on_validation_end%?%)", err)
  end)

  it("allows helper methods and fields that are not hook-like", function()
    local Helpful = L.class("Helpful", L.Callback)
    function Helpful:summarize() end
    function Helpful:on_fit_end() end
    local cb = Helpful()
    cb.count = 0
    assert.has_no.errors(function()
      L.Trainer{logger = false, callbacks = {cb, {compute_things = function() end, step = function() end}}}
    end)
  end)

  it("rejects a callback that is not a table", function()
    assert.matches("callback 2 must be a table or an L.Callback, got function",
      H.error_of(L.Trainer, {logger = false, callbacks = {{}, function() end}}))
  end)

  it("rejects a module with a misspelt hook when fit starts", function()
    local Model = S.Regression{}
    local Bad = L.class("Bad", Model)
    function Bad:on_train_epoch_ned() end
    local dir = H.tmpdir()
    local trainer = L.Trainer(S.quiet(dir))
    local err = H.error_of(trainer.fit, trainer, Bad(3), batches(1))
    H.rmdir(dir)
    assert.matches("Trainer: Bad defines unknown hook on_train_epoch_ned %(did you mean on_train_epoch_end%?%)", err)
  end)

  it("says what Lightning 2 renamed a removed hook to (on_epoch_end, training_epoch_end), for a module and a callback",
    function()
    local Model = S.Regression{}
    local Old = L.class("Old", Model)
    function Old:on_epoch_end() end
    function Old:training_epoch_end() end
    local dir = H.tmpdir()
    local trainer = L.Trainer(S.quiet(dir))
    local err = H.error_of(trainer.fit, trainer, Old(3), batches(1))
    H.rmdir(dir)
    assert.matches("Trainer: Old defines unknown hook on_epoch_end %(Lightning 2 renamed it: on_train_epoch_end or " ..
      "on_validation_epoch_end%), training_epoch_end %(Lightning 2 renamed it: on_train_epoch_end%)", err)
    err = H.error_of(L.Trainer, {logger = false, callbacks = {{on_epoch_end = function() end}}})
    assert.matches("Trainer: callback 1 %(table%): unknown hook on_epoch_end %(Lightning 2 renamed it: " ..
      "on_train_epoch_end or on_validation_epoch_end%)", err)
  end)

  it("rejects a model that is not a LightningModule", function()
    local trainer = L.Trainer{logger = false}
    assert.matches("Trainer:fit: argument 1 must be an L.LightningModule, got table",
      H.error_of(trainer.fit, trainer, {}, batches(1)))
  end)
end)
