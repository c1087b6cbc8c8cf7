-- GFLOP/s of L.mm with the BLAS core lightning chooses, next to the same products with OpenBLAS's own
-- core detection (a child process started with LIGHTNING_BLAS_CORETYPE=openblas), from the same run.
-- Shapes: 1024^3, and the GEMMs that BasicImageClassifier's convolutions make at batch 64 on 32x32
-- images (im2col: forward W[Cout x Cin*9] @ cols[Cin*9 x B*H*W], and the two backward products).
-- Usage: lua bench/blas_bench.lua [--threads N]
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local L = require "lightning"

local threads = tonumber(arg[2]) or L.get_num_threads()
L.set_num_threads(threads)

local shapes = {
  {"square 1024", 1024, 1024, 1024},
}
local convs = {{"conv1", 3, 32, 32}, {"conv2", 32, 64, 16}, {"conv3", 64, 128, 8}, {"conv4", 128, 256, 4}}
for _, c in ipairs(convs) do
  local name, cin, cout, hw = c[1], c[2], c[3], c[4]
  local n, k = 64 * hw * hw, cin * 9
  shapes[#shapes + 1] = {name .. " fwd", cout, n, k}       -- M, N, K
  shapes[#shapes + 1] = {name .. " dW", cout, k, n}
  shapes[#shapes + 1] = {name .. " dX", k, n, cout}
end
shapes[#shapes + 1] = {"fc1 fwd", 64, 512, 1024}

local function gflops(M, N, K)
  local a, b = L.randn(M, K), L.randn(K, N)
  L.mm(a, b)                                   -- warm up
  local reps, t0 = 0, L.now()
  repeat
    L.mm(a, b)
    reps = reps + 1
  until L.now() - t0 > 0.3 and reps >= 3
  return 2 * M * N * K * reps / (L.now() - t0) / 1e9
end

if arg[1] == "--child" then
  for i, s in ipairs(shapes) do io.write(i, " ", gflops(s[2], s[3], s[4]), "\n") end
  io.write("core ", L.info().blas_core, "\n")
  os.exit(0)
end

local script = debug.getinfo(1, "S").source:sub(2)
local p = assert(io.popen(("LIGHTNING_BLAS_CORETYPE=openblas OPENBLAS_CORETYPE= lua5.4 %q --child %d"):format(script, threads)))
local theirs, their_core = {}, "?"
for line in p:lines() do
  local i, v = line:match("^(%d+) (%S+)$")
  if i then theirs[tonumber(i)] = tonumber(v) else their_core = line:match("^core (%S+)") or their_core end
end
p:close()

local info = L.info()
print(("CPU: %s (%s), %d threads"):format(info.cpu.model, info.cpu.simd, threads))
print(("%-12s %6s %6s %6s   %10s %10s  %5s"):format("product", "M", "N", "K",
  info.blas_core, their_core .. "*", "ratio"))
for i, s in ipairs(shapes) do
  local ours = gflops(s[2], s[3], s[4])
  local other = theirs[i] or 0 / 0
  print(("%-12s %6d %6d %6d   %10.1f %10.1f  %5.2f"):format(s[1], s[2], s[3], s[4], ours, other, ours / other))
end
print("GFLOP/s; * = the core OpenBLAS 0.3.21 picks by itself (LIGHTNING_BLAS_CORETYPE=openblas)")
