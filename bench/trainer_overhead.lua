-- What the Trainer adds to a training step: BasicImageClassifier trained for the same number of steps
-- on the same batch by a hand-written loop (the peer) and by L.Trainer with its default callbacks
-- (progress bar, in log mode into a sink) and metrics, then also with TensorBoard and CSV loggers.
--   lua bench/trainer_overhead.lua [--threads 2] [--batch 64] [--steps 40] [--rounds 3]
-- Prints milliseconds per step (best of the rounds) and the Trainer's overhead over the hand loop.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local L = require "lightning"
local output = require "lightning.util.output"

local opts = {threads = 2, batch = 64, steps = 40, rounds = 3}
for i = 1, #arg, 2 do
  local key = arg[i]:match("^%-%-(%w+)$")
  assert(key and opts[key], "unknown argument " .. arg[i])
  opts[key] = math.tointeger(tonumber(arg[i + 1]))
end
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

local best = {hand = math.huge, trainer = math.huge, loggers = math.huge}
for _ = 1, opts.rounds do
  best.hand = math.min(best.hand, hand_loop())
  best.trainer = math.min(best.trainer, with_trainer(false))
  best.loggers = math.min(best.loggers, with_trainer(true))
end
os.execute("rm -rf '" .. tmp .. "'")

local ms = function(t) return 1000 * t / opts.steps end
print(("BasicImageClassifier, batch %d, 32x32, %d threads, %d steps, best of %d rounds"):format(opts.batch, opts.threads,
  opts.steps, opts.rounds))
print(("%-44s %8.2f ms/step"):format("hand-written loop (peer)", ms(best.hand)))
print(("%-44s %8.2f ms/step  overhead %+.1f%%"):format("Trainer (progress bar, metrics)", ms(best.trainer),
  100 * (best.trainer / best.hand - 1)))
print(("%-44s %8.2f ms/step  overhead %+.1f%%"):format("Trainer + TensorBoard and CSV loggers", ms(best.loggers),
  100 * (best.loggers / best.hand - 1)))
