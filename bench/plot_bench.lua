-- Plots: the time to draw and write each chart, and make_grid + PNG against torchvision's make_grid +
-- save_image on the same CIFAR-10 images in the same run (bench/plot_bench_torch.py with Debian's
-- /usr/bin/python3). matplotlib is not installed here, so the charts themselves have no peer.
-- Usage: lua bench/plot_bench.lua [path of CIFAR-10's test_batch.bin]
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local L = require "lightning"

local batch_path = arg[1] or "/work/shared/data/cifar-10-batches-bin/test_batch.bin"
local n, rounds = 64, 10
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

local ours = {
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

local peer = {}
local pipe = io.popen(("/usr/bin/python3 bench/plot_bench_torch.py '%s' %d %d '%s/torch_grid.png' 2>/dev/null")
  :format(batch_path, n, rounds, dir))
for line in pipe:lines() do
  local name, ms = line:match("^(%S+) (%S+)$")
  if name then peer[name] = tonumber(ms) end
end
pipe:close()

print(("plots, best of %d; %s, %d threads"):format(rounds, L.info().cpu.model, L.get_num_threads()))
print(("%-52s %10s %12s %8s"):format("", "lightning", "torchvision", "ratio"))
local rows = {
  {"make_grid, 64 CIFAR-10 images", "grid"},
  {"make_grid + PNG, 64 CIFAR-10 images (274x274)", "grid_png"},
  {"samples: 64 images x4 with captions (1100x1320)", "samples"},
  {"metrics: 2 panels, 50 epochs (1240x460)", "metrics"},
  {"confusion_matrix: 10 classes", "confusion"},
  {"  samples, drawing only", "samples_draw"},
  {"  metrics, drawing only", "metrics_draw"},
  {"  confusion_matrix, drawing only", "confusion_draw"},
}
for _, r in ipairs(rows) do
  local mine, theirs = ours[r[2]], peer[r[2]]
  print(("%-52s %7.1f ms %9s ms %8s"):format(r[1], mine, theirs and ("%.1f"):format(theirs) or "-",
    theirs and ("%.2fx"):format(theirs / mine) or "-"))
end
print("  (ratio = torchvision / lightning, > 1 is faster here; both write through a file that is fsync'd, whose")
print("   latency varies from run to run on a shared disk)")
if next(peer) == nil then print("(torchvision did not run: is python3-torchvision installed at /usr/bin/python3?)") end
os.execute("rm -rf '" .. dir .. "'")
