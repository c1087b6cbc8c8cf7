#!/usr/bin/env lua5.4
--- test_setup.lua: checks that the installation works, as the original project's test_setup.py.
--   lua examples/test_setup.lua                      synthetic data, no data set needed (a few seconds)
--   lua examples/test_setup.lua --cifar10 [--data_root ./data]
-- Each check prints PASS or FAIL; the exit status is non-zero when one fails.

-- From a checkout, use its Lua files and build (see checkout.lua).
do
  local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
  local checkout = loadfile(dir .. "/checkout.lua")
  if checkout then checkout(dir) end
end

local argparse = require "argparse"
local L = require "lightning"
local output = require "lightning.util.output"

local parser = argparse("test_setup.lua", "Check the installation: model, data, one training step, a few steps.")
parser:flag("--cifar10 --use_cifar10", "Use CIFAR-10 from --data_root instead of synthetic data.")
parser:option("--data_root", "The folder that holds cifar-10-batches-bin/.", "./data")
parser:option("--batch_size", "Batch size.", "32"):convert(tonumber)
local args = parser:parse()

local NUM_CLASSES, SIZE = 10, 32
local RULE = ("="):rep(60)

--- A data module of synthetic images: class k is noise plus a bright horizontal band at a place of
-- its own, so that a network can learn it in a few steps.
local function synthetic_data_module(batch_size)
  local function samples(n, seed)
    local list = {}
    local generator_state = L.get_rng_state()
    L.manual_seed(seed)
    for i = 1, n do
      local k = (i - 1) % NUM_CLASSES + 1
      local x = L.randn(3, SIZE, SIZE) * 0.5
      x:narrow(2, (k - 1) * 3 + 1, 3):add(1.5)
      list[i] = {input = x, target = k}
    end
    L.set_rng_state(generator_state)
    return list
  end
  local classes = {}
  for k = 1, NUM_CLASSES do classes[k] = "class" .. k end
  return {
    num_classes = NUM_CLASSES, in_channels = 3, image_size = {SIZE, SIZE}, classes = classes,
    prepare_data = function() end,
    setup = function(self)
      self.train_set = self.train_set or samples(8 * batch_size, 1)
      self.val_set = self.val_set or samples(2 * batch_size, 2)
    end,
    train_dataloader = function(self) return L.data.DataLoader(self.train_set, {batch_size = batch_size, shuffle = true}) end,
    val_dataloader = function(self) return L.data.DataLoader(self.val_set, {batch_size = batch_size}) end,
  }
end

local function data_module()
  if args.cifar10 then
    return L.data.ImageDataModule{dataset = "cifar10", data_root = args.data_root, batch_size = args.batch_size,
      num_workers = 2}
  end
  return synthetic_data_module(args.batch_size)
end

local function shape(t) return "[" .. table.concat(t:size(), ", ") .. "]" end

local function expect(cond, fmt, ...)
  if not cond then error(fmt:format(...), 0) end
end

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

local checks = {}
local function check(name, fn) checks[#checks + 1] = {name = name, fn = fn} end

local state = {}

check("Model initialization and forward pass", function()
  L.manual_seed(42)
  state.model = L.models.BasicImageClassifier{num_classes = NUM_CLASSES, in_channels = 3, image_size = SIZE}
  local x = L.randn(4, 3, SIZE, SIZE)
  local logits = state.model:forward(x)
  expect(logits:dim() == 2 and logits:size(1) == 4 and logits:size(2) == NUM_CLASSES,
    "logits have shape %s, expected [4, %d]", shape(logits), NUM_CLASSES)
  expect(require("lightning.metrics").count_nonfinite(logits) == 0, "the logits are not all finite")
  return ("input %s -> logits %s, %d parameters"):format(shape(x), shape(logits), state.model:num_parameters())
end)

check("Data module setup and one batch", function()
  local dm = data_module()
  dm:prepare_data()
  dm:setup("fit")
  expect(dm.num_classes == NUM_CLASSES, "the data module has %s classes, expected %d", tostring(dm.num_classes), NUM_CLASSES)
  for _, batch in dm:train_dataloader():iter() do
    local x, y = batch.input, batch.target
    expect(x:dim() == 4 and x:size(2) == 3 and x:size(3) == SIZE and x:size(4) == SIZE,
      "batch input %s, expected [B, 3, %d, %d]", shape(x), SIZE, SIZE)
    expect(y:dim() == 1 and y:size(1) == x:size(1), "targets %s do not match the batch %s", shape(y), shape(x))
    expect(y:min() >= 1 and y:max() <= NUM_CLASSES, "targets outside 1..%d", NUM_CLASSES)
    state.batch = {input = x:clone(), target = y:clone()}
    break
  end
  expect(state.batch, "the training loader gave no batch")
  state.dm = dm
  return ("%s, batch %s, targets %s"):format(args.cifar10 and "CIFAR-10" or "synthetic data", shape(state.batch.input),
    shape(state.batch.target))
end)

-- forward, loss, backward through the criterion and the network
local function train_step(model, criterion, opt, batch)
  opt:zero_grad()
  local logits = model:forward(batch.input)
  local loss = criterion:forward(logits, batch.target)
  model:backward(batch.input, criterion:backward(logits, batch.target))
  opt:step()
  return loss
end

check("Single training step", function()
  local model, batch = state.model, state.batch
  expect(model and batch, "needs the model and a batch from the checks above")
  model:train()
  local criterion = L.nn.CrossEntropyLoss()
  local opt = L.optim.Adam(model:parameters(), {lr = 1e-3})
  local before = model.fc3.weight:clone()
  local loss = train_step(model, criterion, opt, batch)
  expect(finite(loss), "the loss is %s", tostring(loss))
  local with_gradient = 0
  for name, p in model:named_parameters() do
    expect(require("lightning.metrics").count_nonfinite(p.grad) == 0, "the gradient of %s is not finite", name)
    if p.grad:abs():sum() > 0 then with_gradient = with_gradient + 1 end
  end
  expect(with_gradient == #model:parameters(), "only %d of %d parameters got a gradient", with_gradient,
    #model:parameters())
  expect((model.fc3.weight - before):abs():sum() > 0, "the optimizer step did not change the weights")
  state.criterion, state.opt = criterion, opt
  return ("loss %.4f, all %d parameters have gradients"):format(loss, with_gradient)
end)

check("A few steps on one batch lower the loss", function()
  local model, batch = state.model, state.batch
  expect(model and batch and state.opt, "needs the checks above")
  local first, last
  for step = 1, 15 do
    local loss = train_step(model, state.criterion, state.opt, batch)
    if step == 1 then first = loss end
    last = loss
  end
  expect(last < first, "the loss went from %.4f to %.4f", first, last)
  return ("loss %.4f -> %.4f over 15 steps"):format(first, last)
end)

check("Trainer run (fast_dev_run: one training and one validation batch)", function()
  expect(state.dm, "needs the data module")
  L.manual_seed(7)
  local model = L.models.BasicImageClassifier{num_classes = NUM_CLASSES, in_channels = 3, image_size = SIZE}
  local trainer = L.Trainer{fast_dev_run = true, enable_progress_bar = false, enable_model_summary = false,
    logger = false, enable_checkpointing = false, default_root_dir = os.getenv("TMPDIR") or "/tmp"}
  output.capture(trainer.fit, trainer, model, state.dm)
  expect(trainer.global_step == 1, "the trainer took %d steps, expected 1", trainer.global_step)
  expect(finite(trainer.callback_metrics.val_loss or 0 / 0), "no finite val_loss was logged")
  return ("train_loss %.4f, val_loss %.4f"):format(trainer.callback_metrics.train_loss, trainer.callback_metrics.val_loss)
end)

L.print(RULE)
L.print("LIGHTNING SETUP TEST")
L.print(RULE)
local info = L.info()
L.print(("lightning %s, %s, BLAS core %s, %d threads"):format(info.version, _VERSION, info.blas_core, info.threads))
local failed = 0
local started = L.now()
for i, c in ipairs(checks) do
  local t0 = L.now()
  local ok, result = pcall(c.fn)
  local seconds = L.now() - t0
  if ok then
    L.print(("PASS  %d. %s (%.2f s): %s"):format(i, c.name, seconds, result))
  else
    failed = failed + 1
    L.print(("FAIL  %d. %s (%.2f s): %s"):format(i, c.name, seconds, tostring(result)))
  end
end
L.print(RULE)
if failed == 0 then
  L.print(("All %d checks passed in %.1f s."):format(#checks, L.now() - started))
else
  L.print(("%d of %d checks failed."):format(failed, #checks))
end
L.print(RULE)
os.exit(failed == 0 and 0 or 1)
