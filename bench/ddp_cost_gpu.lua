-- The cost of data-parallel training on GPUs, on paper (docs/distributed.md, "On GPUs: NCCL, on paper"):
-- NCCL's all-reduce of S bytes among N GPUs takes
--   T_allreduce = alpha + 2(N-1)/N S / B
-- with B the bus bandwidth NCCL reaches (nccl-tests' "busbw") and alpha its latency for a small message
-- (one call, whatever its algorithm: rings for large messages, trees or NVLink SHARP for small). A step
-- takes about forward + backward + the part of the last bucket's all-reduce that the pass does not
-- hide, plus alpha for every bucket (a GPU launch and a handshake each, which the pass hides too while
-- it lasts). No figure here is measured: the GPU constants are NVIDIA's published orders of magnitude
-- (options below), and the backward pass on a GPU is an option too (the default: PyTorch 2.x eager's
-- reference model on an H100, 5.0 ms a step at batch 64 as the GPU issue measured, two thirds of it
-- the backward pass), until the device check measures ours.
--   lua5.4 bench/ddp_cost_gpu.lua [--backward_ms 3.3] [--nvlink_gbs 360] [--node_alpha_us 15]
--                                 [--ib_gbs 45] [--cluster_alpha_us 50]
-- Each row twice: with that backward pass, and with a tenth of it (a step captured as a CUDA graph,
-- issue 21's aim, is that much shorter for models this small); the last columns give the bucket size
-- (of 0.25 to 25 MB) that leaves the least waiting.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local paired = dofile("bench/paired.lua")

local opts = paired.options(arg, {backward_ms = 3.3, nvlink_gbs = 360, node_alpha_us = 15, ib_gbs = 45,
  cluster_alpha_us = 50},
  nil, "lua5.4 bench/ddp_cost_gpu.lua [--backward_ms B] [--nvlink_gbs G] [--node_alpha_us A] [--ib_gbs G] " ..
  "[--cluster_alpha_us A]")

-- float32 gradient bytes of the two models (L.models.*:num_parameters() x 4)
local MODELS = {
  {"BasicImageClassifier 32x32 (the reference)", 1049610 * 4},
  {"AirNet (airbench94)", 1972792 * 4},
}
-- {GPUs, name, alpha (s), bus bandwidth (bytes/s)}. Across nodes with one 400 Gbit/s NIC per GPU (a DGX
-- H100's eight), NCCL runs one ring per NIC, each carrying an eighth of the bytes, so the bus bandwidth
-- is about 8 x a NIC's (capped by NVLink's); the latency is the inter-node hops'.
local SYSTEMS = {
  {8, "8 GPUs, one node (NVLink)", opts.node_alpha_us * 1e-6, opts.nvlink_gbs * 1e9},
  {32, "4 x 8 GPUs (400 Gbit/s NIC per GPU)", opts.cluster_alpha_us * 1e-6, math.min(8 * opts.ib_gbs, opts.nvlink_gbs) * 1e9},
  {32, "4 x 8 GPUs (one 400 Gbit/s NIC per node)", opts.cluster_alpha_us * 1e-6, opts.ib_gbs * 1e9},
}

local function allreduce_s(n, bytes, alpha, busbw) return alpha + 2 * (n - 1) / n * bytes / busbw end

-- Seconds of a step's all-reduce that the backward pass does not hide, with buckets of bucket_mb.
local function exposed_s(bytes, system, backward, bucket_mb)
  local n, alpha, busbw = system[1], system[3], system[4]
  local buckets = math.max(1, math.ceil(bytes / (bucket_mb * 1e6)))
  -- every bucket but the last (the first layers' gradients, ready when the pass ends) can run during
  -- the pass; what the pass cannot hide of all of them waits too
  local last = allreduce_s(n, bytes / buckets, alpha, busbw)
  local all = buckets * alpha + 2 * (n - 1) / n * bytes / busbw
  return math.max(last, all - backward), buckets
end

local BUCKETS_MB = {0.25, 0.5, 1, 2, 4, 25}
print(("alpha %g us in a node, %g us across nodes; NVLink %g GB/s, a NIC %g GB/s; a step: 1.5 x the backward "
  .. "pass + what waits"):format(opts.node_alpha_us, opts.cluster_alpha_us, opts.nvlink_gbs, opts.ib_gbs))
print("| model (gradients) | system | backward | all-reduce, one bucket | waits, one bucket (share of a step) | "
  .. "best buckets | waits then (share) |")
print("|---|---|---|---|---|---|---|")
for _, m in ipairs(MODELS) do
  for _, s in ipairs(SYSTEMS) do
    for _, backward_ms in ipairs({opts.backward_ms, opts.backward_ms / 10}) do
      local backward = backward_ms / 1e3
      local one = exposed_s(m[2], s, backward, math.huge)
      local best, best_mb = math.huge, nil
      for _, mb in ipairs(BUCKETS_MB) do
        local e = exposed_s(m[2], s, backward, mb)
        if e < best - 1e-9 then best, best_mb = e, mb end
      end
      local function share(e) return 100 * e / (1.5 * backward + e) end
      print(("| %s (%.2f MB) | %s | %.2f ms | %.1f us | %.1f us (%.1f %%) | %g MB | %.1f us (%.1f %%) |"):format(m[1],
        m[2] / 1e6, s[2], backward_ms, 1e6 * allreduce_s(s[1], m[2], s[3], s[4]), 1e6 * one, share(one), best_mb,
        1e6 * best, share(best)))
    end
  end
end
