--- trainer:fit: setup, the sanity check, the epochs and their batches, in PyTorch Lightning's order:
--   setup -> configure_optimizers -> strategy:setup -> on_fit_start -> sanity check -> on_train_start
--   per epoch: on_train_epoch_start, per batch [on_train_batch_start, training_step,
--     on_before_zero_grad + optimizer_zero_grad (first batch of an accumulation group),
--     on_before_backward, backward_step, on_after_backward,
--     on_before_optimizer_step, configure_gradient_clipping, optimizer_step (last batch of a group),
--     on_train_batch_end], validation, on_train_epoch_end (monitoring callbacks after the module)
--   on_train_end -> on_fit_end -> teardown -> strategy:teardown
-- The zero_grad, backward and optimizer step (with the hooks around them) are the strategy's
-- (trainer.strategy: optimizer_zero_grad, backward, optimizer_step; lightning/strategies/strategy.lua).
local L = require "lightning"
local hooks = require "lightning.trainer.hooks"
local data = require "lightning.trainer.data"
local Results = require "lightning.trainer.results"
local optimization = require "lightning.trainer.optimization"
local checkpoint = require "lightning.trainer.checkpoint"
local eval_loop = require "lightning.trainer.eval_loop"
local output = require "lightning.util.output"

local fit_loop = {}

local function can_stop_early(trainer)
  local met_epochs = trainer.min_epochs == nil or trainer.current_epoch >= trainer.min_epochs
  local met_steps = trainer.min_steps == nil or trainer.global_step >= trainer.min_steps
  return met_epochs and met_steps
end

local function max_steps_reached(trainer)
  return trainer.max_steps ~= -1 and trainer.global_step >= trainer.max_steps
end

local function stop_requested(trainer)
  if not trainer.should_stop then return false end
  if can_stop_early(trainer) then return true end
  if not trainer._min_notice_given then
    output.print(("Trainer was signaled to stop but min_epochs = %s / min_steps = %s are not reached yet; " ..
      "training continues"):format(tostring(trainer.min_epochs), tostring(trainer.min_steps)))
    trainer._min_notice_given = true
  end
  return false
end

local function done(trainer)
  if max_steps_reached(trainer) then return true end
  if trainer.max_epochs ~= -1 and trainer.current_epoch >= trainer.max_epochs then return true end
  return stop_requested(trainer)
end

-- Records the state a checkpoint after an error goes back to: just after an optimizer step.
local function mark_good_state(trainer, batches_done, epoch_start_rng)
  trainer._good_state = {epoch = trainer.current_epoch, batches_done = batches_done, epoch_start_rng = epoch_start_rng,
    rng = L.get_rng_state(), global_step = trainer.global_step}
end

local function loss_of(outputs)
  if type(outputs) == "number" then return outputs end
  if type(outputs) == "table" then
    local loss = outputs.loss
    if L.is_tensor(loss) then return loss:item() end
    return loss
  end
  if L.is_tensor(outputs) then return outputs:item() end
end

-- One batch: the step, the backward pass and (at the end of an accumulation group) the optimizer step.
-- Returns true when the module asked to skip the rest of the epoch (on_train_batch_start returned -1).
local function run_batch(trainer, batch, batch_idx, epoch_start_rng)
  local module = trainer.lightning_module
  trainer._batch_idx, trainer._batch_kind = batch_idx, "train"
  trainer._current_batch_size = data.batch_size(batch)
  hooks.call_callbacks(trainer, nil, "on_train_batch_start", batch, batch_idx)
  if hooks.call_module(trainer, "on_train_batch_start", batch, batch_idx) == -1 then return true end

  local outputs = hooks.call_module(trainer, "training_step", batch, batch_idx)
  if outputs ~= nil then
    local loss = loss_of(outputs)
    if type(loss) ~= "number" then
      error(("training_step must return the loss (a number) or a table with a loss field, got %s")
        :format(type(outputs) == "table" and "a table without loss" or type(outputs)), 0)
    end
    if trainer.detect_anomaly then optimization.check_loss(trainer, loss, batch_idx) end
    local opt, strategy = trainer.optimizers[1], trainer.strategy
    local n = trainer.accumulate_grad_batches
    local stepping = batch_idx % n == 0 or batch_idx == trainer.num_training_batches
    if (batch_idx - 1) % n == 0 then strategy:optimizer_zero_grad(opt, batch_idx) end
    strategy:backward(loss, opt, batch, outputs, stepping)
    if trainer.detect_anomaly then optimization.check_gradients(trainer, module, batch_idx) end
    if stepping then
      strategy:optimizer_step(opt, batch_idx, n)
      trainer.global_step = trainer.global_step + 1
      optimization.step_schedulers(trainer, "step", false)
      if batch_idx == trainer.num_training_batches then optimization.step_schedulers(trainer, "epoch", false) end
      optimization.step_schedulers(trainer, "step", true)
      mark_good_state(trainer, batch_idx, epoch_start_rng)
      trainer._stepped = true
    end
  end

  hooks.call(trainer, "on_train_batch_end", outputs, batch, batch_idx)
  local step_metrics = trainer._results:step_end(trainer)
  if trainer._stepped and (trainer.global_step % trainer.log_every_n_steps == 0 or trainer.should_stop) then
    trainer:_log_metrics(step_metrics, trainer.global_step - 1)
  end
  trainer._stepped = false
  return false
end

-- Lightning's val_check_batch: validation runs after every this many training batches of an epoch.
-- val_check_interval: a float is a fraction of the epoch's batches (1.0, the default: at its end), an
-- integer a number of batches.
local function val_check_batch(trainer)
  local v, n = trainer.val_check_interval, trainer.num_training_batches
  if v == nil or n == 0 then return math.max(n, 1) end
  if math.type(v) == "integer" then
    if v > n then
      error(("val_check_interval = %d must be at most the number of training batches (%d)"):format(v, n), 0)
    end
    return v
  end
  return math.max(1, math.floor(n * v))
end

-- Whether to validate after batches_done training batches of this epoch: inside it, or at its end
-- (at_end; also when training stops early).
local function validation_due(trainer, batches_done, at_end)
  if not trainer._val_enabled then return false end
  if (trainer.current_epoch + 1) % trainer.check_val_every_n_epoch ~= 0 then return false end
  local n = trainer.num_training_batches
  if at_end then
    if trainer.should_stop and can_stop_early(trainer) then return true end
    if batches_done < n then return false end
    if n == 0 then return true end
  end
  return batches_done > 0 and batches_done % trainer._val_check_batch == 0
end

local function run_epoch(trainer)
  local module = trainer.lightning_module
  local resume = trainer._resume_position
  trainer._resume_position = nil
  if resume and resume.epoch_start_rng then L.set_rng_state(resume.epoch_start_rng) end
  local epoch_start_rng = L.get_rng_state()
  local skip = resume and resume.batches_done or 0
  trainer._results = Results.new("train")
  trainer._epoch_finished = false
  trainer._min_notice_given = false
  mark_good_state(trainer, skip, epoch_start_rng)
  if resume and resume.rng then trainer._good_state.rng = resume.rng end

  module:train()
  hooks.call(trainer, "on_train_epoch_start")
  local n = trainer.num_training_batches
  local last_done, validated_after = skip, nil
  local function restore_resume_rng()
    if resume and resume.rng then
      L.set_rng_state(resume.rng)
      resume = nil
    end
  end
  if trainer.train_dataloader.set_epoch then trainer.train_dataloader:set_epoch(trainer.current_epoch) end
  if n > skip then
    for batch_idx, batch in trainer.train_dataloader:iter() do
      if batch_idx > skip then
        restore_resume_rng()
        trainer.is_last_batch = batch_idx == n
        local skip_rest = run_batch(trainer, batch, batch_idx, epoch_start_rng)
        last_done = batch_idx
        if batch_idx < n and validation_due(trainer, batch_idx, false) then  -- (val_check_interval)
          eval_loop.run(trainer, "validation", {during_fit = true})
          validated_after = batch_idx
        end
        if skip_rest or max_steps_reached(trainer) or stop_requested(trainer) then break end
      end
      if batch_idx >= n then break end  -- (limit_train_batches: leave without loading another batch)
    end
  end
  restore_resume_rng()

  -- from here on a checkpoint (ModelCheckpoint saves after validation or at on_train_epoch_end)
  -- resumes at the next epoch
  trainer._epoch_finished = true
  if validated_after ~= last_done and validation_due(trainer, last_done, true) then
    eval_loop.run(trainer, "validation", {during_fit = true})
  end
  trainer._results:epoch_end_reached(trainer)
  hooks.call_callbacks(trainer, "other", "on_train_epoch_end")
  hooks.call_module(trainer, "on_train_epoch_end")
  hooks.call_callbacks(trainer, "monitoring", "on_train_epoch_end")
  trainer:_log_metrics(trainer._results:epoch_metrics(), trainer.global_step)
  optimization.step_schedulers(trainer, "epoch", true)
  trainer.current_epoch = trainer.current_epoch + 1
  trainer._epoch_finished = false
end

local function run_sanity_check(trainer)
  local steps = trainer.num_sanity_val_steps
  if not trainer._val_enabled or steps == 0 then return end
  -- The sanity check leaves the generator as it found it (a loader draws from it at each iter()), so
  -- that a resumed run, which checks again, draws the same numbers as the uninterrupted one.
  local rng = L.get_rng_state()
  trainer.sanity_checking = true
  hooks.call_callbacks(trainer, nil, "on_sanity_check_start")
  eval_loop.run(trainer, "validation", {during_fit = true, max_batches = steps == -1 and trainer.num_val_batches
    or math.min(steps, trainer.num_val_batches)})
  hooks.call_callbacks(trainer, nil, "on_sanity_check_end")
  trainer.sanity_checking = false
  trainer.callback_metrics, trainer.progress_bar_metrics, trainer.logged_metrics = {}, {}, {}
  L.set_rng_state(rng)
end

local function estimated_stepping_batches(trainer)
  local per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
  local total = trainer.max_epochs == -1 and math.huge or per_epoch * trainer.max_epochs
  if trainer.max_steps ~= -1 then total = math.min(total, trainer.max_steps) end
  return total
end

--- The body of trainer:fit; resolve_ckpt() gives the checkpoint to resume from (or nil).
function fit_loop.fit(trainer, resolve_ckpt)
  local module = trainer.lightning_module
  trainer:_add_module_callbacks()
  hooks.call_module(trainer, "prepare_data")
  data.setup(trainer, "fit")
  hooks.call(trainer, "setup", "fit")
  trainer.log_dir = trainer:_resolve_log_dir()
  trainer:_check_output_folders(module)
  local ckpt_path = resolve_ckpt()
  local ckpt = ckpt_path and trainer.strategy:load_checkpoint(ckpt_path)
  trainer.ckpt_path = ckpt_path
  if ckpt then checkpoint.restore_model(trainer, ckpt) end
  hooks.call_module(trainer, "configure_model")

  trainer.train_dataloader = data.loader(trainer, "train")
  if not trainer.train_dataloader then
    error("no training data: pass a data module or a loader to fit, or define train_dataloader in the module", 0)
  end
  trainer.num_training_batches = data.num_batches(trainer.train_dataloader, trainer.limit_train_batches,
    "limit_train_batches")
  trainer.estimated_stepping_batches = estimated_stepping_batches(trainer)
  trainer._val_check_batch = val_check_batch(trainer)
  trainer.optimizers, trainer.lr_scheduler_configs = optimization.parse(hooks.call_module(trainer, "configure_optimizers"))
  if ckpt then checkpoint.restore_training_state(trainer, ckpt) end
  trainer.strategy:setup(trainer)
  for _, lg in ipairs(trainer.is_global_zero and trainer.loggers or {}) do
    if type(lg.log_hyperparams) == "function" and module.hparams and next(module.hparams) then
      lg:log_hyperparams(module.hparams)
    end
  end

  hooks.call(trainer, "on_fit_start")
  eval_loop.prepare(trainer, "validation", "val")
  run_sanity_check(trainer)
  trainer.training = true
  hooks.call(trainer, "on_train_start")
  while not done(trainer) do run_epoch(trainer) end
  hooks.call(trainer, "on_train_end")
  trainer.training = false
  hooks.call(trainer, "on_fit_end")
  hooks.call(trainer, "teardown", "fit")
  data.teardown(trainer, "fit")
  trainer.strategy:teardown()
  trainer:_finalize_loggers("success")
end

return fit_loop
