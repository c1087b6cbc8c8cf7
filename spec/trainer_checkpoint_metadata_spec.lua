-- A checkpoint whose metadata is malformed or of the wrong type is refused with an error that names the
-- file and the field: never a silent fresh start, a fresh optimizer or a fresh scheduler.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"

local BATCHES = S.regression_batches(2, 4, 3, 1)

local function fit(dir, ckpt_path, max_epochs)
  L.manual_seed(2)
  local model = S.Regression{scheduler = true}(3)
  local steps = 0
  model.on_train_batch_end = function() steps = steps + 1 end
  local trainer = L.Trainer(S.quiet(dir, {max_epochs = max_epochs or 2, enable_checkpointing = true,
    callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir .. "/ckpt", save_last = true}}}))
  local ok, err = pcall(output.capture, trainer.fit, trainer, model, S.Loader(BATCHES), nil, {ckpt_path = ckpt_path})
  return ok, err, steps
end

describe("A checkpoint's metadata", function()
  local dir, good
  setup(function()
    dir = H.tmpdir()
    assert.is_true(fit(dir, nil, 1))
    good = dir .. "/ckpt/last.safetensors"
  end)
  teardown(function() H.rmdir(dir) end)

  -- A copy of the good checkpoint with some metadata fields replaced (false: removed).
  local function variant(changes)
    local tensors, meta = L.load_safetensors(good)
    for k, v in pairs(changes) do meta[k] = v or nil end
    local path = dir .. "/variant.safetensors"
    L.save_safetensors(path, tensors, meta)
    return path
  end

  local cases = {
    {{loops = "{not json"}, "field loops is not valid JSON"},
    {{loops = "[1, 2]"}, "field loops must be a JSON object"},
    {{loops = '{"epoch": "1", "epoch_finished": true}'}, 'field loops.epoch must be an integer >= 0, got "1"'},
    {{loops = '{"epoch": 0, "batches_done": -3}'}, "field loops.batches_done must be an integer >= 0, got %-3"},
    {{loops = '{"epoch": 0, "epoch_finished": "yes"}'}, 'field loops.epoch_finished must be a boolean or absent, got "yes"'},
    {{loops = '{"epoch": 0, "batches_done": 1, "rng": 5}'}, "field loops.rng must be a string or absent, got 5"},
    {{epoch = "two"}, 'field epoch must be an integer >= 0, got "two"'},
    {{epoch = false}, "field epoch must be an integer >= 0, got nothing"},
    {{global_step = "-1"}, 'field global_step must be an integer >= 0, got "%-1"'},
    {{global_step = "1e3"}, 'field global_step must be an integer >= 0, got "1e3"'},
    {{global_step = "99999999999999999999"}, "field global_step = 99999999999999999999 is too large"},
    {{optimizer_states = '{"a": 1}'}, "field optimizer_states must be a JSON list"},
    {{optimizer_states = "[5]"}, "field optimizer_states%[1%] must be a table, got 5"},
    {{optimizer_states = "[]"}, "field optimizer_states has no state for optimizer 1 %(it holds 0; this run has 1%)"},
    {{optimizer_states = false}, "field optimizer_states has no state for optimizer 1"},
    {{optimizer_states = '[{"state": {}, "param_groups": "x"}]'}, "field optimizer_states%[1%] does not fit the optimizer"},
    {{lr_schedulers = "{}"}, "field lr_schedulers has no state for scheduler 1"},
    {{hparams = "[1]"}, "field hparams must be a JSON object"},
    {{callbacks = '{"ModelCheckpoint{monitor=nil,mode=min,every_n_epochs=1}": 5}'},
      'field callbacks%["ModelCheckpoint{monitor=nil,mode=min,every_n_epochs=1}"%] must be a table, got 5'},
    {{rng_state = "garbage"}, "field rng_state is not a generator state"},
  }
  for _, case in ipairs(cases) do
    local changes, expected = case[1], case[2]
    local name = next(changes)
    it(("is refused when %s is %s"):format(name, changes[name] == false and "missing" or ("%q"):format(changes[name])), function()
      local path = variant(changes)
      local ok, err, steps = fit(dir .. "/run", path)
      assert.is_false(ok)
      assert.matches("checkpoint " .. path:gsub("%p", "%%%0") .. ": " .. expected, err)
      assert.equal(0, steps, "it trained anyway")
    end)
  end

  it("in its good form resumes (the cases above differ from it in one field)", function()
    local ok, err, steps = fit(dir .. "/run", variant({}))
    assert.is_true(ok, err)
    assert.equal(2, steps)
  end)
end)
