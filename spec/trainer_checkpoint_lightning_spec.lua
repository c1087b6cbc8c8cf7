-- A checkpoint's layout against PyTorch Lightning's: spec/fixtures/lightning/hooks.json holds the keys of
-- the last.ckpt that pytorch-lightning 2.6 saved for the same run (tools/make_lightning_fixtures.py).
-- Ours is a safetensors file whose metadata carries the same sections under the same names, but for the
-- differences below (docs/trainer.md, "Differences from Lightning", says why).
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local cjson = require "cjson"

local lightning = cjson.decode(H.read_file("spec/fixtures/lightning/hooks.json")).checkpoint

-- Lightning's key -> ours (false: we have no such key).
local OURS = {
  hyper_parameters = "hparams",           -- the name of LightningModule.hparams
  hparams_name = false,                   -- always "hparams" with us
  ["pytorch-lightning_version"] = "format_version",   -- with format = "lightning.checkpoint"
}
-- Our keys that Lightning does not have.
local ONLY_OURS = {format = true, rng_state = true, saved_at = true}

describe("a checkpoint's layout against pytorch-lightning's", function()
  local dir, meta, tensors
  setup(function()
    dir = H.tmpdir()
    L.manual_seed(1)
    local model = S.Regression{scheduler = true}(3)
    local batches = S.regression_batches(3, 4, 3, 1)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, limit_train_batches = 2, limit_val_batches = 2,
      enable_checkpointing = true, callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true},
      L.callbacks.EarlyStopping{monitor = "val_loss"}}}))
    output.capture(trainer.fit, trainer, model, S.Loader(batches), S.Loader(batches))
    tensors, meta = L.load_safetensors(dir .. "/last.safetensors")
  end)
  teardown(function() H.rmdir(dir) end)

  it("has Lightning's sections, under Lightning's names but for the listed ones", function()
    local want = {}
    for _, key in ipairs(lightning.keys) do
      local ours = OURS[key]
      if ours == nil then ours = key end
      if ours then want[#want + 1] = ours end
    end
    for key in pairs(ONLY_OURS) do want[#want + 1] = key end
    table.sort(want)
    local got = {}
    for key in pairs(meta) do got[#got + 1] = key end
    got[#got + 1] = "state_dict"    -- the tensors themselves, under the model's state_dict names
    table.sort(got)
    assert.are.same(want, got)
    assert.is_truthy(tensors.weight and tensors.bias)
  end)

  it("counts epoch and global_step as Lightning does", function()
    assert.are.equal(lightning.epoch, tonumber(meta.epoch))
    assert.are.equal(lightning.global_step, tonumber(meta.global_step))
  end)

  it("keys callback states by class and the options that tell instances apart", function()
    local names = {}
    for key in pairs(cjson.decode(meta.callbacks)) do names[#names + 1] = key:match("^(%w+){") end
    table.sort(names)
    local theirs = {}
    for _, key in ipairs(lightning.callbacks) do theirs[#theirs + 1] = key:match("^(%w+){") end
    assert.are.same(theirs, names)
  end)
end)
