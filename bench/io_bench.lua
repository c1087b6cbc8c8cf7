-- File formats: safetensors save/load against PyTorch in the same run (bench/io_bench_torch.py with
-- Debian's /usr/bin/python3 on the same file), and the loggers' cost per logged value.
-- Usage: lua bench/io_bench.lua [MB]   (the size of the synthetic state dict; 64 by default)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local L = require "lightning"

local mb = tonumber(arg[1]) or 64
local rounds = 5
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

local ours = {
  st_save = best_ms(function() L.save_safetensors(path, tensors, {format = "pt"}) end),
  st_load = best_ms(function() L.load_safetensors(path) end),
}
local bytes = #io.open(path, "rb"):read("a")

local peer = {}
local pipe = io.popen(("/usr/bin/python3 bench/io_bench_torch.py %s %d 2>/dev/null"):format(path, rounds))
for line in pipe:lines() do
  local name, ms = line:match("^(%S+) (%S+)$")
  if name then peer[name] = tonumber(ms) end
end
pipe:close()

print(("safetensors, %.1f MB (%d tensors), best of %d; %s, %d threads"):format(bytes / 1e6,
  (function() local n = 0 for _ in pairs(tensors) do n = n + 1 end return n end)(), rounds,
  L.info().cpu.model, L.get_num_threads()))
print(("%-10s %10s %10s %10s %8s"):format("", "lightning", "PyTorch", "torch.*", "ratio"))
for _, case in ipairs({{"save", "st_save", "pt_save"}, {"load", "st_load", "pt_load"}}) do
  local mine, theirs, native = ours[case[2]], peer[case[2]], peer[case[3]]
  print(("%-10s %8.1f ms %8s ms %8s ms %8s"):format(case[1], mine, theirs and ("%.1f"):format(theirs) or "-",
    native and ("%.1f"):format(native) or "-", theirs and ("%.2fx"):format(theirs / mine) or "-"))
end
print(("  (%.0f MB/s saving incl. fsync, %.0f MB/s loading; PyTorch column: safetensors' algorithm in Python,"):format(
  bytes / 1e3 / ours.st_save, bytes / 1e3 / ours.st_load))
print("   torch.* column: torch.save / torch.load of the same tensors; ratio = PyTorch / lightning, > 1 is faster here)")
if next(peer) == nil then print("(PyTorch did not run: is python3-torch installed at /usr/bin/python3?)") end

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
