--- What configure_optimizers returns, turned into optimizers and scheduler configurations, and the
-- per-step work around them: scheduler steps, learning rates, anomaly checks.
-- configure_optimizers may return (as in Lightning):
--   optimizer
--   {optimizer = opt, lr_scheduler = scheduler or {scheduler = s, interval = "epoch" | "step",
--    frequency = 1, monitor = "val_loss", strict = true, name = "..."}}
--   {opt}, {scheduler or config, ...}   (two lists, as two return values)
local class = require "lightning.class"
local metrics = require "lightning.metrics"
local hooks = require "lightning.trainer.hooks"
local monitors = require "lightning.trainer.monitors"
local learning_rates = require "lightning.optim.learning_rates"

local optimization = {}

local function is_optimizer(x)
  return type(x) == "table" and type(x.step) == "function" and type(x.zero_grad) == "function"
end

local function is_scheduler(x)
  return type(x) == "table" and type(x.step) == "function" and not is_optimizer(x)
end

--- True for ReduceLROnPlateau, which steps on a monitored metric.
function optimization.is_plateau(scheduler)
  return class.name_of(scheduler) == "ReduceLROnPlateau" or scheduler.is_plateau == true
end

local SCHEDULER_KEYS = {scheduler = true, interval = true, frequency = true, monitor = true, strict = true, name = true}

local function scheduler_config(x, where)
  local config
  if is_scheduler(x) then
    config = {scheduler = x}
  elseif type(x) == "table" and x.scheduler ~= nil then
    for k in pairs(x) do
      if not SCHEDULER_KEYS[k] then error(("%s: unknown key %s in the lr_scheduler configuration"):format(where, tostring(k)), 0) end
    end
    if not is_scheduler(x.scheduler) then
      error(("%s: lr_scheduler.scheduler must be a scheduler (a table with step()), got %s"):format(where, type(x.scheduler)), 0)
    end
    config = {scheduler = x.scheduler, interval = x.interval, frequency = x.frequency, monitor = x.monitor,
      strict = x.strict, name = x.name}
  else
    error(("%s: expected a scheduler or {scheduler = ..., interval = ...}, got %s"):format(where, type(x)), 0)
  end
  config.interval = config.interval or "epoch"
  if config.interval ~= "epoch" and config.interval ~= "step" then
    error(("%s: interval must be \"epoch\" or \"step\", got %s"):format(where, tostring(config.interval)), 0)
  end
  config.frequency = config.frequency or 1
  if math.type(config.frequency) ~= "integer" or config.frequency < 1 then
    error(("%s: frequency must be an integer >= 1, got %s"):format(where, tostring(config.frequency)), 0)
  end
  if config.strict == nil then config.strict = true end
  config.reduce_on_plateau = optimization.is_plateau(config.scheduler)
  if config.reduce_on_plateau and not config.monitor then
    error(("%s: a ReduceLROnPlateau scheduler needs a monitor: return {optimizer = opt, lr_scheduler = " ..
      "{scheduler = sched, monitor = \"val_loss\"}}"):format(where), 0)
  end
  return config
end

--- Optimizers (a list) and scheduler configurations (a list) from configure_optimizers' results.
function optimization.parse(a, b)
  local where = "configure_optimizers"
  local optimizers, configs = {}, {}
  if is_optimizer(a) then
    optimizers[1] = a
    if b ~= nil then configs[1] = scheduler_config(b, where) end
  elseif type(a) == "table" and a.optimizer ~= nil then
    if not is_optimizer(a.optimizer) then
      error(("%s: optimizer must be an optimizer (a table with step() and zero_grad()), got %s"):format(where, type(a.optimizer)), 0)
    end
    optimizers[1] = a.optimizer
    if a.lr_scheduler ~= nil then configs[1] = scheduler_config(a.lr_scheduler, where) end
  elseif type(a) == "table" and #a > 0 then
    for i, opt in ipairs(a) do
      if not is_optimizer(opt) then error(("%s: element %d is not an optimizer (%s)"):format(where, i, type(opt)), 0) end
      optimizers[i] = opt
    end
    if b ~= nil then
      if type(b) ~= "table" then error(("%s: the second result must be a list of schedulers, got %s"):format(where, type(b)), 0) end
      local list = (is_scheduler(b) or b.scheduler) and {b} or b
      for i, s in ipairs(list) do configs[i] = scheduler_config(s, where) end
    end
  else
    error(("%s must return an optimizer, {optimizer = ..., lr_scheduler = ...} or a list of optimizers; got %s")
      :format(where, a == nil and "nothing" or type(a)), 0)
  end
  if #optimizers > 1 then
    error(("%s: %d optimizers: automatic optimization uses one optimizer"):format(where, #optimizers), 0)
  end
  return optimizers, configs
end

--- The learning rates of an optimizer, one per parameter group (lightning.optim.learning_rates).
optimization.learning_rates = learning_rates

--- Steps the schedulers due at this point: interval "step" after each optimizer step, interval
-- "epoch" at the end of an epoch; plateau schedulers only when update_plateau is true (they step after
-- validation, on its metric).
function optimization.step_schedulers(trainer, interval, update_plateau)
  for _, config in ipairs(trainer.lr_scheduler_configs) do
    if config.interval == interval and config.reduce_on_plateau == update_plateau then
      local count = interval == "step" and trainer.global_step or trainer.current_epoch + 1
      if count % config.frequency == 0 then
        local metric
        if config.reduce_on_plateau then
          metric = trainer.callback_metrics[config.monitor]
          if metric == nil then
            if config.strict then
              local names = trainer.callback_metrics
              monitors.fail(trainer, monitors.plateau_message(config.monitor, names,
                monitors.suggestion(config.monitor, names)))
            end
            goto continue
          end
        end
        hooks.call_module(trainer, "lr_scheduler_step", config.scheduler, metric)
      end
    end
    ::continue::
  end
end

--- detect_anomaly: a NaN or infinite loss is an error naming the batch.
function optimization.check_loss(trainer, loss, batch_idx)
  if loss ~= loss or loss == math.huge or loss == -math.huge then
    error(("detect_anomaly: the loss is %s at epoch %d, batch %d (global step %d)")
      :format(tostring(loss), trainer.current_epoch, batch_idx, trainer.global_step), 0)
  end
end

--- detect_anomaly: a NaN or infinite gradient is an error naming the parameter and the batch.
function optimization.check_gradients(trainer, module, batch_idx)
  for name, p in module:named_parameters() do
    local grad = p.grad
    if grad then
      local bad = metrics.count_nonfinite(grad)
      if bad > 0 then
        error(("detect_anomaly: the gradient of %s has %d NaN or infinite value%s at epoch %d, batch %d (global step %d)")
          :format(name, bad, bad == 1 and "" or "s", trainer.current_epoch, batch_idx, trainer.global_step), 0)
      end
    end
  end
end

return optimization
