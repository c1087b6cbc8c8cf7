--- The original project's debugging report, for any model (lightning.models.debug_report): what its
-- model.py printed while training, as functions of a model and its batches, so that a LightningModule
-- prints it by calling them from its hooks (ImageClassifier does so when debug = true). Everything goes
-- through lightning.util.output (the Trainer's printer).
--   report.print_model_info(model, {num_classes =, in_channels =, learning_rate =})  INITIALIZING MODEL
--   report.model_info_lines(model)           its layer lines (the original's for the built-in model)
--   report.epoch_banner(epoch)               STARTING TRAINING EPOCH n
--   report.batch(title, batch, batch_idx, num_classes)    shapes and label distribution of a batch
--   report.result(stage, logits, target, loss, metrics)   loss, predictions against truth, running accuracy
--   report.summary(title, scores[, lr])      an epoch's (or a test's) scores
--   report.label_distribution(target, num_classes)        counts of each class 1..K
local class = require "lightning.class"
local nn = require "lightning.nn"
local output = require "lightning.util.output"
local diagnostics = require "lightning.nn.diagnostics"

local report = {}

local RULE = ("="):rep(60)
local function p(...) output.print(...) end
local shape = diagnostics.shape

local function list_text(values, limit)
  local shown = {}
  for i = 1, math.min(#values, limit or #values) do shown[i] = ("%d"):format(values[i]) end
  return "[" .. table.concat(shown, ", ") .. ((limit and #values > limit) and ", ..." or "") .. "]"
end

--- Counts of each class 1..K among the targets.
function report.label_distribution(target, num_classes)
  local counts = {}
  for c = 1, num_classes do counts[c] = 0 end
  for _, v in ipairs(target:totable()) do
    local c = math.tointeger(v)
    if c and counts[c] then counts[c] = counts[c] + 1 end
  end
  return counts
end

local function count(n)   -- 1234567 -> "1,234,567"
  local s = tostring(n)
  repeat
    local k
    s, k = s:gsub("^(%d+)(%d%d%d)", "%1,%2")
  until k == 0
  return s
end

-- The layers (modules without children) of the model, depth-first in registration order, named as in
-- its state_dict without the "net." of a held network: a list of {name, module}.
local function layers_of(model)
  local list = {}
  model:_walk(function(prefix, m)
    if m ~= model and #m._modules == 0 then list[#list + 1] = {(prefix:sub(1, -2):gsub("^net%.", "")), m} end
  end)
  return list
end

local function parameter_count(m)
  local n = 0
  for _, t in m:named_parameters() do n = n + t:numel() end
  return n
end

-- The original's line of a convolution or linear layer ("Conv1: 3 -> 32 channels, kernel=3x3",
-- "FC1: 256 -> 512"), or nil for another kind of layer.
local function original_line(label, m)
  if m.in_channels and m.out_channels then
    local kh, kw = m.kernel_h or m.kernel_size, m.kernel_w or m.kernel_size
    if type(kh) == "table" then kh, kw = kh[1], kh[2] end
    return ("%s: %d -> %d channels, kernel=%sx%s"):format(label, m.in_channels, m.out_channels, tostring(kh), tostring(kw))
  elseif m.in_features and m.out_features then
    return ("%s: %d -> %d"):format(label, m.in_features, m.out_features)
  end
end

--- The layer lines of the INITIALIZING MODEL block: the model's layers in registration order, each as
-- it prints, with its parameter count ("0: Conv2d(3, 8, kernel_size=3, padding=1), 224 parameters").
-- A network whose weighted layers are the original's (conv1.., fc1.., BatchNorms beside them: the
-- built-in model) gets the original's lines ("Conv1: 3 -> 32 channels, kernel=3x3", "FC1: 256 -> 512").
function report.model_info_lines(model)
  local lines, original, weighted = {}, {}, 0
  for _, entry in ipairs(layers_of(model)) do
    local name, m = entry[1], entry[2]
    local params = parameter_count(m)
    local n = name:match("^conv(%d+)$") or name:match("^fc(%d+)$")
    local line = n and original_line((name:match("^conv") and "Conv" or "FC") .. n, m)
    if line then original[#original + 1] = line end
    if params > 0 and not class.name_of(m):find("BatchNorm", 1, true) then weighted = weighted + 1 end
    lines[#lines + 1] = ("%s: %s%s"):format(name, tostring(m), params > 0 and (", %s parameters"):format(count(params)) or "")
  end
  if #original > 0 and #original == weighted then return original end
  return lines
end

-- The dropout rates of the model's Dropout layers (each rate once, in registration order).
local function dropout_rates(model)
  local rates, seen = {}, {}
  for _, entry in ipairs(layers_of(model)) do
    local m = entry[2]
    if class.is_instance(m, nn.Dropout) and not seen[m.p] then seen[m.p], rates[#rates + 1] = true, tostring(m.p) end
  end
  return rates
end

--- The original's INITIALIZING MODEL block: classes, input channels, learning rate (from info), the
-- dropout rate when the model has Dropout layers, its layers, and its parameter count.
function report.print_model_info(model, info)
  p(RULE)
  p("INITIALIZING MODEL")
  p(RULE)
  p(("Number of classes: %d"):format(info.num_classes))
  p(("Input channels: %s"):format(tostring(info.in_channels)))
  p(("Learning rate: %s"):format(tostring(info.learning_rate)))
  local rates = dropout_rates(model)
  if #rates > 0 then p(("Dropout rate: %s"):format(table.concat(rates, ", "))) end
  for _, line in ipairs(report.model_info_lines(model)) do p(line) end
  local total, trainable = 0, 0
  for _, t in model:named_parameters() do
    total = total + t:numel()
    if t.requires_grad ~= false then trainable = trainable + t:numel() end
  end
  p(("Parameters: %s (%s trainable)"):format(count(total), count(trainable)))
  p(("Metrics initialized for %d classes"):format(info.num_classes))
  p(RULE)
end

function report.epoch_banner(epoch)
  p("")
  p(("#"):rep(60))
  p(("STARTING TRAINING EPOCH %d"):format(epoch))
  p(("#"):rep(60))
end

--- A batch's header: its shapes and the distribution of its labels (batch.input, batch.target).
function report.batch(title, batch, batch_idx, num_classes)
  p("")
  p(RULE)
  p(("%s - Batch %d"):format(title, batch_idx))
  p(RULE)
  p(("Batch shape: %s"):format(shape(batch.input)))
  p(("Labels shape: %s"):format(shape(batch.target)))
  p(("Label distribution: %s"):format(list_text(report.label_distribution(batch.target, num_classes))))
end

--- A batch's outcome: the loss (a number), predictions against truth, and the running accuracy of the
-- stage's metrics (an EpochMetrics the batch was added to).
function report.result(stage, logits, target, loss, metrics)
  local preds = logits:argmax(2):totable()
  local truth = target:totable()
  local correct = 0
  for i = 1, #truth do if preds[i] == truth[i] then correct = correct + 1 end end
  p(("%s loss: %.4f"):format(stage, loss))
  p(("Predictions (first 10): %s"):format(list_text(preds, 10)))
  p(("Ground truth (first 10): %s"):format(list_text(truth, 10)))
  p(("Correct predictions: %d / %d"):format(correct, #truth))
  p(("Metrics updated: running accuracy %.4f over %d samples"):format(metrics:compute().accuracy, metrics.samples))
  p(RULE)
end

--- An epoch's (or a test's) summary: loss when known, accuracy and the macro scores, and the
-- learning rate when given.
function report.summary(title, scores, lr)
  p("")
  p(RULE)
  p(title)
  p(RULE)
  if scores.loss then p(("Loss: %.4f"):format(scores.loss)) end
  p(("Accuracy: %.4f"):format(scores.accuracy))
  p(("Precision (macro): %.4f"):format(scores.precision))
  p(("Recall (macro): %.4f"):format(scores.recall))
  p(("F1 (macro): %.4f"):format(scores.f1))
  if lr then p(("Learning rate: %.6g"):format(lr)) end
  p(RULE)
end

return report
