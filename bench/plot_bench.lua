-- Plots: the time to draw and write each chart, and make_grid + PNG against torchvision's make_grid +
-- save_image on the same CIFAR-10 images (bench/plot_bench_torch.py), in pairs (bench/paired.lua): ours
-- and the peer alternate in short rounds, each pair is printed, and the median of the per-pair ratios
-- torchvision's time / ours (> 1: ours is faster) with their range. matplotlib is not installed here,
-- so the charts themselves have no peer: their medians over the rounds, with the range.
-- Usage: lua bench/plot_bench.lua [path of CIFAR-10's test_batch.bin] [--test_batch F] [--rounds 10]
--          [--pairs 5] [--peer torch|torch1.13|none]
-- A round is the best of --rounds of each. --peer torch is PyTorch 2.x with torchvision from the peers'
-- venv (bench/setup_peers.sh), torch1.13 Debian's python3-torch and python3-torchvision.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath   -- the tree's build, as the specs use
local L = require "lightning"
local paired = dofile("bench/paired.lua")

local USAGE = "lua bench/plot_bench.lua [TEST_BATCH] [--test_batch F] [--rounds 10] [--pairs 5] " ..
  "[--peer torch|torch1.13|none]"
local opts = paired.options(arg, {test_batch = "/work/shared/data/cifar-10-batches-bin/test_batch.bin",
  rounds = 10, pairs = 5, peer = "torch"}, {"test_batch"}, USAGE)
local batch_path, n, rounds = opts.test_batch, 64, opts.rounds
local python, no_peer = paired.python(opts.peer, {"torch", "torchvision"})
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")

local function best_ms(fn)
  local best = math.huge
  for _ = 1, rounds do
    local t0 = L.now()
    fn()
    best = math.min(best, L.now() - t0)
  end
  return best * 1e3
end

-- the first n test images, (n, 3, 32, 32) in [0, 1], and their labels 1..10
local f = assert(io.open(batch_path, "rb"), "CIFAR-10's test_batch.bin not found: pass its path")
local raw = f:read(n * 3073)
f:close()
local images, labels = L.empty(n, 3, 32, 32), {}
local flat = images:view(n, 3072)
for i = 1, n do
  local rec = raw:sub((i - 1) * 3073 + 1, i * 3073)
  labels[i] = rec:byte(1) + 1
  local values = {rec:byte(2, 3073)}
  for j = 1, 3072 do values[j] = values[j] / 255 end
  flat[i]:copy(L.tensor(values))
end
local names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

local history = {epoch = {}, train_loss = {}, val_loss = {}, train_acc = {}, val_acc = {}}
for e = 1, 50 do
  history.epoch[e] = e
  history.train_loss[e] = 2 * math.exp(-e / 10) + 0.3
  history.val_loss[e] = 2 * math.exp(-e / 12) + 0.5
  history.train_acc[e] = 0.9 - 0.6 * math.exp(-e / 10)
  history.val_acc[e] = 0.8 - 0.5 * math.exp(-e / 12)
end
local counts = {}
for i = 1, 10 do
  counts[i] = {}
  for j = 1, 10 do counts[i][j] = i == j and 800 or (i * 7 + j * 3) % 40 end
end

local function our_round()
  return {
    grid = best_ms(function() L.plot.make_grid(images, {nrow = 8}) end),
    grid_png = best_ms(function() L.data.write_png(dir .. "/grid.png", L.plot.make_grid(images, {nrow = 8})) end),
    samples = best_ms(function() L.plot.samples(images, labels, names, dir .. "/samples.png") end),
    metrics = best_ms(function() L.plot.metrics(history, dir .. "/metrics.png") end),
    confusion = best_ms(function() L.plot.confusion_matrix(counts, names, dir .. "/cm.png") end),
    -- drawing alone, without PNG encoding and the fsync'd write
    samples_draw = best_ms(function() L.plot.samples(images, labels, names) end),
    metrics_draw = best_ms(function() L.plot.metrics(history) end),
    confusion_draw = best_ms(function() L.plot.confusion_matrix(counts, names) end),
  }
end

local function peer_round()
  return paired.command(("%s bench/plot_bench_torch.py '%s' %d %d '%s/torch_grid.png'"):format(python, batch_path,
    n, rounds, dir))
end

print(("plots, best of %d per round; %s, %d threads"):format(rounds, L.info().cpu.model, L.get_num_threads()))
if not python then print(no_peer) end
local result = paired.run(opts.pairs, our_round, python and peer_round)
local peer_name = python and ("torchvision %s"):format(result.pairs[1].peer.version) or "torchvision"
paired.report(result, {
  {ours = "grid", label = "make_grid, 64 CIFAR-10 images"},
  {ours = "grid_png", label = "make_grid + PNG, 64 CIFAR-10 images (274x274)"},
  {ours = "samples", peer = false, label = "samples: 64 images x4 with captions (1100x1320)"},
  {ours = "metrics", peer = false, label = "metrics: 2 panels, 50 epochs (1240x460)"},
  {ours = "confusion", peer = false, label = "confusion_matrix: 10 classes"},
  {ours = "samples_draw", peer = false, label = "samples, drawing only"},
  {ours = "metrics_draw", peer = false, label = "metrics, drawing only"},
  {ours = "confusion_draw", peer = false, label = "confusion_matrix, drawing only"},
}, {ours = "lightning", peer = peer_name}, {unit = "ms", lower = true})
print("  (both write through a file that is fsync'd, whose latency varies from run to run on a shared disk)")
os.execute("rm -rf '" .. dir .. "'")
