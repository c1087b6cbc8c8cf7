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
-- A metric object for self:log: m:view("accuracy") (also "precision", "recall", "f1", "loss") is logged
-- per epoch by its compute(); state_dict() / merge_state() / load_state_dict() carry the state through
-- a checkpoint saved inside an epoch.
local EpochMetrics = {}
EpochMetrics.__index = EpochMetrics

function metrics.EpochMetrics(num_classes)
  return setmetatable({confusion = metrics.ConfusionMatrix(num_classes), loss_sum = 0, samples = 0}, EpochMetrics)
end

--- Adds a batch: logits (B, K), target (B) and the batch's mean loss (optional).
function EpochMetrics:update(logits, target, loss)
  self.confusion:update(logits, target)
  if loss then
    if core.is_tensor(loss) then loss = loss:item() end   -- a recorded loss (a one-element tensor)
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

--- {counts = confusion counts by target then prediction, loss_sum, samples}: plain numbers.
function EpochMetrics:state_dict()
  return {counts = self.confusion:counts(), loss_sum = self.loss_sum, samples = self.samples}
end

function EpochMetrics:load_state_dict(state)
  self.confusion:set_counts(state.counts)
  self.loss_sum, self.samples = state.loss_sum, state.samples
  return self
end

--- Adds a saved state to this one (the batches before a checkpoint and those since).
function EpochMetrics:merge_state(state)
  local counts = self.confusion:counts()
  if type(state.counts) ~= "table" or #state.counts ~= #counts then
    error(("EpochMetrics:merge_state: expected counts for %d classes"):format(#counts), 2)
  end
  for i, row in ipairs(counts) do
    local saved = state.counts[i]
    if type(saved) ~= "table" or #saved ~= #row then
      error(("EpochMetrics:merge_state: row %d must have %d counts"):format(i, #row), 2)
    end
    for j = 1, #row do row[j] = row[j] + saved[j] end
  end
  self.confusion:set_counts(counts)
  self.loss_sum, self.samples = self.loss_sum + state.loss_sum, self.samples + state.samples
  return self
end

--- A metric object for one score of this state (self:log(name, m:view("accuracy"))): compute() is
-- the score over the batches so far; its state_owner is this object.
function EpochMetrics:view(score)
  self._views = self._views or {}
  local view = self._views[score]
  if not view then
    local owner = self
    view = {state_owner = owner, compute = function() return owner:compute()[score] end}
    self._views[score] = view
  end
  return view
end

--- Scores of one batch without keeping state.
function metrics.classification_scores(logits, target, average)
  local cm = metrics.ConfusionMatrix(logits:size(logits:dim()))
  cm:update(logits, target)
  return cm:compute(average)
end

return metrics
