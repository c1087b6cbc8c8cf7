-- Where the Trainer puts callbacks, what it passes to their hooks, and the check that callbacks and
-- modules name only real hooks. The order of the calls is checked against PyTorch Lightning itself in
-- trainer_hooks_lightning_spec.lua.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"

local function batches(n)
  local all = S.regression_batches(n, 4, 3, 1)
  return S.Loader(all)
end

describe("Trainer callbacks", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("puts the default ModelCheckpoint last", function()
    local trainer = L.Trainer(S.quiet(dir, {enable_checkpointing = true, callbacks = {{on_fit_start = function() end}}}))
    assert.equal(L.callbacks.ModelCheckpoint, getmetatable(trainer.callbacks[#trainer.callbacks]))
  end)

  it("puts user checkpoint callbacks after the others and keeps their order", function()
    local a = L.callbacks.ModelCheckpoint{dirpath = dir .. "/a"}
    local b = L.callbacks.ModelCheckpoint{dirpath = dir .. "/b"}
    local other = {on_fit_start = function() end}
    local trainer = L.Trainer(S.quiet(dir, {enable_checkpointing = true, callbacks = {a, other, b}}))
    assert.same({other, a, b}, trainer.callbacks)
    assert.equal(a, trainer.checkpoint_callback)
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
