-- The order of hooks against PyTorch Lightning itself: spec/fixtures/lightning/hooks.json is what
-- pytorch-lightning 2.6 called on a recording module and callback (tools/make_lightning_fixtures.py).
-- Our Trainer must make the same calls in the same order, but for the differences listed here, each
-- with its reason (docs/trainer.md, "Differences from Lightning").
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local hooks = require "lightning.trainer.hooks"
local cjson = require "cjson"

local fixture = cjson.decode(H.read_file("spec/fixtures/lightning/hooks.json"))

-- Lightning's calls that we do not make, and why (none now: the batch transfer hooks came with the GPU).
local NOT_CALLED = {}
-- Lightning's name -> ours: our LightningModule:backward(batch, outputs) is the model's hand-written
-- backward pass (there is no autograd), so Lightning's backward hook is called backward_step.
local RENAMED = {backward = "backward_step"}

-- Lightning calls the optimizer_step hook first and runs training_step ... backward inside it, as the
-- closure it passes to optimizer.step; ours takes no closure and is called after the closure has run
-- (after configure_gradient_clipping), so it moves there.
local function expected(list)
  local out, pending_step = {}, false
  for _, name in ipairs(list) do
    name = RENAMED[name] or name
    if name == "optimizer_step" then
      pending_step = true
    elseif not NOT_CALLED[name] then
      out[#out + 1] = name
      if pending_step and name == "configure_gradient_clipping" then
        out[#out + 1] = "optimizer_step"
        pending_step = false
      end
    end
  end
  return out
end

-- A Regression whose every hook and step records its name (as the fixture's module does).
local function recording_model(called, opts)
  local Base = S.Regression(opts)
  local Model = L.class("HookedModel", Base)
  for name in pairs(hooks.module) do
    local inner = Base[name]
    Model[name] = function(self, ...)
      called[#called + 1] = name
      if inner then return inner(self, ...) end
    end
  end
  return Model
end

local function recording_callback(called)
  local cb = {}
  for name in pairs(hooks.callback) do
    if name ~= "state_dict" and name ~= "load_state_dict" and name ~= "on_exception" then
      cb[name] = function() called[#called + 1] = "Callback." .. name end
    end
  end
  return cb
end

local function batches(n) return S.Loader(S.regression_batches(n, 4, 3, 1)) end

-- The first place where two call lists part, for a readable failure.
local function assert_same_calls(want, got)
  for i = 1, math.max(#want, #got) do
    if want[i] ~= got[i] then
      local from = math.max(1, i - 3)
      error(("calls part at %d: Lightning %s, ours %s\n  Lightning: ... %s\n  ours:      ... %s"):format(i,
        tostring(want[i]), tostring(got[i]), table.concat(want, ", ", from, math.min(#want, i + 3)),
        table.concat(got, ", ", from, math.min(#got, i + 3))), 2)
    end
  end
end

describe("hook order against pytorch-lightning " .. fixture.pytorch_lightning .. " (recorded)", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function run(stage, opts)
    local called = {}
    local model = recording_model(called, opts)(3)
    local cb = recording_callback(called)
    if stage == "fit" then
      local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, limit_train_batches = 2, limit_val_batches = 2,
        enable_checkpointing = true, callbacks = {cb}}))
      trainer:fit(model, batches(3), batches(3))
    else
      local trainer = L.Trainer(S.quiet(dir, {callbacks = {cb}}))
      if stage == "predict" then trainer:predict(model, batches(2))
      else trainer[stage](trainer, model, batches(2), {verbose = false}) end
    end
    return called
  end

  it("fit with validation", function() assert_same_calls(expected(fixture.fit), run("fit")) end)
  it("fit with an epoch scheduler", function()
    assert_same_calls(expected(fixture.fit_with_scheduler), run("fit", {scheduler = true}))
  end)
  it("validate", function() assert_same_calls(expected(fixture.validate), run("validate")) end)
  it("test", function() assert_same_calls(expected(fixture.test), run("test")) end)
  it("predict", function() assert_same_calls(expected(fixture.predict), run("predict")) end)
end)
