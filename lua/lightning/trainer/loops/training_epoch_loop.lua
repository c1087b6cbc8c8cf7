--- The training epoch loop (Lightning's _TrainingEpochLoop): one epoch's batches, the validations inside
-- it (val_check_interval; trainer.validate_loop is its val_loop) and the one at its end. It owns the
-- epoch's batch progress, the training results (what self:log collects in the epoch), the last good
-- state a checkpoint inside the epoch goes back to (loops/good_state.lua), and the position a
-- checkpoint gave it to resume from (load_state_dict): mid-epoch resume is this loop restoring its
-- own state.
-- Per batch: the batch transfer hooks, on_train_batch_start, training_step, on_before_zero_grad +
-- optimizer_zero_grad (first batch of an accumulation group), on_before_backward, backward_step,
-- on_after_backward, on_before_optimizer_step, configure_gradient_clipping, optimizer_step (last batch
-- of a group), on_train_batch_end. The zero_grad, backward and optimizer step (with the hooks around
-- them) are the strategy's (trainer.strategy: lightning/strategies/strategy.lua). After each optimizer
-- step the loop marks its good state; after each batch it stops when Ctrl-C or SIGTERM came
-- (lightning.trainer.interrupt). A training loss that is NaN or infinite stops training
-- (trainer.diverged; with detect_anomaly it is an error).
local grad_mode = require "lightning.autograd.mode"
local L = require "lightning"
local class = require "lightning.class"
local hooks = require "lightning.trainer.hooks"
local data = require "lightning.trainer.data"
local Results = require "lightning.trainer.results"
local lazy = require "lightning.trainer.lazy_values"
local optimization = require "lightning.trainer.optimization"
local monitors = require "lightning.trainer.monitors"
local interrupt = require "lightning.trainer.interrupt"
local generators = require "lightning.trainer.generators"
local progress = require "lightning.trainer.loops.progress"
local GoodState = require "lightning.trainer.loops.good_state"

local TrainingEpochLoop = class("TrainingEpochLoop")

--- fit_loop: the loop that runs the epochs (its stop conditions end an epoch early too).
function TrainingEpochLoop:__init(trainer, fit_loop, val_loop)
  self.trainer, self.fit_loop, self.val_loop = trainer, fit_loop, val_loop
  self.batch_progress = progress.BatchProgress()
  self.good_state = GoodState()
  self.results = nil            -- (the epoch's training Results, from its start)
  self.batch_idx = nil          -- (the last batch run)
  self.val_check_batch = 1      -- (Lightning's val_check_batch: validation after every this many batches)
  self.stepping = false         -- (inside the optimizer step: the weights are ahead of the good state)
  self.validating_after = nil   -- (the batch a validation inside the epoch follows, while it runs)
  self.validated_after = nil    -- (the batch the epoch's last validation followed)
  self.resume = nil             -- (where a checkpoint resumes inside the next epoch)
end

--- A new trainer run: no good state, nothing to resume.
function TrainingEpochLoop:reset()
  self.good_state:reset()
  self.stepping = false
  self.resume = nil
end

--- Lightning's val_check_batch, from val_check_interval: a float is a fraction of the epoch's batches
-- (1.0, the default: at its end), an integer a number of batches.
function TrainingEpochLoop:setup_val_check()
  local trainer = self.trainer
  local v, n = trainer.val_check_interval, trainer.num_training_batches
  if v == nil or n == 0 then self.val_check_batch = math.max(n, 1) return end
  if math.type(v) == "integer" then
    if v > n then
      error(("val_check_interval = %d must be at most the number of training batches (%d)"):format(v, n), 0)
    end
    self.val_check_batch = v
    return
  end
  self.val_check_batch = math.max(1, math.floor(n * v))
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

-- Whether this step reads the loss to check it is finite. A loss on a GPU is read every
-- log_every_n_steps steps and at the epoch's last batch (every step with detect_anomaly): reading it
-- makes the host wait for the GPU. Every process of a data-parallel run checks at the same steps.
local function checks_loss(trainer, given, batch_idx)
  if not lazy.is_lazy(given) or trainer.detect_anomaly then return true end
  return (trainer.global_step + 1) % trainer.log_every_n_steps == 0 or batch_idx == trainer.num_training_batches
end

local function is_finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

-- One batch: the step, the backward pass and (at the end of an accumulation group) the optimizer step.
-- Returns true when the rest of the epoch is skipped: on_train_batch_start returned -1, or the loss
-- is not finite (then nothing is backpropagated or stepped; a CUDA graph's replay stepped already, as the
-- steps on a GPU between two checks of the loss did).
local function run_batch(self, batch, batch_idx)
  local trainer = self.trainer
  local module = trainer.lightning_module
  self.batch_idx = batch_idx
  batch = trainer.strategy:batch_to_device(batch, 0)
  trainer.last_batch_size = data.batch_size(batch)
  hooks.call_callbacks(trainer, nil, "on_train_batch_start", batch, batch_idx)
  if hooks.call_module(trainer, "on_train_batch_start", batch, batch_idx) == -1 then return true end
  self.batch_progress:increment_started()

  local stepped = false
  -- on a GPU the whole step may be a CUDA graph's replay (trainer/graphed_step.lua): training_step, the
  -- backward pass and the optimizer step have run when it returns
  local runner = trainer._graphed_step
  local outputs = runner and runner:step(batch, batch_idx)
  local replayed = outputs ~= nil
  -- the step is recorded for autograd; the rest of fit is not (see lightning.trainer.fit)
  if not replayed then
    outputs = grad_mode.with_grad_enabled(true, hooks.call_module, trainer, "training_step", batch, batch_idx)
  end
  if outputs ~= nil then
    local given = given_loss(outputs)
    if not (type(given) == "number" or L.is_tensor(given) and given:numel() == 1) then
      error(("training_step must return the loss (a number) or a table with a loss field, got %s")
        :format(type(outputs) == "table" and "a table without loss" or type(outputs)), 0)
    end
    if checks_loss(trainer, given, batch_idx) then
      local loss = loss_of(outputs)
      if trainer.detect_anomaly then optimization.check_loss(trainer, loss, batch_idx) end
      if trainer.strategy:reduce_boolean_decision(not is_finite(loss), false) then
        trainer:_signal_divergence("the training loss", loss, batch_idx)
        return true
      end
    end
    local opt, strategy = trainer.optimizers[1], trainer.strategy
    local n = trainer.accumulate_grad_batches
    local stepping = replayed or batch_idx % n == 0 or batch_idx == trainer.num_training_batches
    if not replayed then
      if (batch_idx - 1) % n == 0 then strategy:optimizer_zero_grad(opt, batch_idx) end
      -- the hooks get the loss as training_step gave it (a recorded tensor, as Lightning's on_before_backward)
      strategy:backward(given, opt, batch, outputs, stepping)
      if trainer.detect_anomaly then optimization.check_gradients(trainer, module, batch_idx) end
    end
    if stepping then
      -- from the step to the mark the weights are ahead of the good state: no checkpoint of it then
      self.stepping = true
      if not replayed then strategy:optimizer_step(opt, batch_idx, n) end
      trainer.global_step = trainer.global_step + 1
      optimization.step_schedulers(trainer, "step", false)
      if batch_idx == trainer.num_training_batches then optimization.step_schedulers(trainer, "epoch", false) end
      optimization.step_schedulers(trainer, "step", true)
      self.good_state:mark(self, batch_idx)
      self.stepping = false
      stepped = true
    end
  end
  self.batch_progress:increment_processed()

  hooks.call(trainer, "on_train_batch_end", outputs, batch, batch_idx)
  local step_metrics = self.results:step_end(trainer)
  if stepped and (trainer.global_step % trainer.log_every_n_steps == 0 or trainer.should_stop) then
    trainer:_log_metrics(step_metrics, trainer.global_step - 1)
  end
  return false
end

--- Whether to validate after batches_done training batches of this epoch: inside it, or at its end
-- (at_end; also when training stops early).
function TrainingEpochLoop:validation_due(batches_done, at_end)
  local trainer = self.trainer
  if not self.val_loop.enabled then return false end
  if (trainer.current_epoch + 1) % trainer.check_val_every_n_epoch ~= 0 then return false end
  local n = trainer.num_training_batches
  if at_end then
    if trainer.should_stop and self.fit_loop:can_stop_early() then return true end
    if batches_done < n then return false end
    if n == 0 then return true end
  end
  return batches_done > 0 and batches_done % self.val_check_batch == 0
end

-- A validation inside the epoch, after batch batches_done (val_check_interval).
local function validate_inside_epoch(self, batches_done)
  self.validating_after = batches_done
  self.val_loop:run({during_fit = true})
  self.validating_after = nil
  self.good_state:validated(batches_done, self.trainer)
  self.validated_after = batches_done
end

-- A loader with set_epoch (a distributed sampler's) draws each epoch's order from the epoch number.
local function set_loader_epoch(trainer)
  local loader = trainer.train_dataloader
  if type(loader.set_epoch) == "function" then loader:set_epoch(trainer.current_epoch) end
end

--- Runs the epoch's batches (from where a checkpoint left it, when load_state_dict gave one) and the
-- validations inside it, until they are done or training stops; on_train_epoch_start first.
function TrainingEpochLoop:run()
  local trainer = self.trainer
  local resume = self.resume
  self.resume = nil
  if resume and resume.epoch_start_rng then L.set_rng_state(resume.epoch_start_rng) end
  local epoch_start_rng = L.get_rng_state()
  local skip = resume and resume.batches_done or 0
  self.results = Results.new("train")
  trainer.active_loop = self
  if resume and resume.results then self.results:load_state_dict(resume.results) end
  local bp = self.batch_progress
  bp:reset_on_run()
  bp:set_completed(skip)
  set_loader_epoch(trainer)
  self.good_state:start_epoch(self, skip, epoch_start_rng)
  if resume and resume.rng then
    local good = self.good_state.record
    good.rng, good.device_rng, good.validated = resume.rng, resume.device_rng, resume.validated
  end

  trainer.lightning_module:train()
  hooks.call(trainer, "on_train_epoch_start")
  local n = trainer.num_training_batches
  self.validated_after = resume and resume.validated and skip or nil
  -- Resuming inside the epoch: the loader's order comes from the epoch's generator state, the done
  -- batches are skipped, then the generator goes back to where the checkpoint left it, and a
  -- validation due after the last done batch that had not finished runs first.
  local function continue_from_checkpoint()
    if not resume then return end
    if resume.rng then L.set_rng_state(resume.rng) end
    generators.restore_device(trainer, resume.device_rng)
    local pending_validation = not resume.validated and skip < n and self:validation_due(skip, false)
    resume = nil
    if pending_validation then validate_inside_epoch(self, skip) end
  end
  interrupt.check(trainer)
  if n > skip then
    local fit_loop = self.fit_loop
    for batch_idx, batch in trainer.train_dataloader:iter() do
      if batch_idx > skip then
        continue_from_checkpoint()
        trainer.is_last_batch = batch_idx == n
        bp.is_last_batch = trainer.is_last_batch
        bp:increment_ready()
        local skip_rest = run_batch(self, batch, batch_idx)
        monitors.after_first_batch(trainer)   -- (once: what training logs is known now)
        bp:increment_completed()
        interrupt.check(trainer)
        if not skip_rest and batch_idx < n and self:validation_due(batch_idx, false) then  -- (val_check_interval)
          validate_inside_epoch(self, batch_idx)
        end
        if skip_rest or fit_loop:max_steps_reached() or fit_loop:stop_requested() then break end
      end
      if batch_idx >= n then break end  -- (limit_train_batches: leave without loading another batch)
    end
  end
  continue_from_checkpoint()
end

--- The validation at the epoch's end, when one is due and the last batch's was not run inside it;
-- then the epoch values of the training results, before the epoch-end hooks.
function TrainingEpochLoop:on_run_end()
  local trainer = self.trainer
  local last_done = self.batch_progress.current.completed
  if self.validated_after ~= last_done and self:validation_due(last_done, true) then
    self.val_loop:run({during_fit = true})
    self.good_state:validated(last_done, self.trainer)
  end
  self.results:epoch_end_reached(trainer)
end

--- The state a checkpoint saved now inside the epoch holds: the last good state's position (the
-- loops section's epoch-loop fields), with the validation that follows it once that is done; {} before
-- the run's first epoch.
function TrainingEpochLoop:state_dict()
  local good = self.good_state.record
  if not good then return {} end
  local state = {epoch = good.epoch, batches_done = good.batches_done, epoch_start_rng = good.epoch_start_rng,
    rng = good.rng, device_rng = good.device_rng, validated = good.validated, results = Results.settled(good.results)}
  if self.val_loop.complete and self.validating_after == good.batches_done then
    -- saved by the validation that follows the good state, once it is done (ModelCheckpoint at
    -- on_validation_end): resuming goes on after it
    state.validated, state.rng, state.device_rng = true, L.get_rng_state(), generators.device_state(self.trainer)
  end
  return state
end

--- Takes a checkpoint's loops section (checked): inside an epoch (batches_done), the next run of this
-- loop continues after those batches.
function TrainingEpochLoop:load_state_dict(loops)
  if loops.batches_done == nil then self.resume = nil return end
  self.resume = {batches_done = loops.batches_done, epoch_start_rng = loops.epoch_start_rng, rng = loops.rng,
    device_rng = loops.device_rng, validated = loops.validated == true, results = loops.results}
end

return TrainingEpochLoop
