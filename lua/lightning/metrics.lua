--- lightning.metrics: classification metrics from a confusion matrix kept in C.
--   local cm = metrics.ConfusionMatrix(10)
--   cm:update(logits, target)   -- logits (B, K) or predicted classes (B); targets (B), classes 1..K
--   cm:compute()                -- {accuracy, precision, recall, f1}, macro-averaged ("micro", "weighted")
--   cm:per_class(), cm:counts(), cm:set_counts(rows), cm:reset(), cm:total()
-- Accuracy is the fraction correct (torchmetrics' Accuracy(task="multiclass") default, average
-- "micro"); precision, recall and F1 average the classes that occur in the targets or the predictions.
local core = require "lightning.core"

local metrics = {}

metrics.ConfusionMatrix = core.metrics.ConfusionMatrix
metrics.count_nonfinite = core.metrics.count_nonfinite

--- The metrics of one stage over an epoch: a confusion matrix and the loss, averaged over samples.
local EpochMetrics = {}
EpochMetrics.__index = EpochMetrics

function metrics.EpochMetrics(num_classes)
  return setmetatable({confusion = metrics.ConfusionMatrix(num_classes), loss_sum = 0, samples = 0}, EpochMetrics)
end

--- Adds a batch: logits (B, K), target (B) and the batch's mean loss (optional).
function EpochMetrics:update(logits, target, loss)
  self.confusion:update(logits, target)
  if loss then
    local n = target:size(1)
    self.loss_sum = self.loss_sum + loss * n
    self.samples = self.samples + n
  end
  return self
end

--- {loss, accuracy, precision, recall, f1}; loss is nil when no loss was given.
function EpochMetrics:compute(average)
  local scores = self.confusion:compute(average)
  if self.samples > 0 then scores.loss = self.loss_sum / self.samples end
  return scores
end

function EpochMetrics:reset()
  self.confusion:reset()
  self.loss_sum, self.samples = 0, 0
  return self
end

--- Scores of one batch without keeping state.
function metrics.classification_scores(logits, target, average)
  local cm = metrics.ConfusionMatrix(logits:size(logits:dim()))
  cm:update(logits, target)
  return cm:compute(average)
end

return metrics
