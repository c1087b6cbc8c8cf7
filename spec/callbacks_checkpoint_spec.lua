-- ModelCheckpoint: top-k files kept and deleted, save_last, the filename template, version suffixes,
-- when it saves, its state, and its errors.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local ModelCheckpoint = L.callbacks.ModelCheckpoint

local function files(dir)
  local list = {}
  local p = io.popen("ls -1 '" .. dir .. "' 2>/dev/null")
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

-- Fits max_epochs epochs of 2 batches; the module logs `score` = scores[epoch + 1] at each validation.
local function fit(dir, cb_opts, scores, trainer_opts)
  local model = S.Regression{methods = {on_validation_epoch_end = function(self)
    if not self.trainer.sanity_checking then self:log("score", scores[self.trainer.current_epoch + 1]) end
  end}}(3)
  local cb = ModelCheckpoint(cb_opts)
  local opts = S.quiet(dir, {max_epochs = #scores, enable_checkpointing = true, callbacks = {cb}, num_sanity_val_steps = 0})
  for k, v in pairs(trainer_opts or {}) do opts[k] = v end
  local trainer = L.Trainer(opts)
  local batches = S.regression_batches(3, 4, 3, 1)
  local text = output.capture(trainer.fit, trainer, model, S.Loader({batches[1], batches[2]}), S.Loader({batches[3]}))
  return cb, trainer, text
end

describe("ModelCheckpoint", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("keeps the top k by the monitored metric and deletes the others (mode max)", function()
    local cb = fit(dir, {dirpath = dir, monitor = "score", mode = "max", save_top_k = 2, filename = "{epoch}-{score:.2f}"},
      {0.5, 0.7, 0.6, 0.9, 0.1})
    assert.same({"epoch=1-score=0.70.safetensors", "epoch=3-score=0.90.safetensors"}, files(dir))
    assert.equal(dir .. "/epoch=3-score=0.90.safetensors", cb.best_model_path)
    assert.equal(0.9, cb.best_model_score)
    assert.equal(dir .. "/epoch=1-score=0.70.safetensors", cb.kth_best_model_path)
    assert.equal(0.7, cb.kth_value)
  end)

  it("ranks by the smallest value in mode min, and keeps all with save_top_k = -1", function()
    fit(dir, {dirpath = dir, monitor = "score", save_top_k = 1, filename = "{epoch}"}, {3, 1, 2})
    assert.same({"epoch=1.safetensors"}, files(dir))
    H.rmdir(dir)
    dir = H.tmpdir()
    fit(dir, {dirpath = dir, monitor = "score", save_top_k = -1, filename = "{epoch}"}, {3, 1, 2})
    assert.same({"epoch=0.safetensors", "epoch=1.safetensors", "epoch=2.safetensors"}, files(dir))
  end)

  it("saves nothing but last with save_top_k = 0 and save_last", function()
    local cb = fit(dir, {dirpath = dir, monitor = "score", save_top_k = 0, save_last = true}, {1, 2})
    assert.same({"last.safetensors"}, files(dir))
    assert.equal(dir .. "/last.safetensors", cb.last_model_path)
  end)

  it("without a monitor keeps the latest checkpoint, named {epoch}-{step} by default", function()
    local cb = fit(dir, {dirpath = dir}, {1, 2, 3})
    assert.same({"epoch=2-step=6.safetensors"}, files(dir))
    assert.equal(dir .. "/epoch=2-step=6.safetensors", cb.best_model_path)
  end)

  it("fills the filename template as Lightning does", function()
    local metrics = {epoch = 3, step = 120, val_acc = 0.81234, val_loss = 1.5, ["train/loss"] = 0.25}
    local fmt = ModelCheckpoint.format_name
    assert.equal("epoch=3-val_acc=0.8123", fmt("{epoch}-{val_acc:.4f}", metrics, true))
    assert.equal("epoch=3-val_acc=0.8123", fmt("epoch={epoch}-val_acc={val_acc:.4f}", metrics, false))
    assert.equal("epoch=epoch=3", fmt("epoch={epoch}", metrics, true))   -- Lightning's double insertion
    assert.equal("003-1.50e+00", fmt("{epoch:03d}-{val_loss:.2e}", metrics, false))
    assert.equal("81.2%", fmt("{val_acc:.1%}", metrics, false))
    assert.equal("0.81234", fmt("{val_acc}", metrics, false))
    assert.equal("1.5", fmt("{val_loss}", metrics, false))
    assert.equal("missing=0", fmt("{missing}", metrics, true))   -- a metric not logged counts as 0
    assert.equal("train/loss=0.25", fmt("{train/loss}", metrics, true))
    assert.equal("best", fmt("best", metrics, true))
    assert.matches("unsupported format spec \"x>5\"", H.error_of(fmt, "{epoch:x>5}", metrics, true))
  end)

  it("adds -v1, -v2 to names that are taken; last.safetensors is replaced, never a last-v1 beside it", function()
    os.execute("mkdir -p '" .. dir .. "'")
    H.write_file(dir .. "/epoch=0.safetensors", "old")
    H.write_file(dir .. "/last.safetensors", "old")
    fit(dir, {dirpath = dir, monitor = "score", save_top_k = -1, filename = "{epoch}", save_last = true}, {1})
    assert.same({"epoch=0-v1.safetensors", "epoch=0.safetensors", "last.safetensors"}, files(dir))
    assert.equal("old", H.read_file(dir .. "/epoch=0.safetensors"))
    local _, meta = L.load_safetensors(dir .. "/last.safetensors")   -- the new checkpoint, in place
    assert.equal("lightning.checkpoint", meta.format)
  end)

  it("overwrites names that are taken with enable_version_counter = false", function()
    os.execute("mkdir -p '" .. dir .. "'")
    H.write_file(dir .. "/epoch=0.safetensors", "old")
    fit(dir, {dirpath = dir, monitor = "score", filename = "{epoch}", enable_version_counter = false}, {1})
    assert.same({"epoch=0.safetensors"}, files(dir))
    assert.are_not.equal("old", H.read_file(dir .. "/epoch=0.safetensors"))
  end)

  it("saves every n epochs", function()
    fit(dir, {dirpath = dir, save_top_k = -1, every_n_epochs = 2, filename = "{epoch}"}, {1, 2, 3, 4, 5})
    assert.same({"epoch=1.safetensors", "epoch=3.safetensors"}, files(dir))
  end)

  it("saves after validation when validation is not every epoch", function()
    local saved = {}
    local spy = {on_save_checkpoint = function(_, trainer) saved[#saved + 1] = trainer.current_epoch end}
    local model = S.Regression{}(3)
    local batches = S.regression_batches(2, 4, 3, 1)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 4, check_val_every_n_epoch = 2, enable_checkpointing = true,
      callbacks = {spy, ModelCheckpoint{dirpath = dir, monitor = "val_loss", save_top_k = -1, filename = "{epoch}"}}}))
    trainer:fit(model, S.Loader({batches[1]}), S.Loader({batches[2]}))
    assert.same({1, 3}, saved)
  end)

  it("reports a monitor that was never logged, listing the metrics that were", function()
    local err = H.error_of(fit, dir, {dirpath = dir, monitor = "val_acc"}, {1})
    assert.matches("ModelCheckpoint%(monitor = \"val_acc\"%) could not find the monitored metric; the logged metrics are: score, train_loss, train_loss_epoch, train_loss_step, val_loss", err)
  end)

  it("warns once and saves no top-k checkpoint when there is no validation", function()
    local model = S.Regression{}(3)
    local cb = ModelCheckpoint{dirpath = dir, monitor = "val_acc"}
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 2, enable_checkpointing = true, callbacks = {cb}}))
    local text = output.capture(trainer.fit, trainer, model, S.Loader(S.regression_batches(1, 4, 3, 1)))
    assert.matches("the monitored metric \"val_acc\" is not logged %(there is no validation%)", text)
    assert.equal(1, select(2, text:gsub("not logged", "")))
    assert.same({}, files(dir))
  end)

  it("says what it does with verbose = true", function()
    local _, _, text = fit(dir, {dirpath = dir, monitor = "score", mode = "max", save_top_k = 1, verbose = true,
      filename = "{epoch}"}, {0.5, 0.2})
    assert.matches("Epoch 0, global step 2: \"score\" reached 0.50000 %(best 0.50000%), saving model to \".*epoch=0.safetensors\" as top 1", text)
    assert.matches("Epoch 1, global step 4: \"score\" was not in top 1", text)
  end)

  it("puts checkpoints in the logger's folder by default", function()
    local lg = S.MemoryLogger()
    lg.log_dir = dir .. "/logs/version_0"
    local cb, trainer = fit(dir, {}, {1}, {logger = lg})
    assert.equal(dir .. "/logs/version_0/checkpoints", cb.dirpath)
    assert.same({"epoch=0-step=2.safetensors"}, files(cb.dirpath))
    assert.equal(lg.log_dir, trainer.log_dir)
  end)

  it("restores its state, or only best_model_path when the folder changed", function()
    local cb = ModelCheckpoint{dirpath = dir, monitor = "score"}
    local state = {monitor = "score", best_model_score = 0.5, best_model_path = dir .. "/a.safetensors",
      current_score = 0.5, dirpath = dir, best_k_models = {[dir .. "/a.safetensors"] = 0.5},
      kth_best_model_path = dir .. "/a.safetensors", kth_value = 0.5, last_model_path = ""}
    cb:load_state_dict(state)
    assert.same(state, cb:state_dict())
    local moved = ModelCheckpoint{dirpath = dir .. "/elsewhere", monitor = "score"}
    local text = output.capture(moved.load_state_dict, moved, state)
    assert.matches("the folder changed", text)
    assert.equal(dir .. "/a.safetensors", moved.best_model_path)
    assert.same({}, moved.best_k_models)
  end)

  local bad = {
    {{save_top_k = 3}, "ModelCheckpoint: save_top_k = 3 needs a monitor"},
    {{save_top_k = -2}, "save_top_k must be an integer >= %-1, got %-2"},
    {{mode = "maximum"}, "mode must be \"min\" or \"max\", got \"maximum\""},
    {{monitor = 5}, "monitor must be a string, got 5"},
    {{every_n_epochs = 1.5}, "every_n_epochs must be an integer >= 0"},
    {{save_top_k_ = 1}, "ModelCheckpoint: unknown option 'save_top_k_' %(did you mean 'save_top_k'%?%) %(known: .*save_top_k"},
  }
  for _, case in ipairs(bad) do
    it("rejects " .. next(case[1]), function()
      assert.matches(case[2], H.error_of(ModelCheckpoint, case[1]))
    end)
  end
end)
