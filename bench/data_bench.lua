-- Data loading throughput: CIFAR-10's training set with RandomCrop(32, padding 4) + RandomHorizontalFlip
-- + Normalize at batch 64, one shuffled epoch, with 0, 1 and 2 workers; and torchvision's DataLoader on
-- the same data and transforms in the same run (bench/data_bench_torch.py with /usr/bin/python3).
-- The loop does nothing with the batches: this is the rate at which data can be delivered. The goal is
-- at least 20,000 images/s with 2 workers, so that data never bounds training.
-- A second table does the same on a folder of PNGs (../shared/data/cifar-10-png-test, 10,000 files,
-- decoded by libpng on every load; the peer is torchvision's ImageFolder with PIL), when it exists.
-- Usage: lua bench/data_bench.lua [cifar-10-batches-bin folder] [epochs per setting] [PNG folder]
-- (with a build tree instead of the installed rock: LUA_CPATH="build/?.so;;" lua bench/data_bench.lua)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local L = require "lightning"
local T = L.data.transforms

local root = arg[1] or "../shared/data/cifar-10-batches-bin"
local epochs = tonumber(arg[2]) or 2
local workers = {0, 1, 2}

local t0 = L.now()
local ds = L.data.CIFAR10{root = root, train = true, transform = T.Compose{
  T.RandomCrop(32, {padding = 4}), T.RandomHorizontalFlip(),
  T.Normalize({0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616})}}
local load_s = L.now() - t0
print(("lightning: read %d images in %.2f s; %s"):format(#ds, load_s, L.info().cpu.model or "?"))

-- Images per second over `epochs` epochs (the best epoch), counting from iter() to the last batch.
local function rate(dataset, n_workers)
  local loader = L.data.DataLoader(dataset, {batch_size = 64, shuffle = true, num_workers = n_workers})
  local best = 0
  for _ = 1, epochs do
    local images, start = 0, L.now()
    for _, batch in loader:iter() do images = images + batch.input:size(1) end
    best = math.max(best, images / (L.now() - start))
  end
  return best
end

local function table_of(title, ours, peer)
  print()
  print(("| %s, workers | lightning (images/s) | torchvision DataLoader (images/s) | ratio |"):format(title))
  print("|---|---|---|---|")
  for _, n in ipairs(workers) do
    local theirs = peer[n]
    print(("| %d | %.0f | %s | %s |"):format(n, ours[n], theirs and ("%.0f"):format(theirs) or "n/a",
      theirs and ("%.1fx"):format(ours[n] / theirs) or "n/a"))
  end
end

-- Runs the peer script; returns {[workers] = images/s} per kind ("memory", "folder").
local function run_peer(args)
  local p = io.popen("/usr/bin/python3 bench/data_bench_torch.py " .. args .. " 2>&1")
  local peer = {memory = {}, folder = {}}
  for line in p:lines() do
    local kind, n, r = line:match("^torchvision (%a+)%s+workers=(%d+)%s+([%d.]+) images/s")
    if kind then peer[kind][tonumber(n)] = tonumber(r) end
    print(line)
  end
  p:close()
  return peer
end

local ours = {}
for _, n in ipairs(workers) do
  ours[n] = rate(ds, n)
  print(("lightning memory  workers=%d  %9.0f images/s"):format(n, ours[n]))
end

local png_root = arg[3] or "../shared/data/cifar-10-png-test"
local folder, ours_folder = nil, {}
if io.open(png_root .. "/cat") then
  folder = L.data.ImageFolder{root = png_root, transform = ds.transform}
  for _, n in ipairs(workers) do
    ours_folder[n] = rate(folder, n)
    print(("lightning folder  workers=%d  %9.0f images/s"):format(n, ours_folder[n]))
  end
end

local peer = run_peer(("'%s' %d %s"):format(root, epochs, folder and ("'" .. png_root .. "'") or ""))
table_of("CIFAR-10 in memory", ours, peer.memory)
if folder then table_of("PNG folder", ours_folder, peer.folder) end
local goal = 20000
print(("\n2 workers, CIFAR-10: %.0f images/s, %s the goal of %d"):format(ours[2], ours[2] >= goal and "meets" or "MISSES", goal))
