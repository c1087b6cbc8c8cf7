-- What the Trainer adds to a training step: BasicImageClassifier trained for the same number of steps
-- on the same batch by a hand-written loop (the peer) and by L.Trainer with its default callbacks
-- (progress bar, in log mode into a sink) and metrics, then also with TensorBoard and CSV loggers.
--   lua bench/trainer_overhead.lua [--threads 2] [--batch 64] [--steps 40] [--pairs 5]
-- In pairs (bench/paired.lua): the hand loop and the Trainer alternate in short rounds, each pair is
-- printed, and the median of the per-pair ratios hand loop's time / the Trainer's (> 1: the Trainer is
-- faster; 0.95x is a 5 % overhead) with their range, in milliseconds per step.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath   -- the tree's build, as the specs use
local L = require "lightning"
local output = require "lightning.util.output"
local paired = dofile("bench/paired.lua")

local opts = paired.options(arg, {threads = 2, batch = 64, steps = 40, pairs = 5}, nil,
  "lua bench/trainer_overhead.lua [--threads 2] [--batch 64] [--steps 40] [--pairs 5]")
L.set_num_threads(opts.threads)

L.manual_seed(0)
local x = L.randn(opts.batch, 3, 32, 32)
local y = L.zeros(opts.batch)
for j = 1, opts.batch do y[j] = (j - 1) % 10 + 1 end

-- a loader that yields the same batch `steps` times
local loader = setmetatable({}, {__len = function() return opts.steps end, __index = {iter = function()
  local i = 0
  return function()
    i = i + 1
    if i <= opts.steps then return i, {input = x, target = y} end
  end
end}})

local function model()
  L.manual_seed(1)
  return L.models.BasicImageClassifier{}
end

local function hand_loop()
  local m = model()
  local crit = L.nn.CrossEntropyLoss()
  local opt = L.optim.Adam(m:parameters(), {lr = 1e-3})
  m:train()
  local t0 = L.now()
  for _, batch in loader:iter() do
    opt:zero_grad()
    local logits = m:forward(batch.input)
    crit:forward(logits, batch.target)
    m:backward(batch.input, crit:backward(logits, batch.target))
    opt:step()
  end
  return L.now() - t0
end

local tmp = os.tmpname()
os.remove(tmp)

local function with_trainer(loggers)
  local m = model()
  local logger = false
  if loggers then
    logger = {L.loggers.TensorBoardLogger{save_dir = tmp, name = "bench"}, L.loggers.CSVLogger{save_dir = tmp, name = "bench"}}
  end
  local trainer = L.Trainer{max_epochs = 1, logger = logger, enable_checkpointing = false, enable_model_summary = false,
    default_root_dir = tmp, callbacks = {L.callbacks.ProgressBar{terminal = false}}}
  local t0 = L.now()
  output.capture(trainer.fit, trainer, m, loader)
  return L.now() - t0
end

local ms = function(t) return 1000 * t / opts.steps end
local result = paired.run(opts.pairs,
  function() return {trainer = ms(with_trainer(false)), loggers = ms(with_trainer(true))} end,
  function() return {hand = ms(hand_loop())} end)
os.execute("rm -rf '" .. tmp .. "'")

print(("BasicImageClassifier, batch %d, 32x32, %d threads, %d steps per round; %s"):format(opts.batch, opts.threads,
  opts.steps, L.info().cpu.model))
paired.report(result, {
  {ours = "trainer", peer = "hand", label = "Trainer (progress bar, metrics)"},
  {ours = "loggers", peer = "hand", label = "Trainer + TensorBoard and CSV loggers"},
}, {ours = "Trainer", peer = "hand-written loop"}, {unit = "ms/step", lower = true})
for _, key in ipairs({"trainer", "loggers"}) do
  local ratios = paired.ratios(result, {ours = key, peer = "hand", lower = true})
  local overhead = {}
  for i, r in ipairs(ratios) do overhead[i] = 100 * (1 / r - 1) end
  print(("%s: overhead over the hand loop %+.1f %% (median; pairs %+.1f to %+.1f %%)"):format(
    key == "trainer" and "Trainer" or "Trainer + loggers", paired.median(overhead),
    math.min(table.unpack(overhead)), math.max(table.unpack(overhead))))
end
