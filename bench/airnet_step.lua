-- A training step of the airbench94 recipe's network (L.models.AirNet, batch 1024) in lightning, next to
-- PyTorch running the same recipe (bench/airbench_torch.py --steps), in pairs (bench/paired.lua).
--   lua bench/airnet_step.lua [--data DIR] [--batch 1024] [--steps 8] [--pairs 5] [--threads 2]
--                             [--precision bf16-mixed|32] [--peer torch|torch1.13|none] [--compile 0|1]
-- A step is forward, the summed label-smoothed cross-entropy, backward and a Nesterov SGD step with
-- weight decay, as in the recipe; each round times --steps steps after 3 untimed ones. Ours steps on
-- random images (a step's cost does not depend on the pixels); the peer's includes its batch's
-- translation (a copy of the batch, about 1 % of a step) and Lookahead every 5 steps. The peer needs
-- CIFAR-10's binary batches in DIR (default ../shared/data/cifar-10-batches-bin).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath
local L = require "lightning"
local paired = dofile("bench/paired.lua")

local USAGE = "lua bench/airnet_step.lua [--data DIR] [--batch N] [--steps N] [--pairs N] [--threads N] " ..
  "[--precision bf16-mixed|32] [--peer torch|torch1.13|none] [--compile 0|1]"
local opts = paired.options(arg, {data = "../shared/data/cifar-10-batches-bin", batch = 1024, steps = 8, pairs = 5,
  threads = 2, precision = "bf16-mixed", peer = "torch", compile = 0}, {}, USAGE)
assert(opts.precision == "32" or opts.precision == "bf16-mixed", "--precision must be 32 or bf16-mixed")
local mixed = opts.precision == "bf16-mixed"

L.set_num_threads(opts.threads)
L.manual_seed(0)
local model = L.models.AirNet{}
model.whitened = true   -- (the whitening weights' values do not change a step's cost)
model:set_precision(mixed and "bf16" or "fp32")
model:train()
local x = L.randn(opts.batch, 3, 32, 32)
local y = L.empty(opts.batch)
for i = 1, opts.batch do y[i] = (i - 1) % 10 + 1 end   -- class indices 1..10
local params = {}
for _, p in ipairs(model:parameters()) do
  if p.requires_grad ~= false then params[#params + 1] = p end
end
local opt = L.optim.SGD(params, {lr = 11.5 / (1024 * (1 + 1 / 0.15)), momentum = 0.85, nesterov = true,
  weight_decay = 0.0153})

local function step()
  opt:zero_grad()
  local logits = model:forward(x)
  model.criterion:forward(logits, y)
  model:backward(x, model.criterion:backward(logits, y))
  opt:step()
end

local function our_round()
  for _ = 1, 3 do step() end
  local t0 = L.now()
  for _ = 1, opts.steps do step() end
  return {train = opts.steps * opts.batch / (L.now() - t0)}
end

local python, no_peer = paired.python(opts.peer)
if python and not io.open(opts.data .. "/data_batch_1.bin") then
  python, no_peer = nil, "no peer: no CIFAR-10 binary batches in " .. opts.data .. " (--data)"
end
local function peer_round()
  local cmd = ("%s bench/airbench_torch.py --data %s --batch %d --steps %d --threads %d --precision %s%s 2>/dev/null")
    :format(python, opts.data, opts.batch, opts.steps + 3, opts.threads, mixed and "bf16" or "fp32",
      opts.compile == 1 and " --compile" or "")
  local out = paired.command(cmd)
  return assert(out.train and out, "the peer printed no training rate: " .. cmd)
end

local info = L.info()
print(("AirNet (airbench94), batch %d, 3x32x32, %d threads, %s, %s (%s%s)"):format(opts.batch, opts.threads,
  mixed and "bf16-mixed" or "float32", info.cpu.model, info.cpu.simd,
  info.mixed_precision and (", oneDNN %s %s"):format(info.mixed_precision.version, info.mixed_precision.isa) or ""))
if not python then
  print(no_peer)
  paired.report(paired.run(opts.pairs, our_round), {"train"}, {ours = "lightning"})
else
  local result = paired.run(opts.pairs, our_round, peer_round)
  local peer_info, peer_peak = result.pairs[1].peer, paired.max(result, "peer", "peak_rss_mb")
  local peer_name = ("PyTorch %s %s%s"):format(peer_info.version, mixed and "bf16 autocast + channels_last" or "fp32",
    opts.compile == 1 and " + torch.compile" or " eager")
  paired.report(result, {"train"}, {ours = "lightning", peer = peer_name})
  print(("peak resident memory: lightning %.0f MB, %s %.0f MB (its process holds the whole data set)")
    :format(paired.memory_mb("VmHWM"), peer_name, peer_peak))
end
