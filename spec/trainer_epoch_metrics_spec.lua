-- Callbacks see the current epoch's metrics: what the steps log (numbers with on_epoch, metric objects)
-- is reduced before any epoch-end hook, as in Lightning, for the built-in ImageClassifier too.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"

local function images(n, seed)
  return S.band_images(n, seed, {classes = 4, channels = 3, size = 16, step = 4, band = 4, noise = 0.8})
end
local TRAIN, VAL = images(32, 1), images(24, 2)

-- Records what a callback's epoch-end hooks read, and what the logger gets per epoch.
local function watched_fit(dir, model, epochs)
  local seen = {val = {}, train = {}, sanity = {}}
  local cb = {
    on_validation_epoch_end = function(_, trainer)
      local m = trainer.callback_metrics
      local row = {val_acc = m.val_acc, val_f1 = m.val_f1, val_loss = m.val_loss, epoch = trainer.current_epoch}
      table.insert(trainer.sanity_checking and seen.sanity or seen.val, row)
    end,
    on_train_epoch_end = function(_, trainer)
      local m = trainer.callback_metrics
      seen.train[#seen.train + 1] = {train_acc = m.train_acc, train_recall = m.train_recall,
        train_loss = m.train_loss_epoch}
    end,
  }
  local logger = S.MemoryLogger()
  local trainer = L.Trainer(S.quiet(dir, {max_epochs = epochs, callbacks = {cb}, logger = logger}))
  output.capture(trainer.fit, trainer, model, L.data.DataLoader(TRAIN, {batch_size = 8, shuffle = true}),
    L.data.DataLoader(VAL, {batch_size = 8}))
  local logged = {}   -- epoch -> the epoch values the logger got
  for _, r in ipairs(logger.records) do
    if r.metrics.val_acc or r.metrics.train_acc then
      local e = r.metrics.epoch
      logged[e] = logged[e] or {}
      for k, v in pairs(r.metrics) do logged[e][k] = v end
    end
  end
  return seen, logged, trainer
end

describe("Epoch metrics in callbacks", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("a callback's on_validation_epoch_end and on_train_epoch_end read this epoch's ImageClassifier scores", function()
    L.manual_seed(11)
    local model = L.models.BasicImageClassifier{num_classes = 4, in_channels = 3, image_size = 16, learning_rate = 0.01}
    local seen, logged = watched_fit(dir, model, 3)
    assert.equal(1, #seen.sanity)
    assert.is_number(seen.sanity[1].val_acc)        -- the sanity check's own, not nil
    assert.equal(3, #seen.val)
    assert.equal(3, #seen.train)
    local changed = false
    for epoch = 0, 2 do
      local v, t, l = seen.val[epoch + 1], seen.train[epoch + 1], logged[epoch]
      assert.equal(epoch, v.epoch)
      for _, name in ipairs {"val_acc", "val_f1", "val_loss"} do assert.equal(l[name], v[name], name .. " at " .. epoch) end
      for _, name in ipairs {"train_acc", "train_recall"} do assert.equal(l[name], t[name], name .. " at " .. epoch) end
      assert.equal(l.train_loss_epoch, t.train_loss)
      if epoch > 0 and v.val_loss ~= seen.val[epoch].val_loss and t.train_loss ~= seen.train[epoch].train_loss then
        changed = true
      end
    end
    assert.is_true(changed, "the losses never changed between epochs: the spec cannot tell epochs apart")
  end)

  it("the numbers are the confusion matrix's over the whole epoch, as before", function()
    L.manual_seed(12)
    local model = L.models.BasicImageClassifier{num_classes = 4, in_channels = 3, image_size = 16}
    local seen = watched_fit(dir, model, 1)
    -- the module's epoch state still holds the last validation: its scores are what callbacks read
    local scores = model.epoch_metrics.val:compute()
    assert.equal(scores.accuracy, seen.val[1].val_acc)
    assert.equal(scores.f1, seen.val[1].val_f1)
    local train = model.epoch_metrics.train:compute()
    assert.equal(train.accuracy, seen.train[1].train_acc)
    assert.equal(train.recall, seen.train[1].train_recall)
  end)

  it("a metric object logged in the steps is computed before the epoch-end hooks", function()
    local Counter = {}
    Counter.__index = Counter
    function Counter:update(n) self.n = self.n + n end
    function Counter:compute() return self.n end
    local counter = setmetatable({n = 0}, Counter)
    local read
    local model = S.Regression{methods = {
      validation_step = function(self, batch)
        counter:update(batch.input:size(1))
        self:log("seen", counter)
      end,
      on_validation_epoch_start = function() counter.n = 0 end,
    }}(3)
    local cb = {on_validation_epoch_end = function(_, trainer) read = trainer.callback_metrics.seen end}
    local batches = S.regression_batches(3, 4, 3, 1)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, callbacks = {cb}, num_sanity_val_steps = 0}))
    trainer:fit(model, S.Loader({batches[1]}), S.Loader({batches[2], batches[3]}))
    assert.equal(8, read)
    assert.equal(8, trainer.logged_metrics.seen)
  end)

  it("a metric object without state_dict may be logged in training_step (it is not saved)", function()
    local count = {n = 0, compute = function(self) return self.n end}
    local model = S.Regression{methods = {training_step = function(self, batch, i)
      count.n = count.n + 1
      self:log("batches", count)
      return S.Regression{}.training_step(self, batch, i)
    end}}(3)
    local batches = S.regression_batches(3, 4, 3, 1)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, enable_checkpointing = true,
      callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true}}}))
    output.capture(trainer.fit, trainer, model, S.Loader(batches))
    assert.equal(3, trainer.callback_metrics.batches)
  end)

  it("a metric object may not be logged per step, and its compute() must give a number", function()
    local obj = {compute = function() return "x" end}
    local function run(log_opts)
      local model = S.Regression{methods = {validation_step = function(self) self:log("m", obj, log_opts) end}}(3)
      local batches = S.regression_batches(2, 4, 3, 1)
      local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, num_sanity_val_steps = 0}))
      return H.error_of(trainer.fit, trainer, model, S.Loader({batches[1]}), S.Loader({batches[2]}))
    end
    assert.matches('self.log%("m"%): a metric object is computed once per epoch: on_step must be false', run({on_step = true}))
    assert.matches("the metric object's compute%(%) must return a number, got string", run())
  end)
end)
