-- L.callbacks.Lookahead (airbench's weight averaging) against a hand computation of its updates, with
-- its state in checkpoints (4 epochs straight and 2 + 2 resumed give the same weights) and its errors.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local nn = L.nn
local output = require "lightning.util.output"

-- A module with a parameter, a floating buffer and an integer one (BatchNorm1d's).
local function small_module()
  local m = nn.Sequential(nn.Linear(2, 1, {bias = false}), nn.BatchNorm1d(1))
  m[1].weight:fill(0)
  return m
end

describe("L.callbacks.Lookahead", function()
  it("every n steps moves the average toward the weights by (1 - decay_t) and copies it back; the last step takes the average", function()
    local m = small_module()
    local cb = L.callbacks.Lookahead{every_n_steps = 5, decay = 0.95 ^ 5, decay_power = 3}
    local trainer = {global_step = 0, estimated_stepping_batches = 12}
    cb:on_train_start(trainer, m)
    local w, rm, count = m[1].weight, m[2].running_mean, m[2].num_batches_tracked
    count[1] = 7
    local avg_w, avg_rm = 0, 0     -- the average, by hand (the weights start at 0, running_mean at 0)
    for step = 1, 12 do
      -- the optimizer moves the weights (to known values), then the callback runs
      local wv, rv = step * 1.5 - 4, 0.25 * step
      w:fill(wv)
      rm:fill(rv)
      trainer.global_step = step
      cb:on_train_batch_end(trainer, m)
      if step % 5 == 0 then
        local d = 0.95 ^ 5 * (step / 12) ^ 3
        avg_w, avg_rm = d * avg_w + (1 - d) * wv, d * avg_rm + (1 - d) * rv
        wv, rv = avg_w, avg_rm                       -- the weights become the average
      end
      if step == 12 then wv, rv = avg_w, avg_rm end  -- the last step: the average itself
      assert(math.abs(w[1][1] - wv) < 1e-5, ("step %d: weight %.7g, by hand %.7g"):format(step, w[1][1], wv))
      assert(math.abs(rm[1] - rv) < 1e-5, ("step %d: running_mean %.7g, by hand %.7g"):format(step, rm[1], rv))
      -- a second call without an optimizer step in between (gradient accumulation) changes nothing
      cb:on_train_batch_end(trainer, m)
      assert(math.abs(w[1][1] - wv) < 1e-5)
    end
    assert.equal(7, count[1])            -- the integer buffer is not averaged
    assert.near(0.95 ^ 5 / 8, cb:decay_at(6, 12), 1e-15)
    assert.equal(0.95 ^ 5, cb:decay_at(20, 12))
  end)

  it("with a constant decay (decay_power 0) and without buffers or the final average", function()
    local m = small_module()
    local cb = L.callbacks.Lookahead{every_n_steps = 2, decay = 0.5, decay_power = 0, buffers = false, final = false,
      total_steps = 4}
    local trainer = {global_step = 0}
    cb:on_train_start(trainer, m)
    local w, rm = m[1].weight, m[2].running_mean
    for step, value in ipairs{4, 8, 2, 6} do
      w:fill(value)
      rm:fill(value)
      trainer.global_step = step
      cb:on_train_batch_end(trainer, m)
    end
    -- step 2: 0.5 * 0 + 0.5 * 8 = 4; step 4: 0.5 * 4 + 0.5 * 6 = 5
    assert.equal(5, w[1][1])
    assert.equal(6, rm[1])   -- not averaged
  end)

  it("keeps its average in checkpoints: 4 epochs straight and 2 + 2 resumed give the same weights", function()
    local dir = H.tmpdir()
    local data = S.band_images(48, 100, {classes = 3, channels = 1, size = 8, step = 2, band = 3, noise = 0.5})
    local function train(sub, max_epochs, ckpt_path)
      L.manual_seed(1234)
      local net = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
      local model = L.models.ImageClassifier{net = net, num_classes = 3, in_channels = 1, image_size = 8,
        learning_rate = 0.01}
      local trainer = L.Trainer(S.quiet(dir .. "/" .. sub, {max_epochs = max_epochs, enable_checkpointing = true,
        callbacks = {L.callbacks.Lookahead{every_n_steps = 5, total_steps = 24},   -- (the checkpoint at step 12 falls between updates)
                     L.callbacks.ModelCheckpoint{dirpath = dir .. "/" .. sub, save_last = true}}}))
      output.capture(trainer.fit, trainer, model, L.data.DataLoader(data, {batch_size = 8, shuffle = true}),
        {ckpt_path = ckpt_path})
      return model, trainer
    end
    local straight = train("straight", 4)
    train("resumed", 2)
    local resumed, t = train("resumed", 4, "last")
    assert.equal(24, t.global_step)
    for name, p in pairs(straight:state_dict()) do H.assert_close(resumed:state_dict()[name], p, 1e-6, name) end
    local saved = L.load_safetensors(dir .. "/resumed/last.safetensors")
    assert.is_not_nil(saved["callbacks.Lookahead.average.net.0.weight"])
    H.rmdir(dir)
  end)

  it("refuses bad options and a run of unknown length", function()
    assert.matches("Lookahead: every_n_steps must be an integer >= 1, got 0", H.error_of(L.callbacks.Lookahead, {every_n_steps = 0}))
    assert.matches("Lookahead: decay must be a number in %[0, 1%], got 1.5", H.error_of(L.callbacks.Lookahead, {decay = 1.5}))
    assert.matches("Lookahead: unknown option 'every'", H.error_of(L.callbacks.Lookahead, {every = 5}))
    local cb = L.callbacks.Lookahead{}
    assert.matches("Lookahead: the run's number of steps is unknown",
      H.error_of(cb.on_train_start, cb, {estimated_stepping_batches = math.huge}, small_module()))
    assert.matches("Lookahead: the run takes no optimizer step %(the Trainer estimates 0: limit_train_batches",
      H.error_of(cb.on_train_start, cb, {estimated_stepping_batches = 0}, small_module()))
    local other = L.callbacks.Lookahead{}
    other:load_state_dict({average = {["0.weight"] = L.zeros(3)}, last_step = 5})
    assert.matches("Lookahead: the checkpoint's average has no tensor like 0.weight",
      H.error_of(other.on_train_start, other, {estimated_stepping_batches = 10}, small_module()))
  end)

  it("refuses a state that is not state_dict()'s with a clear error", function()
    local cb = L.callbacks.Lookahead{}
    local function refuses(state, pattern) assert.matches(pattern, H.error_of(cb.load_state_dict, cb, state)) end
    refuses("x", 'Lookahead:load_state_dict: expected a table from state_dict%(%), got "x"')
    refuses({average = "x"}, "Lookahead:load_state_dict: average must be a table of tensors by name %(state_dict%(%)'s%), got \"x\"")
    refuses({average = L.zeros(2)}, "average must be a table of tensors by name")
    refuses({average = {w = 3}}, "average%[\"w\"%] must be a tensor under a parameter's name, got 3")
    refuses({average = {L.zeros(2)}}, "average%[1%] must be a tensor under a parameter's name, got tensor")
    refuses({last_step = "5"}, 'last_step must be an integer >= 0, got "5"')
    refuses({last_step = -1}, "last_step must be an integer >= 0, got %-1")
    refuses({finalized = 1}, "finalized must be a boolean, got 1")
    refuses({avg = {}}, "Lookahead:load_state_dict: unknown entry 'avg' %(a Lookahead keeps average, finalized, last_step%)")
    cb:load_state_dict({average = {w = L.zeros(2)}, last_step = 3, finalized = false})   -- state_dict()'s shape
    assert.equal(3, cb._last_step)
  end)
end)
