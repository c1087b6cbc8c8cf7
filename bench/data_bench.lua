-- Data loading throughput: CIFAR-10's training set with RandomCrop(32, padding 4) + RandomHorizontalFlip
-- + Normalize at batch 64, one shuffled epoch, with 0, 1 and 2 workers; and torchvision's DataLoader on
-- the same data and transforms (bench/data_bench_torch.py), in pairs (bench/paired.lua): ours and the
-- peer alternate in short rounds, each pair is printed, and per setting the median of the per-pair
-- ratios ours / torchvision's images/s (> 1: ours is faster) with their range.
-- The loop does nothing with the batches: this is the rate at which data can be delivered. The goal is
-- at least 20,000 images/s with 2 workers, so that data never bounds training.
-- The same on a folder of PNGs (../shared/data/cifar-10-png-test, 10,000 files, decoded by libpng on
-- every load; the peer is torchvision's ImageFolder with PIL), when it exists.
-- Usage: lua bench/data_bench.lua [cifar-10-batches-bin folder] [epochs per round] [PNG folder]
--          [--root F] [--epochs 1] [--png F] [--workers 0,1,2] [--pairs 5] [--peer torch|torch1.13|none]
-- A round is the best of --epochs epochs per setting. --peer torch is PyTorch 2.x with torchvision from
-- the peers' venv (bench/setup_peers.sh), torch1.13 Debian's python3-torch and python3-torchvision.
-- (with another build tree: LUA_CPATH="build/?.so;;" lua bench/data_bench.lua)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath   -- the tree's build, as the specs use
local L = require "lightning"
local T = L.data.transforms
local paired = dofile("bench/paired.lua")

local USAGE = "lua bench/data_bench.lua [ROOT] [EPOCHS] [PNG] [--root F] [--epochs 1] [--png F] " ..
  "[--workers 0,1,2] [--pairs 5] [--peer torch|torch1.13|none]"
local opts = paired.options(arg, {root = "../shared/data/cifar-10-batches-bin", epochs = 1,
  png = "../shared/data/cifar-10-png-test", workers = "0,1,2", pairs = 5, peer = "torch"},
  {"root", "epochs", "png"}, USAGE)
local workers = {}
for n in opts.workers:gmatch("%d+") do workers[#workers + 1] = tonumber(n) end
local python, no_peer = paired.python(opts.peer, {"torch", "torchvision"})

local t0 = L.now()
local ds = L.data.CIFAR10{root = opts.root, train = true, transform = T.Compose{
  T.RandomCrop(32, {padding = 4}), T.RandomHorizontalFlip(),
  T.Normalize({0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616})}}
print(("lightning: read %d images in %.2f s; %s"):format(#ds, L.now() - t0, L.info().cpu.model or "?"))

-- Images per second over `epochs` epochs (the best epoch), counting from iter() to the last batch.
local function rate(dataset, n_workers)
  local loader = L.data.DataLoader(dataset, {batch_size = 64, shuffle = true, num_workers = n_workers})
  local best = 0
  for _ = 1, opts.epochs do
    local images, start = 0, L.now()
    for _, batch in loader:iter() do images = images + batch.input:size(1) end
    best = math.max(best, images / (L.now() - start))
  end
  return best
end

local folder
if io.open(opts.png .. "/cat") then
  folder = L.data.ImageFolder{root = opts.png, transform = ds.transform}
end

-- figures "memory_w<workers>" and "folder_w<workers>", images/s
local function our_round()
  local out = {}
  for _, n in ipairs(workers) do out["memory_w" .. n] = rate(ds, n) end
  if folder then
    for _, n in ipairs(workers) do out["folder_w" .. n] = rate(folder, n) end
  end
  return out
end

local function peer_round()
  return paired.command(("%s bench/data_bench_torch.py '%s' %d '%s' %s"):format(python, opts.root, opts.epochs,
    opts.workers, folder and ("'" .. opts.png .. "'") or ""))
end

if not python then print(no_peer) end
local result = paired.run(opts.pairs, our_round, python and peer_round)
local peer_name = python and ("torchvision %s DataLoader"):format(result.pairs[1].peer.version) or "torchvision"
local rows = {}
for _, kind in ipairs(folder and {"memory", "folder"} or {"memory"}) do
  for _, n in ipairs(workers) do
    rows[#rows + 1] = {ours = kind .. "_w" .. n, label = ("%s, %d workers"):format(
      kind == "memory" and "CIFAR-10 in memory" or "PNG folder", n)}
  end
end
paired.report(result, rows, {ours = "lightning", peer = peer_name}, {unit = "images/s"})
local goal, two = 20000, {}
for _, p in ipairs(result.pairs) do two[#two + 1] = p.ours.memory_w2 end
if #two > 0 then
  local med = paired.median(two)
  print(("\n2 workers, CIFAR-10: %.0f images/s (median), %s the goal of %d"):format(med,
    med >= goal and "meets" or "MISSES", goal))
end
