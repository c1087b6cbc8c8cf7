--- EarlyStopping: stops fit when a monitored metric stops improving, as PyTorch Lightning's.
--   L.callbacks.EarlyStopping{monitor = "val_loss", mode = "min", patience = 10, min_delta = 0}
-- patience counts checks without an improvement of more than min_delta (a check is the end of each
-- training epoch when validation runs every epoch, otherwise each validation). strict (default
-- true): a monitor that was never logged is an error that lists the metrics that exist.
-- check_finite stops on NaN/inf (a divergence: one line on the console and trainer.diverged);
-- stopping_threshold and divergence_threshold stop at once.
local class = require "lightning.class"
local Callback = require "lightning.callbacks.callback"
local output = require "lightning.util.output"
local options = require "lightning.util.options"
local monitors = require "lightning.callbacks.monitor_messages"

local EarlyStopping = class("EarlyStopping", Callback)
EarlyStopping.is_monitoring_callback = true

function EarlyStopping:__init(opts)
  local specs = {
    monitor = {kind = "string", expected = "the name of a logged metric"},
    min_delta = {kind = "number", default = 0.0},
    patience = {kind = "integer", min = 0, default = 3},
    verbose = {kind = "boolean", default = false},
    mode = {kind = "string", one_of = {"min", "max"}, default = "min"},
    strict = {kind = "boolean", default = true},
    check_finite = {kind = "boolean", default = true},
    stopping_threshold = {kind = "number"},
    divergence_threshold = {kind = "number"},
    check_on_train_epoch_end = {kind = "boolean"},
  }
  local o = options.check(self, opts, specs)
  -- monitor has no default: what to watch is the one thing EarlyStopping cannot guess
  if o.monitor == nil then options.check_value(self, "", "monitor", specs.monitor, nil) end
  for k, v in pairs(o) do self[k] = v end
  -- improvement means current - min_delta > best (max) or current + |min_delta| < best (min)
  self.min_delta = math.abs(o.min_delta) * (self.mode == "max" and 1 or -1)
  self.wait_count = 0
  self.stopped_epoch = 0
  self.best_score = self.mode == "min" and math.huge or -math.huge
end

function EarlyStopping:state_key()
  return ("EarlyStopping{monitor=%s,mode=%s}"):format(self.monitor, self.mode)
end

local function improves(mode, a, b)
  if mode == "min" then return a < b end
  return a > b
end

function EarlyStopping:setup(trainer, module, stage)
  self._check_on_train_epoch_end = self.check_on_train_epoch_end
  if self._check_on_train_epoch_end == nil then
    self._check_on_train_epoch_end = trainer.check_val_every_n_epoch == 1
      and (trainer.val_check_interval == nil or trainer.val_check_interval == 1.0)
  end
end

function EarlyStopping:_should_skip(trainer)
  return trainer.state.fn ~= "fit" or trainer.sanity_checking or trainer.fast_dev_run
end

function EarlyStopping:on_train_epoch_end(trainer, module)
  if self._check_on_train_epoch_end and not self:_should_skip(trainer) then self:_run_check(trainer) end
end

function EarlyStopping:on_validation_end(trainer, module)
  if not self._check_on_train_epoch_end and not self:_should_skip(trainer) then self:_run_check(trainer) end
end

-- The error for a monitor that is not among names (near: the closest of them, or nil).
function EarlyStopping:_missing_message(names, near)
  return ("EarlyStopping: conditioned on metric %q which is not available%s; the metrics that exist are: %s")
    :format(self.monitor, monitors.did_you_mean(near), monitors.names_text(names))
end

--- What the Trainer checks before training (lightning.trainer.monitors); strict = false only warns.
function EarlyStopping:monitor_entry()
  return {monitor = self.monitor, strict = self.strict, required = self.strict,
    message = function(names, near) return self:_missing_message(names, near) end}
end

function EarlyStopping:_run_check(trainer)
  local current = trainer.callback_metrics[self.monitor]
  if current == nil then
    local names = trainer.callback_metrics
    local message = self:_missing_message(names, monitors.suggestion(self.monitor, names))
    if self.strict then monitors.fail(trainer, message) end
    if not self._warned then output.print(message) self._warned = true end
    return
  end
  local should_stop, reason = self:_evaluate(current)
  if self.check_finite and not (current == current and current ~= math.huge and current ~= -math.huge) then
    trainer:_signal_divergence(self.monitor, current)   -- said on the console, verbose or not
  end
  if trainer.strategy then   -- one process says stop: all stop (they must run the same epochs)
    should_stop = trainer.strategy:reduce_boolean_decision(should_stop, false)
  end
  trainer.should_stop = trainer.should_stop or should_stop
  if should_stop then self.stopped_epoch = trainer.current_epoch end
  if reason and self.verbose then output.print(reason) end
end

function EarlyStopping:_evaluate(current)
  local finite = current == current and current ~= math.huge and current ~= -math.huge
  if self.check_finite and not finite then
    return true, ("Monitored metric %s = %s is not finite. Previous best value was %.3f. Signaling Trainer to stop.")
      :format(self.monitor, tostring(current), self.best_score)
  elseif self.stopping_threshold and improves(self.mode, current, self.stopping_threshold) then
    return true, ("Stopping threshold reached: %s = %s %s %s. Signaling Trainer to stop."):format(self.monitor,
      tostring(current), self.mode == "min" and "<" or ">", tostring(self.stopping_threshold))
  elseif self.divergence_threshold and improves(self.mode, -current, -self.divergence_threshold) then
    return true, ("Divergence threshold reached: %s = %s %s %s. Signaling Trainer to stop."):format(self.monitor,
      tostring(current), self.mode == "min" and ">" or "<", tostring(self.divergence_threshold))
  elseif improves(self.mode, current - self.min_delta, self.best_score) then
    local best = self.best_score
    local message
    if best == best and best ~= math.huge and best ~= -math.huge then
      message = ("Metric %s improved by %.3f >= min_delta = %s. New best score: %.3f"):format(self.monitor,
        math.abs(best - current), tostring(math.abs(self.min_delta)), current)
    else
      message = ("Metric %s improved. New best score: %.3f"):format(self.monitor, current)
    end
    self.best_score = current
    self.wait_count = 0
    return false, message
  end
  self.wait_count = self.wait_count + 1
  if self.wait_count >= self.patience then
    return true, ("Monitored metric %s did not improve in the last %d records. Best score: %.3f. Signaling Trainer to stop.")
      :format(self.monitor, self.wait_count, self.best_score)
  end
  return false, nil
end

function EarlyStopping:state_dict()
  return {wait_count = self.wait_count, stopped_epoch = self.stopped_epoch, best_score = self.best_score,
    patience = self.patience}
end

function EarlyStopping:load_state_dict(state)
  self.wait_count = state.wait_count or 0
  self.stopped_epoch = state.stopped_epoch or 0
  if state.best_score ~= nil then self.best_score = state.best_score end
  if state.patience ~= nil then self.patience = state.patience end
end

return EarlyStopping
