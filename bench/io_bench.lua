-- File formats: safetensors save/load against PyTorch on the same file (bench/io_bench_torch.py), in
-- pairs (bench/paired.lua): ours and the peer alternate in short rounds, each pair is printed, and per
-- case the median of the per-pair ratios PyTorch's time / ours (> 1: ours is faster) with their range;
-- then the loggers' cost per logged value (no peer).
-- Usage: lua bench/io_bench.lua [MB] [--mb 64] [--rounds 5] [--pairs 5] [--peer torch|torch1.13|none]
-- MB: the size of the synthetic state dict; each round is the best of --rounds saves (with fsync) and
-- loads. --peer torch is PyTorch 2.x from the peers' venv (bench/setup_peers.sh), torch1.13 Debian's
-- python3-torch. The peer's "safetensors" column is safetensors' algorithm in Python (the package is not
-- installed); "torch.save" / "torch.load" are PyTorch's own format, of the same tensors.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath   -- the tree's build, as the specs use
local L = require "lightning"
local paired = dofile("bench/paired.lua")

local USAGE = "lua bench/io_bench.lua [MB] [--mb 64] [--rounds 5] [--pairs 5] [--peer torch|torch1.13|none]"
local opts = paired.options(arg, {mb = 64, rounds = 5, pairs = 5, peer = "torch"}, {"mb"}, USAGE)
local mb, rounds = opts.mb, opts.rounds
local python, no_peer = paired.python(opts.peer)
local dir = os.tmpname()
os.remove(dir)
L.core.io.mkdir(dir)

-- A state dict of about `mb` megabytes: 1024x1024 matrices and vectors, plus int64 counters.
local tensors = {}
L.manual_seed(0)
for i = 1, math.max(1, mb // 4) do
  tensors[("layer%d.weight"):format(i)] = L.randn(1024, 1024)
  tensors[("layer%d.bias"):format(i)] = L.randn(1024)
  local n = L.tensor{i}
  n.dtype, n.scalar = "I64", true
  tensors[("layer%d.num_batches_tracked"):format(i)] = n
end
local path = dir .. "/bench.safetensors"

local function best_ms(fn)
  local best = math.huge
  for _ = 1, rounds do
    local t0 = L.now()
    fn()
    best = math.min(best, L.now() - t0)
  end
  return best * 1e3
end

local function our_round()
  return {
    st_save = best_ms(function() L.save_safetensors(path, tensors, {format = "pt"}) end),
    st_load = best_ms(function() L.load_safetensors(path) end),
  }
end

local function peer_round()
  return paired.command(("%s bench/io_bench_torch.py '%s' %d"):format(python, path, rounds))
end

L.save_safetensors(path, tensors, {format = "pt"})   -- the file the peer reads, there before any round
local bytes = #io.open(path, "rb"):read("a")
local count = 0
for _ in pairs(tensors) do count = count + 1 end
print(("safetensors, %.1f MB (%d tensors), best of %d per round; %s, %d threads"):format(bytes / 1e6, count,
  rounds, L.info().cpu.model, L.get_num_threads()))
if not python then print(no_peer) end
local result = paired.run(opts.pairs, our_round, python and peer_round)
local peer_name = python and ("PyTorch %s"):format(result.pairs[1].peer.version) or "PyTorch"
paired.report(result, {
  {ours = "st_save", label = "save"}, {ours = "st_load", label = "load"},
  {ours = "st_save", peer = "pt_save", label = "save vs torch.save"},
  {ours = "st_load", peer = "pt_load", label = "load vs torch.load"},
}, {ours = "lightning", peer = peer_name}, {unit = "ms", lower = true})
local saves, loads = {}, {}
for i, p in ipairs(result.pairs) do saves[i], loads[i] = p.ours.st_save, p.ours.st_load end
print(("  (lightning: %.0f MB/s saving incl. fsync, %.0f MB/s loading, medians; the peer's save and load: " ..
  "safetensors' algorithm in Python)"):format(bytes / 1e3 / paired.median(saves), bytes / 1e3 / paired.median(loads)))

-- Loggers: microseconds per logged value (no peer: the tensorboard package is not installed here).
local n = 20000
local tb = L.loggers.TensorBoardLogger{save_dir = dir, name = "tb"}
local t0 = L.now()
for s = 1, n do tb:log_metrics({loss = 1 / s}, s) end
tb:finalize("success")
local tb_us = (L.now() - t0) / n * 1e6
local csv = L.loggers.CSVLogger{save_dir = dir, name = "csv", flush_logs_every_n_steps = 1000}
t0 = L.now()
for s = 1, n do csv:log_metrics({loss = 1 / s, acc = s / n}, s) end
csv:finalize("success")
local csv_us = (L.now() - t0) / n * 1e6
print(("loggers, %d steps: TensorBoardLogger %.1f us per scalar, CSVLogger %.1f us per row of 2 metrics " ..
  "(appending to metrics.csv every 1000 steps)"):format(n, tb_us, csv_us))
os.execute("rm -rf '" .. dir .. "'")
