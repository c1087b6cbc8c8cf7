--- trainer:fit: setup, the sanity check and the fit loop (trainer.fit_loop, lightning/trainer/loops/),
-- in PyTorch Lightning's order:
--   setup -> model_to_device -> configure_optimizers -> strategy:setup -> on_fit_start -> sanity check ->
--   trainer.fit_loop:run() [on_train_start, the epochs, on_train_end] -> on_fit_end -> teardown ->
--   strategy:teardown
-- Resuming: the checkpoint's weights and callback states first (before setup's folders are made), then
-- the optimizers', schedulers' and loops' states (trainer.fit_loop:load_state_dict).
local grad_mode = require "lightning.autograd.mode"
local L = require "lightning"
local hooks = require "lightning.trainer.hooks"
local data = require "lightning.trainer.data"
local optimization = require "lightning.trainer.optimization"
local checkpoint = require "lightning.trainer.checkpoint"
local monitors = require "lightning.trainer.monitors"
local agreement = require "lightning.trainer.agreement"
local position = require "lightning.trainer.loops.position"
local graphed_step = require "lightning.trainer.graphed_step"

local fit = {}

-- A checkpoint saved in an epoch's end before its plateau scheduler step: that step, on the metrics
-- the epoch ended with, as the uninterrupted run took it.
local function take_pending_plateau_step(trainer, where)
  if not where.plateau_pending then return end
  trainer.callback_metrics = {}
  for name, v in pairs(where.callback_metrics or {}) do trainer.callback_metrics[name] = v end
  trainer.current_epoch = where.epoch - 1
  optimization.step_schedulers(trainer, "epoch", true)
  trainer.current_epoch = where.epoch
  trainer.callback_metrics = {}
end

local function run_sanity_check(trainer)
  local steps = trainer.num_sanity_val_steps
  local val_loop = trainer.validate_loop
  if not val_loop.enabled or steps == 0 then return end
  -- The sanity check leaves the generator as it found it (a loader draws from it at each iter()), so
  -- that a resumed run, which checks again, draws the same numbers as the uninterrupted one.
  local rng = L.get_rng_state()
  trainer.sanity_checking = true
  hooks.call_callbacks(trainer, nil, "on_sanity_check_start")
  val_loop:run({during_fit = true, max_batches = steps == -1 and val_loop.num_batches
    or math.min(steps, val_loop.num_batches)})
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
  local where = position.of(ckpt.loops, path)
  local limit = trainer.fit_loop:limit_reached(where.epoch, ckpt.global_step)
  if not limit then return false end
  trainer.fit_loop:load_state_dict(ckpt.loops, path)
  trainer.global_step = ckpt.global_step
  trainer.nothing_to_train = true
  trainer:print(("Trainer:fit: nothing left to train: %s ends at %s and %s is reached (raise it to train on)")
    :format(path, position.describe(where, ckpt.global_step), limit))
  hooks.call(trainer, "teardown", "fit")
  data.teardown(trainer, "fit")
  trainer.strategy:teardown()
  return true
end

--- The body of trainer:fit; resolve_ckpt() gives the checkpoint to resume from (or nil).
local function run_fit(trainer, resolve_ckpt)
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
  trainer.fit_loop.epoch_loop:setup_val_check()
  trainer.optimizers, trainer.lr_scheduler_configs = optimization.parse(hooks.call_module(trainer, "configure_optimizers"))
  if ckpt then
    local where = checkpoint.restore_training_state(trainer, ckpt, ckpt_path)
    take_pending_plateau_step(trainer, where)
    trainer:print(("Restored %s: continuing at %s"):format(ckpt_path, position.describe(where, trainer.global_step)))
  end
  trainer.strategy:setup(trainer)
  trainer.cuda_graph_stats = nil
  trainer._graphed_step = graphed_step.for_fit(trainer)
  for _, lg in ipairs(trainer.is_global_zero and trainer.loggers or {}) do
    if type(lg.log_hyperparams) == "function" and module.hparams and next(module.hparams) then
      lg:log_hyperparams(module.hparams)
    end
  end

  hooks.call(trainer, "on_fit_start")
  trainer.validate_loop:setup_data()
  agreement.fit(trainer)
  run_sanity_check(trainer)
  trainer.fit_loop:run()
  graphed_step.release(trainer)
  hooks.call(trainer, "on_fit_end")
  hooks.call(trainer, "teardown", "fit")
  data.teardown(trainer, "fit")
  trainer.strategy:teardown()
  trainer:_finalize_loggers("success")
end

--- Trainer:fit. Autograd records training_step only: the hooks, callbacks and optimizer steps around it run
-- under no_grad (where Lightning's users write torch.no_grad()), so that a callback's in-place update of
-- a copy of the weights, or a statistic of a parameter, is plain tensor work.
function fit.fit(trainer, resolve_ckpt)
  return grad_mode.with_grad_enabled(false, run_fit, trainer, resolve_ckpt)
end

return fit
