-- The cost of data-parallel training at scale, on paper (docs/distributed.md, "The cost at scale"): a
-- ring all-reduce moves 2(N-1)/N of the gradient bytes S per process and step in 2(N-1) steps, so
--   T_allreduce(N, R) = 2(N-1) alpha + 2(N-1)/N S (1 / (eta R) + 1 / H)
-- with alpha the latency of one step, eta the share of the line rate R that the transfers reach and H
-- what a host's TCP stack moves per second by itself (all fitted to bench/ddp_bench.lua --hosts;
-- --alpha_ms, --eta and --host_gbps give them). The table gives the time with the link alone (H
-- infinite: hosts whose cores keep up with their network card) and with this machine's H. Against it the model's
-- backward pass on this CPU (1 thread, float32; the median of --reps timed passes after a warm-up), which
-- the buckets' all-reduce overlaps: a step takes forward + backward + max(0, T_allreduce - backward),
-- and data-parallel stops scaling where the all-reduce outlasts the backward pass.
--   flock /tmp/bench.lock lua5.4 bench/ddp_cost.lua [--alpha_ms 0.05] [--eta 0.5] [--host_gbps 2] [--reps 5]
-- Prints each model's parameters and pass times, then per model, batch per process, host count and
-- bandwidth: the all-reduce time, the backward pass and the predicted efficiency (compute / step).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath
local L = require "lightning"
local paired = dofile("bench/paired.lua")

local opts = paired.options(arg, {alpha_ms = 0.05, eta = 0.5, host_gbps = 2, reps = 5}, nil,
  "lua5.4 bench/ddp_cost.lua [--alpha_ms A] [--eta E] [--host_gbps H] [--reps R]")
L.set_num_threads(1)

-- {name, constructor, batches per process: the weak-scaling batch, and the recipe's global batch split N ways}
local MODELS = {
  {"BasicImageClassifier 32x32 (the reference model)", function() return L.models.BasicImageClassifier{image_size = 32} end,
    {64, 16}},
  {"AirNet (airbench94)", function() return L.models.AirNet{} end, {64, 16}},
}
local HOSTS = {8, 16, 64}
local RATES = {{10e9, "10 Gbit/s"}, {100e9, "100 Gbit/s"}}

-- Median forward and backward times (s) of a model at batch b.
local function passes(model, b)
  L.manual_seed(0)
  local x = L.randn(b, 3, 32, 32)
  local fwd, bwd = {}, {}
  for r = 0, opts.reps do
    local t0 = L.now()
    local y = model:forward(x)
    local t1 = L.now()
    model:backward(x, L.ones(y:size()))
    local t2 = L.now()
    if r > 0 then fwd[r], bwd[r] = t1 - t0, t2 - t1 end   -- (the first: a warm-up)
  end
  return paired.median(fwd), paired.median(bwd), math.min(table.unpack(bwd)), math.max(table.unpack(bwd))
end

local function allreduce_s(n, bytes, rate, host)
  return 2 * (n - 1) * opts.alpha_ms / 1e3 + 2 * (n - 1) / n * bytes * (8 / (opts.eta * rate) + (host and 8 / host or 0))
end

print(("%s, 1 thread; alpha %.2f ms per ring step, eta %.2f of the line rate, H %.2f Gbit/s"):format(
  L.info().cpu.model, opts.alpha_ms, opts.eta, opts.host_gbps))
print("| model | batch per process | hosts | link | backward ms | all-reduce ms, link alone | efficiency | " ..
  "all-reduce ms, this machine's H | efficiency |")
print("|---|---|---|---|---|---|---|---|---|")
local lines = {}
for _, m in ipairs(MODELS) do
  local model = m[2]()
  local bytes = 4 * model:num_parameters()
  lines[#lines + 1] = ("%s: %d parameters, %.2f MB of float32 gradients"):format(m[1], model:num_parameters(), bytes / 1e6)
  for _, b in ipairs(m[3]) do
    local fwd, bwd, lo, hi = passes(model, b)
    lines[#lines + 1] = ("  batch %d: forward %.1f ms, backward %.1f ms (%.1f-%.1f) on this CPU, 1 thread"):format(b,
      1e3 * fwd, 1e3 * bwd, 1e3 * lo, 1e3 * hi)
    for _, n in ipairs(HOSTS) do
      for _, r in ipairs(RATES) do
        local cells = {}
        for _, host in ipairs({false, opts.host_gbps * 1e9}) do
          local ar = allreduce_s(n, bytes, r[1], host)
          cells[#cells + 1] = ("%.1f | %.2f"):format(1e3 * ar, (fwd + bwd) / (fwd + bwd + math.max(0, ar - bwd)))
        end
        print(("| %s | %d | %d | %s | %.1f | %s |"):format(m[1], b, n, r[2], 1e3 * bwd, table.concat(cells, " | ")))
      end
    end
  end
end
print("")
for _, l in ipairs(lines) do print(l) end
