--- The validation, test and predict loops, and trainer:validate / test / predict around them.
-- Per loop, as Lightning 2 calls them (spec/trainer_hooks_lightning_spec.lua checks it against
-- Lightning itself): [on_validation_model_zero_grad, inside fit and after the sanity check],
-- on_<stage>_model_eval, on_<stage>_start, on_<stage>_epoch_start, per batch [the batch transfer hooks
-- (strategy:batch_to_device), on_<stage>_batch_start,
-- <stage>_step, on_<stage>_batch_end], on_<stage>_epoch_end, on_<stage>_end, and on_<stage>_model_train
-- (validation and test; not predict).
local grad_mode = require "lightning.autograd.mode"
local hooks = require "lightning.trainer.hooks"
local data = require "lightning.trainer.data"
local Results = require "lightning.trainer.results"
local checkpoint = require "lightning.trainer.checkpoint"
local interrupt = require "lightning.trainer.interrupt"
local agreement = require "lightning.trainer.agreement"
local output = require "lightning.util.output"
local class = require "lightning.class"

local eval_loop = {}

local STEP = {validation = "validation_step", test = "test_step", predict = "predict_step"}
local LIMIT = {validation = "limit_val_batches", test = "limit_test_batches", predict = "limit_predict_batches"}
local COUNT = {validation = "num_val_batches", test = "num_test_batches", predict = "num_predict_batches"}
local FLAG = {validation = "validating", test = "testing", predict = "predicting"}

--- Finds the loader of a stage and how many batches to take; stage is enabled when the module has a
-- step for it, there is a loader and the limit leaves batches.
function eval_loop.prepare(trainer, stage, kind)
  local module = trainer.lightning_module
  local loader = module[STEP[stage]] and data.loader(trainer, kind) or nil
  trainer["_" .. stage .. "_loader"] = loader
  trainer[COUNT[stage]] = loader and data.num_batches(loader, trainer[LIMIT[stage]], LIMIT[stage]) or 0
  local enabled = loader ~= nil and trainer[COUNT[stage]] > 0
  if stage == "validation" then trainer._val_enabled = enabled end
  return enabled
end

--- Runs one pass of a stage's loop. opts: during_fit (validation inside fit), max_batches.
-- Returns the epoch metrics (validation, test) or the list of predictions (predict).
local function run(trainer, stage, opts)
  local module = trainer.lightning_module
  local loader = trainer["_" .. stage .. "_loader"]
  local n = opts.max_batches or trainer[COUNT[stage]]
  local previous_results, previous_batch = trainer._results, {trainer._batch_idx, trainer._batch_kind}
  local results = Results.new(stage)
  trainer._results = results
  trainer[FLAG[stage]] = true
  local was_training = trainer.training
  trainer.training = false
  trainer._validation_complete = false

  if opts.during_fit and not trainer.sanity_checking then hooks.call_module(trainer, "on_validation_model_zero_grad") end
  -- the module's mode before the loop, which the default on_<stage>_model_train hooks restore
  module._training_before_eval = module.training
  hooks.call_module(trainer, "on_" .. stage .. "_model_eval")
  hooks.call(trainer, "on_" .. stage .. "_start")
  hooks.call(trainer, "on_" .. stage .. "_epoch_start")
  local predictions = {}
  if n > 0 then
    for batch_idx, batch in loader:iter() do
      trainer._batch_idx, trainer._batch_kind = batch_idx, stage
      batch = trainer.strategy:batch_to_device(batch, 0)
      trainer._current_batch_size = data.batch_size(batch)
      hooks.call(trainer, "on_" .. stage .. "_batch_start", batch, batch_idx)
      local out = hooks.call_module(trainer, STEP[stage], batch, batch_idx)
      if stage == "predict" then predictions[#predictions + 1] = out end
      hooks.call(trainer, "on_" .. stage .. "_batch_end", out, batch, batch_idx)
      local step_metrics = results:step_end(trainer)
      if next(step_metrics) then trainer:_log_metrics(step_metrics, trainer.global_step) end
      interrupt.check(trainer)
      if batch_idx >= n then break end
    end
  end
  results:epoch_end_reached(trainer)
  hooks.call(trainer, "on_" .. stage .. "_epoch_end")
  local epoch_metrics = results:epoch_metrics()
  trainer:_log_metrics(epoch_metrics, math.max(trainer.global_step - 1, 0))
  -- the pass is done: a checkpoint saved from here (on_validation_end) is after it
  trainer._validation_complete = true
  hooks.call(trainer, "on_" .. stage .. "_end")
  trainer._validation_complete = false
  if stage ~= "predict" then hooks.call_module(trainer, "on_" .. stage .. "_model_train") end

  trainer[FLAG[stage]] = false
  trainer.training = was_training
  trainer._results = previous_results
  trainer._batch_idx, trainer._batch_kind = previous_batch[1], previous_batch[2]
  if stage == "predict" then return predictions end
  local metrics = {}
  for _, name in ipairs(results.order) do
    local e = results.entries[name]
    if e.on_epoch then metrics[results:_forked(e, "_epoch")] = results:_epoch_value(e) end
  end
  return metrics
end

--- Runs the stage's loop (as Lightning, under no_grad: nothing is recorded for autograd).
function eval_loop.run(trainer, stage, opts)
  return grad_mode.with_grad_enabled(false, run, trainer, stage, opts)
end

local function print_results(stage, metrics)
  local names = {}
  for name in pairs(metrics) do names[#names + 1] = name end
  if #names == 0 then return end
  table.sort(names)
  local width = #(stage .. " metric")
  for _, name in ipairs(names) do width = math.max(width, #name) end
  local rule = string.rep("-", width + 24)
  output.print(rule)
  output.print(("%-" .. width .. "s    %s"):format(stage:sub(1, 1):upper() .. stage:sub(2) .. " metric", "DataLoader 1"))
  output.print(rule)
  for _, name in ipairs(names) do output.print(("%-" .. width .. "s    %.6g"):format(name, metrics[name])) end
  output.print(rule)
end

--- The body of trainer:validate / test / predict.
function eval_loop.evaluate(trainer, stage, kind, resolve_ckpt, opts)
  local module = trainer.lightning_module
  local fn = trainer.state.fn
  if not module[STEP[stage]] then
    error(("%s has no %s"):format(class.name_of(module), STEP[stage]), 0)
  end
  trainer:_add_module_callbacks()
  hooks.call_module(trainer, "prepare_data")
  data.setup(trainer, fn)
  hooks.call(trainer, "setup", fn)
  local ckpt_path = resolve_ckpt()
  if ckpt_path then checkpoint.restore_model(trainer, trainer.strategy:load_checkpoint(ckpt_path), ckpt_path) end
  trainer.ckpt_path = ckpt_path
  hooks.call_module(trainer, "configure_model")
  trainer.strategy:setup(trainer)
  if not eval_loop.prepare(trainer, stage, kind) and not trainer["_" .. stage .. "_loader"] then
    error(("no %s data: pass a data module with %s_dataloader or a loader"):format(stage, kind), 0)
  end
  agreement.evaluate(trainer, stage)
  local result = eval_loop.run(trainer, stage, {})
  hooks.call(trainer, "teardown", fn)
  data.teardown(trainer, fn)
  trainer.strategy:teardown()
  trainer:_finalize_loggers("success")
  if stage == "predict" then return result end
  if opts.verbose ~= false then print_results(stage, result) end
  return {result}
end

return eval_loop
