--- One stage's evaluation loop (Lightning's _EvaluationLoop): validation, test or predict. The Trainer
-- holds one per stage (trainer.validate_loop, test_loop, predict_loop); the fit loop's validation is
-- trainer.validate_loop too (fit_loop.epoch_loop.val_loop). The loop owns its loader, its number of
-- batches, its batch progress and the results of its pass (what self:log collects while it runs).
-- Per pass, as Lightning 2 calls them (spec/trainer_hooks_lightning_spec.lua checks it against
-- Lightning itself): [on_validation_model_zero_grad, inside fit and after the sanity check],
-- on_<stage>_model_eval, on_<stage>_start, on_<stage>_epoch_start, per batch [the batch transfer hooks
-- (strategy:batch_to_device), on_<stage>_batch_start, <stage>_step, on_<stage>_batch_end],
-- on_<stage>_epoch_end, on_<stage>_end, and on_<stage>_model_train (validation and test; not predict).
-- While it runs it is trainer.active_loop; `outer` is the loop that was active before (the training
-- epoch loop for a validation inside fit).
local grad_mode = require "lightning.autograd.mode"
local class = require "lightning.class"
local hooks = require "lightning.trainer.hooks"
local data = require "lightning.trainer.data"
local Results = require "lightning.trainer.results"
local interrupt = require "lightning.trainer.interrupt"
local progress = require "lightning.trainer.loops.progress"

local EvaluationLoop = class("EvaluationLoop")

local STEP = {validation = "validation_step", test = "test_step", predict = "predict_step"}
local LIMIT = {validation = "limit_val_batches", test = "limit_test_batches", predict = "limit_predict_batches"}
local COUNT = {validation = "num_val_batches", test = "num_test_batches", predict = "num_predict_batches"}
local FLAG = {validation = "validating", test = "testing", predict = "predicting"}

--- stage: "validation", "test" or "predict"; kind: the loader's kind ("val", "test", "predict").
function EvaluationLoop:__init(trainer, stage, kind)
  self.trainer, self.stage, self.kind = trainer, stage, kind
  self.step_name = STEP[stage]   -- (the module's step: validation_step, test_step, predict_step)
  self.dataloader = nil
  self.num_batches = 0
  self.enabled = false
  self.batch_progress = progress.BatchProgress()
  self.results = nil
  self.batch_idx = nil      -- (the batch being run; nil until the pass's first batch)
  self.complete = false     -- (the pass is done: on_<stage>_end runs)
end

--- Finds the stage's loader and how many batches to take (trainer.num_val_batches, ...); the loop is
-- enabled when the module has a step for it, there is a loader and the limit leaves batches.
function EvaluationLoop:setup_data()
  local trainer, stage = self.trainer, self.stage
  local loader = trainer.lightning_module[self.step_name] and data.loader(trainer, self.kind) or nil
  self.dataloader = loader
  self.num_batches = loader and data.num_batches(loader, trainer[LIMIT[stage]], LIMIT[stage]) or 0
  trainer[COUNT[stage]] = self.num_batches
  self.enabled = loader ~= nil and self.num_batches > 0
  return self.enabled
end

local function run(self, opts)
  local trainer, stage = self.trainer, self.stage
  local module = trainer.lightning_module
  local n = opts.max_batches or self.num_batches
  self.outer = trainer.active_loop
  self.results = Results.new(stage)
  self.batch_idx = nil
  self.batch_progress:reset_on_run()
  trainer.active_loop = self
  trainer[FLAG[stage]] = true
  local was_training = trainer.training
  trainer.training = false
  self.complete = false

  if opts.during_fit and not trainer.sanity_checking then hooks.call_module(trainer, "on_validation_model_zero_grad") end
  -- the module's mode before the loop, which the default on_<stage>_model_train hooks restore
  module._training_before_eval = module.training
  hooks.call_module(trainer, "on_" .. stage .. "_model_eval")
  hooks.call(trainer, "on_" .. stage .. "_start")
  hooks.call(trainer, "on_" .. stage .. "_epoch_start")
  local predictions = {}
  local bp = self.batch_progress
  if n > 0 then
    for batch_idx, batch in self.dataloader:iter() do
      self.batch_idx = batch_idx
      bp:increment_ready()
      bp.is_last_batch = batch_idx >= n
      batch = trainer.strategy:batch_to_device(batch, 0)
      trainer.last_batch_size = data.batch_size(batch)
      hooks.call(trainer, "on_" .. stage .. "_batch_start", batch, batch_idx)
      bp:increment_started()
      local out = hooks.call_module(trainer, self.step_name, batch, batch_idx)
      bp:increment_processed()
      if stage == "predict" then predictions[#predictions + 1] = out end
      hooks.call(trainer, "on_" .. stage .. "_batch_end", out, batch, batch_idx)
      bp:increment_completed()
      local step_metrics = self.results:step_end(trainer)
      if next(step_metrics) then trainer:_log_metrics(step_metrics, trainer.global_step) end
      interrupt.check(trainer)
      if batch_idx >= n then break end
    end
  end
  self.results:epoch_end_reached(trainer)
  hooks.call(trainer, "on_" .. stage .. "_epoch_end")
  local epoch_metrics = self.results:epoch_metrics()
  trainer:_log_metrics(epoch_metrics, math.max(trainer.global_step - 1, 0))
  -- the pass is done: a checkpoint saved from here (on_validation_end) is after it
  self.complete = true
  hooks.call(trainer, "on_" .. stage .. "_end")
  self.complete = false
  if stage ~= "predict" then hooks.call_module(trainer, "on_" .. stage .. "_model_train") end

  trainer[FLAG[stage]] = false
  trainer.training = was_training
  trainer.active_loop = self.outer
  self.outer = nil
  if stage == "predict" then return predictions end
  return self.results:epoch_values()
end

--- Runs one pass (as Lightning, under no_grad: nothing is recorded for autograd). opts: during_fit
-- (validation inside fit), max_batches. Returns the epoch metrics (validation, test) or the list of
-- predictions (predict).
function EvaluationLoop:run(opts)
  return grad_mode.with_grad_enabled(false, run, self, opts or {})
end

--- What a checkpoint could keep of the loop: its batch progress.
function EvaluationLoop:state_dict()
  return {batch_progress = self.batch_progress:state_dict()}
end

function EvaluationLoop:load_state_dict(state)
  if state.batch_progress then self.batch_progress:load_state_dict(state.batch_progress) end
end

return EvaluationLoop
