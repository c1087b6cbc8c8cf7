--- LearningRateMonitor: logs each optimizer's learning rate (with or without a scheduler), as
-- PyTorch Lightning's. Keys: "lr-<Optimizer>" ("lr-Adam"), "/pg<i>" per parameter group when there
-- are several, or the scheduler configuration's name; with log_momentum also "<key>-momentum".
--   L.callbacks.LearningRateMonitor{logging_interval = "epoch" | "step" | nil, log_momentum = false}
-- nil logs each scheduler at its own interval (optimizers without one at epoch starts).
local class = require "lightning.class"
local Callback = require "lightning.callbacks.callback"
local learning_rates = require "lightning.optim.learning_rates"
local options = require "lightning.util.options"

local LearningRateMonitor = class("LearningRateMonitor", Callback)

function LearningRateMonitor:__init(opts)
  local o = options.check("LearningRateMonitor", opts, {
    -- nil: each scheduler's own interval
    logging_interval = {kind = "string", one_of = {"step", "epoch"}, expected = '"step", "epoch" or nil'},
    log_momentum = {kind = "boolean", default = false},
    log_weight_decay = {kind = "boolean", default = false},
  })
  for k, v in pairs(o) do self[k] = v end
  self.lrs = {}   -- key -> list of logged values
end

function LearningRateMonitor:on_train_start(trainer, module)
  -- (fast_dev_run turns logging off on purpose: Lightning keeps a dummy logger there)
  if #trainer.loggers == 0 and not trainer.fast_dev_run then
    error("LearningRateMonitor: the Trainer has no logger to write the learning rate to", 0)
  end
end

-- The interval each optimizer's rate belongs to: its scheduler's, "epoch" without one.
local function interval_of(trainer, i)
  local config = trainer.lr_scheduler_configs[i]
  return config and config.interval or "epoch", config
end

function LearningRateMonitor:_stats(trainer, wanted)
  local stats = {}
  local seen = {}
  for i, opt in ipairs(trainer.optimizers) do
    local interval, config = interval_of(trainer, i)
    if wanted == "any" or wanted == interval then
      local base = config and config.name or ("lr-" .. class.name_of(opt))
      if seen[base] then base = ("%s-%d"):format(base, seen[base]) end
      seen[base] = (seen[base] or 0) + 1
      local rates = learning_rates(opt)
      local groups = type(opt.param_groups) == "table" and opt.param_groups or {}
      for g, lr in ipairs(rates) do
        local key = #rates > 1 and ("%s/pg%d"):format(base, g) or base
        stats[key] = lr
        local group = groups[g] or {}
        if self.log_momentum then
          local momentum = group.momentum or (group.betas and group.betas[1])
          if momentum then stats[key .. "-momentum"] = momentum end
        end
        if self.log_weight_decay and group.weight_decay then stats[key .. "-weight_decay"] = group.weight_decay end
      end
    end
  end
  return stats
end

function LearningRateMonitor:_log(trainer, stats, step)
  if not next(stats) then return end
  for key, value in pairs(stats) do
    self.lrs[key] = self.lrs[key] or {}
    table.insert(self.lrs[key], value)
  end
  if not trainer.is_global_zero then return end
  for _, lg in ipairs(trainer.loggers) do lg:log_metrics(stats, step) end
end

function LearningRateMonitor:on_train_batch_start(trainer, module, batch, batch_idx)
  if self.logging_interval == "epoch" then return end
  if (trainer.global_step + 1) % trainer.log_every_n_steps ~= 0 then return end
  self:_log(trainer, self:_stats(trainer, self.logging_interval == "step" and "any" or "step"), trainer.global_step)
end

function LearningRateMonitor:on_train_epoch_start(trainer, module)
  if self.logging_interval == "step" then return end
  self:_log(trainer, self:_stats(trainer, self.logging_interval == "epoch" and "any" or "epoch"), trainer.global_step)
end

return LearningRateMonitor
