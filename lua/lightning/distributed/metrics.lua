--- Epoch metrics over every process of a data-parallel run: the confusion matrix and the loss sums of
-- lightning.metrics.EpochMetrics added over processes (the counts exactly, as int64), so that the
-- accuracy, precision, recall and F1 a model logs are those of the whole data, identical on every
-- process (ModelCheckpoint and EarlyStopping then decide alike everywhere).
--   local m = dist_metrics.reduced(model.epoch_metrics.val, trainer.strategy)   -- a new EpochMetrics
-- In one process it returns m itself. Every process must call it at the same point (a collective).
local metrics = require "lightning.metrics"

local dist_metrics = {}

function dist_metrics.reduced(m, strategy)
  if not strategy or strategy:world_size() == 1 then return m end
  local rows = m.confusion:counts()
  local k = #rows
  local flat = {}
  for i = 1, k do
    for j = 1, k do flat[#flat + 1] = rows[i][j] end
  end
  flat[#flat + 1] = m.samples
  flat = strategy:reduce(flat, "sum")
  local loss_sum = strategy:reduce(m.loss_sum, "sum")
  local out = metrics.EpochMetrics(k)
  local summed = {}
  for i = 1, k do
    summed[i] = {}
    for j = 1, k do summed[i][j] = flat[(i - 1) * k + j] end
  end
  out.confusion:set_counts(summed)
  out.samples, out.loss_sum = flat[k * k + 1], loss_sum
  return out
end

return dist_metrics
