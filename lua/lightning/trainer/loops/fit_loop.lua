--- The fit loop (Lightning's _FitLoop): the epochs of trainer:fit, each run by its epoch loop
-- (trainer.fit_loop.epoch_loop, loops/training_epoch_loop.lua), then the epoch's end: on_train_epoch_end
-- (monitoring callbacks after the module), the epoch's metrics to the loggers, the epoch-interval
-- schedulers. It owns the epoch progress (its completed count is trainer.current_epoch), the stop
-- conditions (max_epochs, max_steps, should_stop with min_epochs / min_steps) and the checkpoint's
-- `loops` section: state_dict() / load_state_dict() (its format: loops/position.lua). A checkpoint saved
-- inside an epoch is the epoch loop's last good state; one saved once the epoch's batches are done
-- (validation at its end, on_train_epoch_end) resumes at the next epoch.
local class = require "lightning.class"
local hooks = require "lightning.trainer.hooks"
local optimization = require "lightning.trainer.optimization"
local progress = require "lightning.trainer.loops.progress"
local position = require "lightning.trainer.loops.position"
local TrainingEpochLoop = require "lightning.trainer.loops.training_epoch_loop"

local FitLoop = class("FitLoop")

--- val_loop: the validation loop that runs inside the epochs (trainer.validate_loop).
function FitLoop:__init(trainer, val_loop)
  self.trainer = trainer
  self.epoch_progress = progress.Progress()
  self.epoch_loop = TrainingEpochLoop(trainer, self, val_loop)
  self.in_epoch = false          -- (an epoch runs: its batches or its end)
  self.epoch_finished = false    -- (the epoch's batches are done and its end is running)
  self.plateau_pending = false   -- (in the epoch's end, before its ReduceLROnPlateau step)
  self.min_notice_given = false
end

--- A new trainer run: nothing in an epoch, no good state, nothing to resume.
function FitLoop:reset()
  self.in_epoch, self.epoch_finished, self.plateau_pending = false, false, false
  self.epoch_loop:reset()
end

function FitLoop:can_stop_early()
  local trainer = self.trainer
  local met_epochs = trainer.min_epochs == nil or trainer.current_epoch >= trainer.min_epochs
  local met_steps = trainer.min_steps == nil or trainer.global_step >= trainer.min_steps
  return met_epochs and met_steps
end

function FitLoop:max_steps_reached()
  local trainer = self.trainer
  return trainer.max_steps ~= -1 and trainer.global_step >= trainer.max_steps
end

--- Whether training stops now: it diverged, or should_stop once min_epochs / min_steps are met.
function FitLoop:stop_requested()
  local trainer = self.trainer
  if trainer.diverged then return true end
  if not trainer.should_stop then return false end
  if self:can_stop_early() then return true end
  if not self.min_notice_given then
    trainer:print(("Trainer was signaled to stop but min_epochs = %s / min_steps = %s are not reached yet; " ..
      "training continues"):format(tostring(trainer.min_epochs), tostring(trainer.min_steps)))
    self.min_notice_given = true
  end
  return false
end

--- The limit that leaves nothing to train at this epoch and step ("max_epochs = 3"), or nil.
function FitLoop:limit_reached(epoch, global_step)
  local trainer = self.trainer
  if trainer.max_steps ~= -1 and global_step >= trainer.max_steps then return ("max_steps = %d"):format(trainer.max_steps) end
  if trainer.max_epochs ~= -1 and epoch >= trainer.max_epochs then return ("max_epochs = %d"):format(trainer.max_epochs) end
  return nil
end

function FitLoop:done()
  local trainer = self.trainer
  return self:limit_reached(trainer.current_epoch, trainer.global_step) ~= nil or self:stop_requested()
end

local function has_plateau_scheduler(trainer)
  for _, config in ipairs(trainer.lr_scheduler_configs) do
    if config.reduce_on_plateau then return true end
  end
  return false
end

--- One epoch: its batches (the epoch loop), then its end.
function FitLoop:advance()
  local trainer = self.trainer
  local ep = self.epoch_progress
  ep:increment_ready()
  self.in_epoch, self.epoch_finished = true, false
  self.min_notice_given = false
  ep:increment_started()
  self.epoch_loop:run()
  ep:increment_processed()

  -- from here on a checkpoint (ModelCheckpoint saves after validation or at on_train_epoch_end)
  -- resumes at the next epoch, after the plateau schedulers' step still to come
  self.epoch_finished = true
  self.plateau_pending = has_plateau_scheduler(trainer)
  self.epoch_loop:on_run_end()
  hooks.call_callbacks(trainer, "other", "on_train_epoch_end")
  hooks.call_module(trainer, "on_train_epoch_end")
  hooks.call_callbacks(trainer, "monitoring", "on_train_epoch_end")
  trainer:_log_metrics(self.epoch_loop.results:epoch_metrics(), trainer.global_step)
  optimization.step_schedulers(trainer, "epoch", true)
  self.plateau_pending = false
  trainer.current_epoch = trainer.current_epoch + 1
  ep:increment_completed()
  self.in_epoch, self.epoch_finished = false, false
end

--- on_train_start, the epochs until done(), on_train_end.
function FitLoop:run()
  local trainer = self.trainer
  trainer.training = true
  hooks.call(trainer, "on_train_start")
  while not self:done() do self:advance() end
  hooks.call(trainer, "on_train_end")
  trainer.training = false
end

--- The good state a checkpoint saved now goes back to, or nil (then it is of the state now: between
-- epochs, such as trainer:save_checkpoint after fit, or in an epoch's end). after_fault: the checkpoint
-- of a failure or an interruption, which is always the good state once there is one (also in the
-- epoch's end, whose hooks, logging and plateau scheduler step the resumed run then does again).
function FitLoop:saved_good_state(after_fault)
  local good = self.epoch_loop.good_state
  if not good.record then return nil end
  if not after_fault and (self.epoch_finished or not self.in_epoch) then return nil end
  return good
end

--- The checkpoint's loops section (see saved_good_state for after_fault).
function FitLoop:state_dict(after_fault)
  local trainer = self.trainer
  if not self:saved_good_state(after_fault) then
    local loops = {epoch = trainer.current_epoch, epoch_finished = self.epoch_finished == true}
    if self.epoch_finished and self.plateau_pending then
      -- saved before the epoch's ReduceLROnPlateau step: the resumed run takes it, on these metrics
      loops.plateau_pending, loops.callback_metrics = true, {}
      for name, v in pairs(trainer.callback_metrics) do
        if type(v) == "number" then loops.callback_metrics[name] = v end
      end
    end
    return loops
  end
  local loops = self.epoch_loop:state_dict()
  loops.epoch_finished = false
  return loops
end

--- Takes a checkpoint's loops section (read from path; fields of the wrong type are errors naming
-- both): the epoch to run is trainer.current_epoch, and a position inside it goes to the epoch loop.
-- Returns the position (loops/position.lua).
function FitLoop:load_state_dict(loops, path)
  local where = position.of(loops, path)
  self.trainer.current_epoch = where.epoch
  self.epoch_progress:set_completed(where.epoch)
  self.epoch_loop:load_state_dict(loops)
  return where
end

return FitLoop
