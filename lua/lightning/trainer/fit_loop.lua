--- trainer:fit: setup, the sanity check, the epochs and their batches, in PyTorch Lightning's order:
--   setup -> model_to_device -> configure_optimizers -> strategy:setup -> on_fit_start -> sanity check ->
--   on_train_start
--   per epoch: on_train_epoch_start, per batch [the batch transfer hooks, on_train_batch_start, training_step,
--     on_before_zero_grad + optimizer_zero_grad (first batch of an accumulation group),
--     on_before_backward, backward_step, on_after_backward,
--     on_before_optimizer_step, configure_gradient_clipping, optimizer_step (last batch of a group),
--     on_train_batch_end], validation, on_train_epoch_end (monitoring callbacks after the module)
--   on_train_end -> on_fit_end -> teardown -> strategy:teardown
-- The zero_grad, backward and optimizer step (with the hooks around them) are the strategy's
-- (trainer.strategy: optimizer_zero_grad, backward, optimizer_step; lightning/strategies/strategy.lua).
-- After each optimizer step the loop marks the state a checkpoint inside the epoch goes back to
-- (lightning.trainer.loop_state); after each batch it stops when Ctrl-C or SIGTERM came
-- (lightning.trainer.interrupt). A training loss that is NaN or infinite stops training
-- (trainer.diverged; with detect_anomaly it is an error).
local grad_mode = require "lightning.autograd.mode"
local L = require "lightning"
local hooks = require "lightning.trainer.hooks"
local data = require "lightning.trainer.data"
local Results = require "lightning.trainer.results"
local optimization = require "lightning.trainer.optimization"
local checkpoint = require "lightning.trainer.checkpoint"
local eval_loop = require "lightning.trainer.eval_loop"
local loop_state = require "lightning.trainer.loop_state"
local monitors = require "lightning.trainer.monitors"
local agreement = require "lightning.trainer.agreement"
local interrupt = require "lightning.trainer.interrupt"
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
  if trainer.diverged then return true end
  if not trainer.should_stop then return false end
  if can_stop_early(trainer) then return true end
  if not trainer._min_notice_given then
    trainer:print(("Trainer was signaled to stop but min_epochs = %s / min_steps = %s are not reached yet; " ..
      "training continues"):format(tostring(trainer.min_epochs), tostring(trainer.min_steps)))
    trainer._min_notice_given = true
  end
  return false
end

-- The limit that leaves nothing to train at this epoch and step ("max_epochs = 3"), or nil.
local function limit_reached(trainer, epoch, global_step)
  if trainer.max_steps ~= -1 and global_step >= trainer.max_steps then return ("max_steps = %d"):format(trainer.max_steps) end
  if trainer.max_epochs ~= -1 and epoch >= trainer.max_epochs then return ("max_epochs = %d"):format(trainer.max_epochs) end
  return nil
end

local function done(trainer)
  return limit_reached(trainer, trainer.current_epoch, trainer.global_step) ~= nil or stop_requested(trainer)
end

-- The loss as training_step gave it: a number, a (recorded) tensor, or a table's loss field.
local function given_loss(outputs)
  if type(outputs) == "table" then return outputs.loss end
  return outputs
end

-- The loss as a number.
local function loss_of(outputs)
  local loss = given_loss(outputs)
  if L.is_tensor(loss) then return loss:item() end
  if type(loss) == "number" then return loss end
end

local function is_finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

-- One batch: the step, the backward pass and (at the end of an accumulation group) the optimizer step.
-- Returns true when the rest of the epoch is skipped: on_train_batch_start returned -1, or the loss
-- is not finite (then nothing is backpropagated or stepped).
local function run_batch(trainer, batch, batch_idx)
  local module = trainer.lightning_module
  trainer._batch_idx, trainer._batch_kind = batch_idx, "train"
  batch = trainer.strategy:batch_to_device(batch, 0)
  trainer._current_batch_size = data.batch_size(batch)
  hooks.call_callbacks(trainer, nil, "on_train_batch_start", batch, batch_idx)
  if hooks.call_module(trainer, "on_train_batch_start", batch, batch_idx) == -1 then return true end

  local stepped = false
  -- the step is recorded for autograd; the rest of fit is not (see fit_loop.fit)
  local outputs = grad_mode.with_grad_enabled(true, hooks.call_module, trainer, "training_step", batch, batch_idx)
  if outputs ~= nil then
    local loss = loss_of(outputs)
    if type(loss) ~= "number" then
      error(("training_step must return the loss (a number) or a table with a loss field, got %s")
        :format(type(outputs) == "table" and "a table without loss" or type(outputs)), 0)
    end
    if trainer.detect_anomaly then optimization.check_loss(trainer, loss, batch_idx) end
    if trainer.strategy:reduce_boolean_decision(not is_finite(loss), false) then
      trainer:_signal_divergence("the training loss", loss, batch_idx)
      return true
    end
    local opt, strategy = trainer.optimizers[1], trainer.strategy
    local n = trainer.accumulate_grad_batches
    local stepping = batch_idx % n == 0 or batch_idx == trainer.num_training_batches
    if (batch_idx - 1) % n == 0 then strategy:optimizer_zero_grad(opt, batch_idx) end
    -- the hooks get the loss as training_step gave it (a recorded tensor, as Lightning's on_before_backward)
    local given = given_loss(outputs)
    strategy:backward(L.is_tensor(given) and given or loss, opt, batch, outputs, stepping)
    if trainer.detect_anomaly then optimization.check_gradients(trainer, module, batch_idx) end
    if stepping then
      -- from the step to the mark the weights are ahead of the good state: no checkpoint of it then
      trainer._stepping = true
      strategy:optimizer_step(opt, batch_idx, n)
      trainer.global_step = trainer.global_step + 1
      optimization.step_schedulers(trainer, "step", false)
      if batch_idx == trainer.num_training_batches then optimization.step_schedulers(trainer, "epoch", false) end
      optimization.step_schedulers(trainer, "step", true)
      loop_state.mark(trainer, batch_idx)
      trainer._stepping = false
      stepped = true
    end
  end

  hooks.call(trainer, "on_train_batch_end", outputs, batch, batch_idx)
  local step_metrics = trainer._results:step_end(trainer)
  if stepped and (trainer.global_step % trainer.log_every_n_steps == 0 or trainer.should_stop) then
    trainer:_log_metrics(step_metrics, trainer.global_step - 1)
  end
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

local function has_plateau_scheduler(trainer)
  for _, config in ipairs(trainer.lr_scheduler_configs) do
    if config.reduce_on_plateau then return true end
  end
  return false
end

-- A checkpoint saved in an epoch's end before its plateau scheduler step: that step, on the metrics
-- the epoch ended with, as the uninterrupted run took it.
local function take_pending_plateau_step(trainer, position)
  if not position.plateau_pending then return end
  trainer.callback_metrics = {}
  for name, v in pairs(position.callback_metrics or {}) do trainer.callback_metrics[name] = v end
  trainer.current_epoch = position.epoch - 1
  optimization.step_schedulers(trainer, "epoch", true)
  trainer.current_epoch = position.epoch
  trainer.callback_metrics = {}
end

-- A validation inside the epoch, after batch batches_done (val_check_interval).
local function validate_inside_epoch(trainer, batches_done)
  trainer._validating_after = batches_done
  eval_loop.run(trainer, "validation", {during_fit = true})
  trainer._validating_after = nil
  loop_state.validated(trainer, batches_done)
end

-- A loader with set_epoch (a distributed sampler's) draws each epoch's order from the epoch number.
local function set_loader_epoch(trainer)
  local loader = trainer.train_dataloader
  if type(loader.set_epoch) == "function" then loader:set_epoch(trainer.current_epoch) end
end

local function run_epoch(trainer)
  local module = trainer.lightning_module
  local resume = trainer._resume_position
  trainer._resume_position = nil
  if resume and resume.epoch_start_rng then L.set_rng_state(resume.epoch_start_rng) end
  local epoch_start_rng = L.get_rng_state()
  local skip = resume and resume.batches_done or 0
  trainer._results = Results.new("train")
  if resume and resume.results then trainer._results:load_state_dict(resume.results) end
  trainer._epoch_finished = false
  trainer._min_notice_given = false
  set_loader_epoch(trainer)
  loop_state.start_epoch(trainer, skip, epoch_start_rng)
  if resume and resume.rng then trainer._good_state.rng, trainer._good_state.validated = resume.rng, resume.validated end

  module:train()
  hooks.call(trainer, "on_train_epoch_start")
  local n = trainer.num_training_batches
  local last_done = skip
  local validated_after = resume and resume.validated and skip or nil
  -- Resuming inside the epoch: the loader's order comes from the epoch's generator state, the done
  -- batches are skipped, then the generator goes back to where the checkpoint left it, and a
  -- validation due after the last done batch that had not finished runs first.
  local function continue_from_checkpoint()
    if not resume then return end
    if resume.rng then L.set_rng_state(resume.rng) end
    local pending_validation = not resume.validated and skip < n and validation_due(trainer, skip, false)
    resume = nil
    if pending_validation then
      validate_inside_epoch(trainer, skip)
      validated_after = skip
    end
  end
  interrupt.check(trainer)
  if n > skip then
    for batch_idx, batch in trainer.train_dataloader:iter() do
      if batch_idx > skip then
        continue_from_checkpoint()
        trainer.is_last_batch = batch_idx == n
        local skip_rest = run_batch(trainer, batch, batch_idx)
        monitors.after_first_batch(trainer)   -- (once: what training logs is known now)
        last_done = batch_idx
        interrupt.check(trainer)
        if not skip_rest and batch_idx < n and validation_due(trainer, batch_idx, false) then  -- (val_check_interval)
          validate_inside_epoch(trainer, batch_idx)
          validated_after = batch_idx
        end
        if skip_rest or max_steps_reached(trainer) or stop_requested(trainer) then break end
      end
      if batch_idx >= n then break end  -- (limit_train_batches: leave without loading another batch)
    end
  end
  continue_from_checkpoint()

  -- from here on a checkpoint (ModelCheckpoint saves after validation or at on_train_epoch_end)
  -- resumes at the next epoch, after the plateau schedulers' step still to come
  trainer._epoch_finished = true
  trainer._plateau_pending = has_plateau_scheduler(trainer)
  if validated_after ~= last_done and validation_due(trainer, last_done, true) then
    eval_loop.run(trainer, "validation", {during_fit = true})
    loop_state.validated(trainer, last_done)
  end
  trainer._results:epoch_end_reached(trainer)
  hooks.call_callbacks(trainer, "other", "on_train_epoch_end")
  hooks.call_module(trainer, "on_train_epoch_end")
  hooks.call_callbacks(trainer, "monitoring", "on_train_epoch_end")
  trainer:_log_metrics(trainer._results:epoch_metrics(), trainer.global_step)
  optimization.step_schedulers(trainer, "epoch", true)
  trainer._plateau_pending = false
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
  monitors.after_sanity_check(trainer)   -- (what validation logs is known now)
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

-- A checkpoint at or past the run's limit: say so and stop before anything is created (no output
-- folder, no logger version, no hooks after setup).
local function nothing_left(trainer, ckpt, path)
  local position = loop_state.position(ckpt.loops, path)
  local limit = limit_reached(trainer, position.epoch, ckpt.global_step)
  if not limit then return false end
  trainer.current_epoch, trainer.global_step = position.epoch, ckpt.global_step
  trainer.nothing_to_train = true
  trainer:print(("Trainer:fit: nothing left to train: %s ends at %s and %s is reached (raise it to train on)")
    :format(path, loop_state.describe(position, ckpt.global_step), limit))
  hooks.call(trainer, "teardown", "fit")
  data.teardown(trainer, "fit")
  trainer.strategy:teardown()
  return true
end

--- The body of trainer:fit; resolve_ckpt() gives the checkpoint to resume from (or nil).
local function fit(trainer, resolve_ckpt)
  local module = trainer.lightning_module
  trainer.nothing_to_train = false
  trainer:_add_module_callbacks()
  hooks.call_module(trainer, "prepare_data")
  data.setup(trainer, "fit")
  hooks.call(trainer, "setup", "fit")
  trainer.log_dir = trainer:_resolve_log_dir()
  local ckpt_path = resolve_ckpt()
  local ckpt = ckpt_path and trainer.strategy:load_checkpoint(ckpt_path)
  trainer.ckpt_path = ckpt_path
  if ckpt then
    checkpoint.restore_model(trainer, ckpt, ckpt_path)
    if nothing_left(trainer, ckpt, ckpt_path) then return end
  end
  trainer:_check_output_folders(module)
  hooks.call_module(trainer, "configure_model")
  -- on the accelerator's device before configure_optimizers, as in Lightning (strategy:setup checks again)
  trainer.strategy:model_to_device()

  trainer.train_dataloader = data.loader(trainer, "train")
  if not trainer.train_dataloader then
    error("no training data: pass a data module or a loader to fit, or define train_dataloader in the module", 0)
  end
  if #trainer.train_dataloader == 0 then
    error("the training data is empty (its loader has no batches): check the data set and the batch size " ..
      "(with drop_last, a data set smaller than one batch gives none)", 0)
  end
  trainer.num_training_batches = data.num_batches(trainer.train_dataloader, trainer.limit_train_batches,
    "limit_train_batches")
  trainer.estimated_stepping_batches = estimated_stepping_batches(trainer)
  trainer._val_check_batch = val_check_batch(trainer)
  trainer.optimizers, trainer.lr_scheduler_configs = optimization.parse(hooks.call_module(trainer, "configure_optimizers"))
  if ckpt then
    local position = checkpoint.restore_training_state(trainer, ckpt, ckpt_path)
    take_pending_plateau_step(trainer, position)
    trainer:print(("Restored %s: continuing at %s"):format(ckpt_path, loop_state.describe(position, trainer.global_step)))
  end
  trainer.strategy:setup(trainer)
  for _, lg in ipairs(trainer.is_global_zero and trainer.loggers or {}) do
    if type(lg.log_hyperparams) == "function" and module.hparams and next(module.hparams) then
      lg:log_hyperparams(module.hparams)
    end
  end

  hooks.call(trainer, "on_fit_start")
  eval_loop.prepare(trainer, "validation", "val")
  agreement.fit(trainer)
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

--- Trainer:fit. Autograd records training_step only: the hooks, callbacks and optimizer steps around it run
-- under no_grad (where Lightning's users write torch.no_grad()), so that a callback's in-place update of
-- a copy of the weights, or a statistic of a parameter, is plain tensor work.
function fit_loop.fit(trainer, resolve_ckpt)
  return grad_mode.with_grad_enabled(false, fit, trainer, resolve_ckpt)
end

return fit_loop
