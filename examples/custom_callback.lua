#!/usr/bin/env lua5.4
--- custom_callback.lua: writing your own callbacks. Two examples, trained on synthetic images (no data
-- set needed) or on CIFAR-10:
--   PerClassAccuracy  after each validation, the accuracy of every class (from a confusion matrix),
--                     printed as a table and logged as val_acc/<class>
--   HardestExamples   the k validation images the model got most wrong (lowest probability of the
--                     true class), saved as PNG files with their true and predicted classes
--   lua examples/custom_callback.lua [--cifar10 --data_root ./data] [--max_epochs 2] [--output_dir outputs]
-- A callback is any table of hooks; subclassing L.Callback adds a state_key for checkpoints. Hooks get
-- (callback, trainer, module, ...): see docs/trainer.md for the list. A misspelt hook is an error.

-- From a checkout, use its Lua files and build (see checkout.lua).
do
  local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
  local checkout = loadfile(dir .. "/checkout.lua")
  if checkout then checkout(dir) end
end

local argparse = require "argparse"
local L = require "lightning"
local metrics = require "lightning.metrics"

-- ---------------------------------------------------------------------------------------------
-- PerClassAccuracy
-- ---------------------------------------------------------------------------------------------
local PerClassAccuracy = L.class("PerClassAccuracy", L.Callback)

function PerClassAccuracy:__init(class_names)
  self.class_names = class_names
  self.confusion = metrics.ConfusionMatrix(#class_names)
  self.history = {}   -- per epoch: {class name = accuracy}
end

function PerClassAccuracy:on_validation_epoch_start(trainer, module)
  self.confusion:reset()
end

-- outputs is what validation_step returned: ImageClassifier gives {loss, output = logits, target}
function PerClassAccuracy:on_validation_batch_end(trainer, module, outputs, batch, batch_idx)
  self.confusion:update(outputs.output, batch.target)
end

function PerClassAccuracy:on_validation_epoch_end(trainer, module)
  if trainer.sanity_checking then return end
  local recall = self.confusion:per_class().recall   -- per class: correct / samples of that class
  local row = {}
  module:print(("Per-class validation accuracy after epoch %d:"):format(trainer.current_epoch))
  for k, name in ipairs(self.class_names) do
    row[name] = recall[k]
    module:print(("  %-12s %6.2f%%  %s"):format(name, 100 * recall[k], ("#"):rep(math.floor(recall[k] * 30 + 0.5))))
    module:log("val_acc/" .. name, recall[k])   -- logging from a callback: epoch-level in this hook
  end
  self.history[#self.history + 1] = row
end

-- its state goes into checkpoints and comes back on resume
function PerClassAccuracy:state_dict() return {history = self.history} end
function PerClassAccuracy:load_state_dict(state) self.history = state.history or {} end

-- ---------------------------------------------------------------------------------------------
-- HardestExamples
-- ---------------------------------------------------------------------------------------------
local HardestExamples = L.class("HardestExamples", L.Callback)

function HardestExamples:__init(opts)
  self.k = opts.k or 8
  self.dirpath = opts.dirpath
  self.class_names = opts.class_names
end

function HardestExamples:on_validation_epoch_start(trainer, module)
  self.worst = {}
end

-- Softmax probabilities of a (B, K) batch of logits.
local function softmax(logits)
  local shifted = logits - logits:max(2):view(logits:size(1), 1)
  local e = shifted:exp()
  return e / e:sum(2):view(logits:size(1), 1)
end

function HardestExamples:on_validation_batch_end(trainer, module, outputs, batch, batch_idx)
  if trainer.sanity_checking then return end
  local probs = softmax(outputs.output):totable()
  local targets = batch.target:totable()
  for i, t in ipairs(targets) do
    local p = probs[i]
    local predicted = 1
    for k = 2, #p do if p[k] > p[predicted] then predicted = k end end
    if predicted ~= t then
      -- keep the k lowest probabilities of the true class (the batch's tensors are reused: clone)
      local entry = {p_true = p[t], target = t, predicted = predicted, image = batch.input[i]:clone()}
      table.insert(self.worst, entry)
      table.sort(self.worst, function(a, b) return a.p_true < b.p_true end)
      if #self.worst > self.k then table.remove(self.worst) end
    end
  end
end

function HardestExamples:on_validation_epoch_end(trainer, module)
  if trainer.sanity_checking or #self.worst == 0 then return end
  local dir = ("%s/epoch_%d"):format(self.dirpath, trainer.current_epoch)
  os.execute(("mkdir -p '%s'"):format(dir))
  module:print(("Hardest validation images after epoch %d (saved in %s):"):format(trainer.current_epoch, dir))
  for rank, e in ipairs(self.worst) do
    local img = e.image
    local lo, hi = img:min(), img:max()
    img = (img - lo) / math.max(hi - lo, 1e-8)   -- back to [0, 1] for PNG
    local name = ("%02d_true-%s_pred-%s.png"):format(rank, self.class_names[e.target], self.class_names[e.predicted])
    L.data.write_png(dir .. "/" .. name, img)
    module:print(("  %d. %-28s p(true) = %.4f"):format(rank, name, e.p_true))
  end
end

-- ---------------------------------------------------------------------------------------------
-- Training with them
-- ---------------------------------------------------------------------------------------------
local parser = argparse("custom_callback.lua", "Train with two custom callbacks.")
parser:flag("--cifar10 --use_cifar10", "Use CIFAR-10 from --data_root instead of synthetic images.")
parser:option("--data_root", "The folder that holds cifar-10-batches-bin/.", "./data")
parser:option("--max_epochs", "Epochs.", "2"):convert(tonumber)
parser:option("--limit_train_batches", "Batches per epoch (a count or a fraction)."):convert(tonumber)
parser:option("--output_dir", "Where the images and checkpoints go.", "outputs")
local args = parser:parse()

local function synthetic_data_module()
  local names = {"red", "green", "blue", "top", "middle", "bottom"}
  local function samples(n, seed)
    L.manual_seed(seed)
    local list = {}
    for i = 1, n do
      local k = (i - 1) % #names + 1
      local x = L.randn(3, 32, 32) * 0.6
      if k <= 3 then x:select(1, k):add(1) else x:narrow(2, (k - 4) * 10 + 2, 10):add(1) end
      list[i] = {input = x, target = k}
    end
    return list
  end
  local train, val = samples(192, 1), samples(96, 2)
  return {num_classes = #names, in_channels = 3, image_size = {32, 32}, classes = names,
    setup = function() end,
    train_dataloader = function() return L.data.DataLoader(train, {batch_size = 32, shuffle = true}) end,
    val_dataloader = function() return L.data.DataLoader(val, {batch_size = 32}) end}
end

local dm
if args.cifar10 then
  dm = L.data.ImageDataModule{dataset = "cifar10", data_root = args.data_root, batch_size = 64}
  dm:prepare_data()
  dm:setup("fit")
else
  dm = synthetic_data_module()
end

L.manual_seed(0)
local model = L.models.BasicImageClassifier{num_classes = dm.num_classes, in_channels = dm.in_channels, image_size = 32}
local trainer = L.Trainer{
  max_epochs = math.tointeger(args.max_epochs), limit_train_batches = args.limit_train_batches or 1.0,
  default_root_dir = args.output_dir, logger = false, enable_model_summary = false,
  callbacks = {
    PerClassAccuracy(dm.classes),
    HardestExamples{k = 6, dirpath = args.output_dir .. "/hardest", class_names = dm.classes},
  },
}
local ok, err = pcall(trainer.fit, trainer, model, dm)
if not ok then
  io.stderr:write("custom_callback.lua failed: ", tostring(err), "\n")
  os.exit(1)
end
