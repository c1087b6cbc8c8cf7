-- trainer:fit's arguments: every form honours its options (ckpt_path above all), mistakes are errors,
-- and fit over an empty data set is one.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"

local BATCHES = S.regression_batches(3, 4, 3, 1)

local function trainer_in(dir, max_epochs)
  return L.Trainer(S.quiet(dir, {max_epochs = max_epochs, enable_checkpointing = true,
    callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true}}}))
end

-- A checkpoint after one epoch in dir/last.safetensors.
local function one_epoch(dir)
  L.manual_seed(3)
  local trainer = trainer_in(dir, 1)
  output.capture(trainer.fit, trainer, S.Regression{}(3), S.Loader({BATCHES[1], BATCHES[2]}))
  return trainer.global_step
end

describe("trainer:fit's arguments", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local train, val = function() return S.Loader({BATCHES[1], BATCHES[2]}) end, function() return S.Loader({BATCHES[3]}) end
  local dm = function()
    return {train_dataloader = function() return train() end, val_dataloader = function() return val() end}
  end
  local forms = {
    {"fit(model, loader, nil, opts)", function(t, m, o) return t:fit(m, train(), nil, o) end},
    {"fit(model, loader, opts)", function(t, m, o) return t:fit(m, train(), o) end},
    {"fit(model, loader, val_loader, opts)", function(t, m, o) return t:fit(m, train(), val(), o) end},
    {"fit(model, datamodule, opts)", function(t, m, o) return t:fit(m, dm(), o) end},
    {"fit(model, datamodule, nil, opts)", function(t, m, o) return t:fit(m, dm(), nil, o) end},
    {"fit(model, {train_dataloaders = ..., ckpt_path = ...})", function(t, m, o)
      return t:fit(m, {train_dataloaders = train(), ckpt_path = o.ckpt_path}) end},
  }
  for _, form in ipairs(forms) do
    it(form[1] .. " resumes from ckpt_path", function()
      local steps = one_epoch(dir)
      local trainer = trainer_in(dir, 2)
      local text = output.capture(form[2], trainer, S.Regression{}(3), {ckpt_path = dir .. "/last.safetensors"})
      assert.equal(dir .. "/last.safetensors", trainer.ckpt_path)
      assert.equal(2, trainer.current_epoch)
      assert.equal(2 * steps, trainer.global_step)         -- one more epoch, not two from scratch
      assert.matches("Restored ", text)
    end)
  end

  it("refuses options given twice and arguments after a table of options", function()
    local trainer = trainer_in(dir, 1)
    local model = S.Regression{}(3)
    assert.matches("Trainer:fit: the options are given twice %(arguments 3 and 4%)",
      H.error_of(trainer.fit, trainer, model, dm(), {}, {ckpt_path = "last"}))
    assert.matches("Trainer:fit: the options are given twice",
      H.error_of(trainer.fit, trainer, model, train(), {}, {}))
    assert.matches("Trainer:fit: nothing may follow the table of options",
      H.error_of(trainer.fit, trainer, model, {train_dataloaders = train()}, {}))
    assert.matches("Trainer:fit: unknown option 'ckpt_pth' %(did you mean 'ckpt_path'%?%)",
      H.error_of(trainer.fit, trainer, model, train(), nil, {ckpt_pth = "last"}))
    assert.matches("Trainer:fit: expected a table of options, got \"last\"",
      H.error_of(trainer.fit, trainer, model, train(), nil, "last"))
    assert.matches("Trainer:validate: expected one loader, got two",
      H.error_of(trainer.validate, trainer, model, val(), val()))
  end)

  it("over an empty data set is an error", function()
    local trainer = trainer_in(dir, 3)
    local err = H.error_of(trainer.fit, trainer, S.Regression{}(3), S.Loader({}))
    assert.matches("the training data is empty %(its loader has no batches%)", err)
    assert.equal(0, trainer.global_step)
    local empty = L.data.DataLoader({}, {batch_size = 4})
    assert.matches("the training data is empty", H.error_of(trainer.fit, trainer, S.Regression{}(3), empty))
  end)
end)
