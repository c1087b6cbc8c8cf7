--- lightning.metrics: classification metrics from a confusion matrix kept in C.
--   local cm = metrics.ConfusionMatrix(10)
--   cm:update(logits, target)   -- logits (B, K) or predicted classes (B); targets (B), classes 1..K
--   cm:compute()                -- {accuracy, precision, recall, f1}, macro-averaged ("micro", "weighted")
--   cm:per_class(), cm:counts(), cm:set_counts(rows), cm:reset(), cm:total()
-- Accuracy is the fraction correct (torchmetrics' Accuracy(task="multiclass") default, average
-- "micro"); precision, recall and F1 average the classes that occur in the targets or the predictions.
local core = require "lightning.core"
local cuda = require "lightning.cuda"

local metrics = {}

metrics.ConfusionMatrix = core.metrics.ConfusionMatrix
metrics.count_nonfinite = core.metrics.count_nonfinite

--- The metrics of one stage over an epoch: a confusion matrix and the loss, averaged over samples.
-- A metric object for self:log: m:view("accuracy") (also "precision", "recall", "f1", "loss") is logged
-- per epoch by its compute(); state_dict() / merge_state() / load_state_dict() carry the state through
-- a checkpoint saved inside an epoch. On a GPU nothing is read per batch: the confusion counts add up
-- there, and the batches' losses (one-element tensors) are read together, when the scores are asked
-- for or PENDING_MOST of them wait; snapshot() copies the state without reading it (the Trainer keeps
-- one after every step).
local EpochMetrics = {}
EpochMetrics.__index = EpochMetrics

local PENDING_MOST = 64

function metrics.EpochMetrics(num_classes)
  return setmetatable({confusion = metrics.ConfusionMatrix(num_classes), loss_sum = 0, samples = 0}, EpochMetrics)
end

-- The losses waiting on a device, read in one copy and added in the order of their batches.
local function add_pending(self)
  local pending = self.pending
  if not pending then return end
  local parts = {}
  for i, p in ipairs(pending) do parts[i] = p[1]:view(1) end
  local values = core.cat(parts):cpu():totable()
  for i, p in ipairs(pending) do
    self.loss_sum = self.loss_sum + values[i] * p[2]
    self.samples = self.samples + p[2]
  end
  self.pending = nil
end

--- Adds a batch: logits (B, K), target (B) and the batch's mean loss (optional: a number or a
-- one-element tensor).
function EpochMetrics:update(logits, target, loss)
  self.confusion:update(logits, target)
  if loss then
    local n = target:size(1)
    if core.is_tensor(loss) and loss:device() ~= "cpu" then
      -- (detached: a recorded loss would keep its graph alive)
      local value = loss.detach and loss:detach() or loss
      if cuda.is_current_stream_capturing() then
        -- in a CUDA graph (the Trainer's cuda_graph): each replay's loss joins the list; the graph's copy
        -- of it, as the loss's own tensor may be another step's by then
        local kept = value:clone()
        cuda.after_replay(function() self:_add_pending(kept:clone(), n) end)
        return self
      end
      self:_add_pending(value, n)
      return self
    end
    if core.is_tensor(loss) then loss = loss:item() end   -- a recorded loss (a one-element tensor)
    self.loss_sum = self.loss_sum + loss * n
    self.samples = self.samples + n
  end
  return self
end

function EpochMetrics:_add_pending(value, n)
  self.pending = self.pending or {}
  self.pending[#self.pending + 1] = {value, n}
  if #self.pending >= PENDING_MOST then add_pending(self) end
end

--- {loss, accuracy, precision, recall, f1}; loss is nil when no loss was given.
function EpochMetrics:compute(average)
  add_pending(self)
  local scores = self.confusion:compute(average)
  if self.samples > 0 then scores.loss = self.loss_sum / self.samples end
  return scores
end

function EpochMetrics:reset()
  self.confusion:reset()
  self.loss_sum, self.samples, self.pending = 0, 0, nil
  return self
end

--- {counts = confusion counts by target then prediction, loss_sum, samples}: plain numbers.
function EpochMetrics:state_dict()
  add_pending(self)
  return {counts = self.confusion:counts(), loss_sum = self.loss_sum, samples = self.samples}
end

--- A copy of the state so far that reads nothing from a device (an EpochMetrics of its own, whose
-- state_dict() and compute() read it when asked).
function EpochMetrics:snapshot()
  local copy = setmetatable({confusion = self.confusion:clone(), loss_sum = self.loss_sum, samples = self.samples},
    EpochMetrics)
  if self.pending then copy.pending = {table.unpack(self.pending)} end
  return copy
end

function EpochMetrics:load_state_dict(state)
  self.confusion:set_counts(state.counts)
  self.loss_sum, self.samples = state.loss_sum, state.samples
  return self
end

--- Adds a saved state to this one (the batches before a checkpoint and those since).
function EpochMetrics:merge_state(state)
  add_pending(self)
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
    view = {state_owner = owner, score = score, compute = function() return owner:compute()[score] end}
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
