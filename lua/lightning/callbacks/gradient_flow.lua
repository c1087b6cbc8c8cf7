--- GradientFlowMonitor: watches the gradients as they flow back (the gradient-flow monitoring of the
-- original model), with lightning.nn.diagnostics' report. Every `every_n_steps` optimizer steps
-- (default: the Trainer's log_every_n_steps), after the backward pass, it logs each parameter's
-- gradient norm as "grad_norm/<parameter>" and their total as "grad_norm/total" to the loggers, and
-- prints a warning naming the parameters whose gradients vanish (norm < 1e-7) or explode (> 1e3 or
-- NaN). The biases of layers that a BatchNorm follows, whose gradients are zero by construction, are
-- not flagged; a note says so once. verbose = true prints the whole report (per parameter: gradient
-- norm, mean and max |grad|, weight norm, ratio, status) each time; report_each_epoch = true prints it
-- for the first batch of each epoch, as the original's gradient-flow monitoring does (train.lua --debug).
--   L.callbacks.GradientFlowMonitor{every_n_steps = 50, verbose = false, log = true, report_each_epoch = false}
local class = require "lightning.class"
local Callback = require "lightning.callbacks.callback"
local diagnostics = require "lightning.nn.diagnostics"
local output = require "lightning.util.output"
local options = require "lightning.util.options"

local GradientFlowMonitor = class("GradientFlowMonitor", Callback)

local RULE = ("="):rep(60)

function GradientFlowMonitor:__init(opts)
  local o = options.check("GradientFlowMonitor", opts, {
    every_n_steps = {kind = "integer", min = 1},
    log = {kind = "boolean", default = true},
    verbose = {kind = "boolean", default = false},
    report_each_epoch = {kind = "boolean", default = false},
  })
  for k, v in pairs(o) do self[k] = v end
  self.history = {}   -- {step = n, total = norm, rows = diagnostics.gradient_flow rows}
end

function GradientFlowMonitor:on_train_epoch_start(trainer)
  self._epoch_report_due = self.report_each_epoch
end

-- The whole report of the epoch's first batch, under a banner (from global rank 0).
function GradientFlowMonitor:_epoch_report(trainer, module)
  self._epoch_report_due = false
  if not trainer.is_global_zero then return end
  output.print("")
  output.print(RULE)
  output.print(("GRADIENT FLOW - Epoch %d, Batch 1"):format(trainer.current_epoch))
  output.print(RULE)
  diagnostics.print_gradient_flow(module, output.print)
  output.print(RULE)
  self._noted_before_batchnorm = true   -- (the table has the note about the biases before a BatchNorm)
end

function GradientFlowMonitor:on_after_backward(trainer, module)
  if self._epoch_report_due then self:_epoch_report(trainer, module) end
  local every = self.every_n_steps or trainer.log_every_n_steps
  -- once per optimizer step (several backward passes share one with accumulate_grad_batches)
  if trainer.global_step % every ~= 0 or self._last_step == trainer.global_step then return end
  self._last_step = trainer.global_step
  local rows = self.verbose and select(1, diagnostics.print_gradient_flow(module, output.print))
    or diagnostics.gradient_flow(module)
  local sum, flagged = 0, {vanishing = {}, exploding = {}, ["before batchnorm"] = {}}
  local metrics = {}
  for _, r in ipairs(rows) do
    if r.grad_norm then
      sum = sum + r.grad_norm ^ 2
      metrics["grad_norm/" .. r.name] = r.grad_norm
      local list = flagged[r.status]
      if list then list[#list + 1] = ("%s (%.3g)"):format(r.name, r.grad_norm) end
    end
  end
  local total = math.sqrt(sum)
  metrics["grad_norm/total"] = total
  self.history[#self.history + 1] = {step = trainer.global_step, total = total, rows = rows}
  if not trainer.is_global_zero then return end  -- logs and warnings come from global rank 0
  if self.log then
    for _, lg in ipairs(trainer.loggers) do lg:log_metrics(metrics, trainer.global_step) end
  end
  if not self.verbose then
    local before_bn = flagged["before batchnorm"]
    if #before_bn > 0 and not self._noted_before_batchnorm then
      self._noted_before_batchnorm = true
      output.print(("Gradient flow: %s: %s"):format(table.concat(before_bn, ", "), diagnostics.BEFORE_BATCHNORM_NOTE))
    end
    for _, status in ipairs {"vanishing", "exploding"} do
      if #flagged[status] > 0 then
        output.print(("Gradient flow at step %d: %s gradients in %s"):format(trainer.global_step, status,
          table.concat(flagged[status], ", ")))
      end
    end
  end
end

return GradientFlowMonitor
