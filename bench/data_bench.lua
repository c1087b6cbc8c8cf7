-- Data loading throughput: CIFAR-10's training set with RandomCrop(32, padding 4) + RandomHorizontalFlip
-- + Normalize at batch 64, one shuffled epoch, with 0, 1 and 2 workers; and torchvision's DataLoader on
-- the same data and transforms in the same run (bench/data_bench_torch.py with /usr/bin/python3).
-- The loop does nothing with the batches: this is the rate at which data can be delivered. The goal is
-- at least 20,000 images/s with 2 workers, so that data never bounds training.
-- Usage: lua bench/data_bench.lua [cifar-10-batches-bin folder] [epochs per setting]
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
local function rate(n_workers)
  local loader = L.data.DataLoader(ds, {batch_size = 64, shuffle = true, num_workers = n_workers})
  local best = 0
  for _ = 1, epochs do
    local images, start = 0, L.now()
    for _, batch in loader:iter() do images = images + batch.input:size(1) end
    best = math.max(best, images / (L.now() - start))
  end
  return best
end

local ours = {}
for _, n in ipairs(workers) do
  ours[n] = rate(n)
  print(("lightning  workers=%d  %9.0f images/s"):format(n, ours[n]))
end

-- the peer, same data, same transforms, same run
local cmd = ("/usr/bin/python3 bench/data_bench_torch.py '%s' %d 2>&1"):format(root, epochs)
local p = io.popen(cmd)
local peer = {}
for line in p:lines() do
  local n, r = line:match("^torchvision%s+workers=(%d+)%s+([%d.]+) images/s")
  if n then peer[tonumber(n)] = tonumber(r) end
  print(line)
end
p:close()

print()
print("| workers | lightning (images/s) | torchvision DataLoader (images/s) | ratio |")
print("|---|---|---|---|")
for _, n in ipairs(workers) do
  local theirs = peer[n]
  print(("| %d | %.0f | %s | %s |"):format(n, ours[n], theirs and ("%.0f"):format(theirs) or "n/a",
    theirs and ("%.1fx"):format(ours[n] / theirs) or "n/a"))
end
local goal = 20000
print(("\n2 workers: %.0f images/s, %s the goal of %d"):format(ours[2], ours[2] >= goal and "meets" or "MISSES", goal))
