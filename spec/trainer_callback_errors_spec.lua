-- An error raised in a callback names the callback (the name it was given, or its class name) and
-- the hook; one in the module names the hook.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"

local BATCHES = S.regression_batches(3, 4, 3, 1)

local function fit_with(dir, callbacks, ckpt_path)
  local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, callbacks = callbacks, enable_checkpointing = ckpt_path ~= nil}))
  return H.error_of(output.capture, trainer.fit, trainer, S.Regression{}(3), S.Loader({BATCHES[1], BATCHES[2]}),
    S.Loader({BATCHES[3]}), {ckpt_path = ckpt_path})
end

describe("An error in a callback", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("names an L.Callback subclass by its class and the hook", function()
    local Broken = L.class("BrokenPrinter", L.Callback)
    function Broken:on_train_epoch_end() error("no paper") end
    local err = fit_with(dir, {{}, Broken()})
    assert.matches("^Trainer:fit failed in on_train_epoch_end of callback 2 %(BrokenPrinter%) at epoch 0, batch 2 " ..
      "%(global step 2%): .*no paper", err)
  end)

  it("names a plain table by the name it was given, or by its place", function()
    local named = {name = "my_monitor", on_validation_epoch_end = function() error("bad value") end}
    assert.matches("failed in on_validation_epoch_end of callback 1 %(my_monitor%)", fit_with(dir, {named}))
    local anonymous = {on_train_batch_end = function(_, _, _, _, _, i) if i == 2 then error("oops") end end}
    assert.matches("failed in on_train_batch_end of callback 1 at epoch 0, batch 2", fit_with(dir, {anonymous}))
  end)

  it("names the callback whose state a checkpoint cannot restore", function()
    local Keeper = L.class("Keeper", L.Callback)
    function Keeper:state_dict() return {n = 1} end
    function Keeper:load_state_dict() error("cannot take it back") end
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, enable_checkpointing = true,
      callbacks = {Keeper(), L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true}}}))
    output.capture(trainer.fit, trainer, S.Regression{}(3), S.Loader({BATCHES[1]}))
    local err = fit_with(dir, {Keeper(), L.callbacks.ModelCheckpoint{dirpath = dir}}, dir .. "/last.safetensors")
    assert.matches("failed in load_state_dict of callback 1 %(Keeper%).*cannot take it back", err)
  end)

  it("in validate and in a module hook names the hook", function()
    local cb = L.class("ValidationSpy", L.Callback)
    function cb:on_validation_start() error("spy caught") end
    local trainer = L.Trainer(S.quiet(dir, {callbacks = {cb()}}))
    local err = H.error_of(output.capture, trainer.validate, trainer, S.Regression{}(3), S.Loader({BATCHES[3]}))
    assert.matches("^Trainer:validate failed in on_validation_start of callback 1 %(ValidationSpy%): .*spy caught", err)
    local model = S.Regression{methods = {on_train_epoch_start = function() error("module hook") end}}(3)
    local t2 = L.Trainer(S.quiet(dir, {max_epochs = 1}))
    err = H.error_of(output.capture, t2.fit, t2, model, S.Loader({BATCHES[1]}))
    assert.matches("^Trainer:fit failed in on_train_epoch_start at epoch 0", err)
    assert.is_nil(err:find("of callback", 1, true))
  end)
end)
