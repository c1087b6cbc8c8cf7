-- GFLOP/s of L.mm with the BLAS core lightning chooses, next to the same products with OpenBLAS's own
-- core detection (a child process started with LIGHTNING_BLAS_CORETYPE=openblas, one per round), in
-- pairs (bench/paired.lua): the two alternate in short rounds, each pair is printed, and per product the
-- median of the per-pair ratios ours / OpenBLAS's choice (> 1: ours is faster) with their range.
-- Shapes: 1024^3, and the GEMMs that BasicImageClassifier's convolutions make at batch 64 on 32x32
-- images (im2col: forward W[Cout x Cin*9] @ cols[Cin*9 x B*H*W], and the two backward products).
-- Usage: lua bench/blas_bench.lua [--threads N] [--seconds 0.3] [--pairs 5]   (--seconds: per product and round)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath   -- the tree's build, as the specs use
local L = require "lightning"
local paired = dofile("bench/paired.lua")

local USAGE = "lua bench/blas_bench.lua [--threads N] [--seconds 0.3] [--pairs 5]"
local opts = paired.options(arg, {threads = L.get_num_threads(), seconds = 0.3, pairs = 5, child = 0}, nil, USAGE)
L.set_num_threads(opts.threads)

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
  until L.now() - t0 > opts.seconds and reps >= 3
  return 2 * M * N * K * reps / (L.now() - t0) / 1e9
end

-- figures by product: "square_1024", "conv1_fwd", ...
local function key(shape) return (shape[1]:gsub(" ", "_")) end

local function round()
  local out = {}
  for _, s in ipairs(shapes) do out[key(s)] = gflops(s[2], s[3], s[4]) end
  return out
end

if opts.child == 1 then   -- the peer's round: "name value" lines
  for name, v in pairs(round()) do io.write(name, " ", v, "\n") end
  io.write("core ", L.info().blas_core, "\n")
  os.exit(0)
end

local script = debug.getinfo(1, "S").source:sub(2)
local function peer_round()
  return paired.command(("LIGHTNING_BLAS_CORETYPE=openblas OPENBLAS_CORETYPE= lua5.4 %q --child 1 --threads %d " ..
    "--seconds %g"):format(script, opts.threads, opts.seconds))
end

local info = L.info()
print(("CPU: %s (%s), %d threads; GFLOP/s of each product over %g s per round"):format(info.cpu.model, info.cpu.simd,
  opts.threads, opts.seconds))
local result = paired.run(opts.pairs, round, peer_round)
local rows = {}
for _, s in ipairs(shapes) do rows[#rows + 1] = {ours = key(s), label = ("%s %dx%dx%d"):format(s[1], s[2], s[3], s[4])} end
paired.report(result, rows, {ours = "lightning's " .. info.blas_core, peer = "OpenBLAS's " .. result.pairs[1].peer.core},
  {unit = "GFLOP/s"})
print("products M x N x K; OpenBLAS's: the core OpenBLAS picks by itself (LIGHTNING_BLAS_CORETYPE=openblas)")
