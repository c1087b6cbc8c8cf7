-- How fast the airbench94 recipe can possibly train on this CPU: its convolutions' arithmetic, counted
-- from the network (L.models.AirNet) and the recipe's schedule, at the CPU's measured bf16 peak
-- (bench/cpu_peak.c, compiled and run here), against measured wall times of whole runs.
--   lua bench/airbench_bound.lua [--torch_seconds S] [--ours_seconds S] [--peak GFLOPS] [--runs 5]
-- Without --peak it compiles bench/cpu_peak.c with cc and takes the best of --runs runs on every core
-- (AVX512_BF16's peak; on a CPU with AMX, which oneDNN uses there, it asks for --peak instead).
-- The count is a lower bound on the work: forward, input gradient and weight gradient of each 3x3
-- convolution, but the whitening convolution's forward only (its weight is fixed) and no input
-- gradient for block1.conv1 (its input needs one only while the whitening bias trains, the first 3
-- epochs); no BatchNorm, GELU, pooling, loss, optimizer, data or evaluation. So no implementation of
-- the recipe, whatever its kernels, trains faster than the bound on this CPU.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath
local L = require "lightning"
local paired = dofile("bench/paired.lua")

local USAGE = "lua bench/airbench_bound.lua [--torch_seconds S] [--ours_seconds S] [--peak GFLOPS] [--runs N]"
local opts = paired.options(arg, {torch_seconds = 0, ours_seconds = 0, peak = 0, runs = 5}, {}, USAGE)

-- ---- the work: multiply-adds per training image, from the network's own layers ----
local model = L.models.AirNet{}
model:eval()
model:forward(L.randn(2, 3, 32, 32))
local convs = {}
for _, m in ipairs(model:modules()) do
  if L.class.name_of(m) == "Conv2d" then convs[#convs + 1] = m end
end
local per_image = 0   -- multiply-adds of one training image
print("convolution                out (C x H x W)   forward MACs/image   passes")
for i, c in ipairs(convs) do
  local w, out = c.weight:size(), c.output:size()
  local macs = out[2] * out[3] * out[4] * w[2] * w[3] * w[4]
  -- whiten: forward only; block1.conv1: forward and weight gradient; the others: all three
  local passes = i == 1 and 1 or i == 2 and 2 or 3
  per_image = per_image + passes * macs
  print(("%-26s %4d x %2d x %2d   %14d   %d"):format(("conv %d (%dx%d, %d -> %d)"):format(i, w[3], w[4], w[2], w[1]),
    out[2], out[3], out[4], macs, passes))
end
local recipe = require("lightning.recipes").get("airbench94")
local batch, epochs = recipe.defaults.batch_size, recipe.defaults.max_epochs
local steps = math.floor(epochs * ((50000 - recipe.defaults.val_split) // batch))
local flops = 2 * per_image * steps * batch
print(("%.1f MFLOP per training image; %d steps of %d images (%.1f epochs): %.3g FLOP in all"):format(
  2 * per_image / 1e6, steps, batch, epochs, flops))

-- ---- the CPU's peak ----
local peak = opts.peak
local mixed = L.info().mixed_precision
if peak == 0 and mixed and mixed.amx_native then
  error("this CPU has AMX, which oneDNN's bf16 convolutions use and bench/cpu_peak.c does not measure: give --peak", 0)
end
if peak == 0 then
  assert(os.execute("cc -O2 -pthread bench/cpu_peak.c -o /tmp/lightning_cpu_peak"), "cannot compile bench/cpu_peak.c")
  local p = io.popen(("/tmp/lightning_cpu_peak 0.5 %d"):format(opts.runs))
  for line in p:lines() do
    print(line)
    local threads, g = line:match("^bf16 vdpbf16ps (%d+) threads?: ([%d.]+) GFLOP/s")
    if g and tonumber(threads) == L.get_num_threads() then peak = tonumber(g) end
  end
  p:close()
  assert(peak > 0, "no bf16 peak measured on every core (a CPU without AVX512_BF16?): give --peak")
end

-- ---- the bound ----
local floor_s = flops / (peak * 1e9)
print(("\nAt %.0f GFLOP/s (bf16, %d threads), the convolutions alone take at least %.0f s"):format(peak,
  L.get_num_threads(), floor_s))
local function against(name, seconds)
  if seconds <= 0 then return end
  print(("%-8s %.0f s measured: %.2fx of it is the floor; the run's average %.0f GFLOP/s is %.0f %% of the peak")
    :format(name, seconds, floor_s / seconds, flops / seconds / 1e9, 100 * flops / seconds / 1e9 / peak))
end
against("PyTorch", opts.torch_seconds)
against("ours", opts.ours_seconds)
if opts.torch_seconds > 0 then
  print(("A run in 0.67x of PyTorch's time (%.0f s) would need %.0f GFLOP/s of convolution arithmetic alone: %.2fx " ..
    "the peak"):format(0.67 * opts.torch_seconds, flops / (0.67 * opts.torch_seconds) / 1e9,
    flops / (0.67 * opts.torch_seconds) / 1e9 / peak))
end
