-- bench/ddp_bench.lua --hosts 2,3: data-parallel training across hosts over slow and lossy links.
-- The hosts are network namespaces of this machine (tools/netns_hosts.lua; needs root), one process
-- of one thread each, joined by a bridge; the links are limited with tc tbf (none, 10, 1 and 0.1
-- Gbit/s each way) and then made to lose packets (nftables, no rate limit). Per host count and link:
-- images/s for each bucket size (--buckets, MB: the DDP strategy's bucket_cap_mb), the all-reduce wait
-- after the backward pass, how much of the gradients the pass hid, and the efficiency against one
-- process x 2 threads at the same global batch on this machine (its 2 cores), paired (bench/paired.lua:
-- a round of every bucket size, then the single process; the order alternates). The best bucket size
-- per link is the one with the highest median images/s. Then the all-reduce alone, of 1 KB (its
-- latency) and of the model's 4.2 MB, per link: what docs/distributed.md's cost model is fitted to.
--   flock /tmp/bench.lock lua5.4 bench/ddp_bench.lua --hosts 2,3 --pairs 3 --steps 8 --batch 96
-- Every namespace (their qdiscs and nftables tables with them) is removed at the end, also after an
-- error; processes are ended by PID.
local L = require "lightning"
local json = require "lightning.util.json"
local N = dofile("tools/netns_hosts.lua")
local paired = dofile("bench/paired.lua")
local launch = L.distributed.launch

local RATES = {{nil, "none"}, {"10gbit", "10 Gbit/s"}, {"1gbit", "1 Gbit/s"}, {"100mbit", "0.1 Gbit/s"}}
local LOSSES = {0.01, 0.1}
local BUCKETS = {0.25, 1, 4, 25}
local ROOT = io.popen("pwd"):read("l")

-- (the processes on the hosts find the tree's modules by these)
local ENV = {"LUA_PATH_5_4=" .. ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;",
  "LUA_CPATH_5_4=" .. ROOT .. "/build.luarocks/?.so;;"}

-- The RESULT of a worker's command line, or nil and its output (failed, or past `timeout` seconds).
local function run(argv, timeout)
  local line = ("timeout -k 5 %d %s 2>&1"):format(timeout, launch.shell_words(argv))
  local p = io.popen(line)
  local text = p:read("a")
  p:close()
  local result = text:match("RESULT (%b{})")
  if not result then return nil, text end
  return json.decode(result)
end

local function worker_args(o, bucket)
  return {"--worker", "train", "--batch", tostring(o.batch), "--steps", tostring(o.steps), "--bucket", tostring(bucket),
    "--wire", o.wire}
end

local function single(o)
  local argv = {"env", "OMP_NUM_THREADS=2", "lua5.4", ROOT .. "/bench/ddp_bench.lua", "--threads", "2"}
  for _, w in ipairs(worker_args(o, 1)) do argv[#argv + 1] = w end
  local r, text = run(argv, 120)
  if not r then error("the single process failed:\n" .. text, 0) end
  return {images_per_s = r.images_per_s}
end

-- One round of every bucket size on the network as it is; a run past its time counts as missing.
local function ddp_round(net, o)
  local figures = {}
  for _, b in ipairs(o.buckets) do
    local r, text = run(net:command(1, ROOT .. "/bench/ddp_bench.lua", worker_args(o, b), {env = ENV}), o.timeout)
    if r then
      figures["ips" .. b], figures["wait" .. b], figures["hidden" .. b] = r.images_per_s, r.wait_ms, 100 * r.hidden
      figures["backward" .. b] = r.backward_ms
      figures.bytes = r.bytes
    else
      print(("  (%g MB buckets: no result within %d s: %s)"):format(b, o.timeout, (text:match("[^\n]*\n?$") or "")))
    end
  end
  return figures
end

local PARAMS = 1049610   -- (the model's parameters: its gradients' float32 elements)

-- The all-reduce of numel floats alone, 3 runs: a table row.
local function allreduce(net, n, label, numel)
  local ms = {}
  for r = 1, 3 do
    local reps = numel > 1e5 and 10 or 200
    local res = run(net:command(1, ROOT .. "/bench/ddp_bench.lua", {"--worker", "allreduce", "--numel", tostring(numel),
      "--reps", tostring(reps)}, {env = ENV}), 60)
    ms[r] = res and res.ms
  end
  local runs = {}
  for r, v in ipairs(ms) do runs[r] = ("%.2f"):format(v) end
  return ("| %d | %s | %d | %.2f (%s) |"):format(n, label, 4 * numel, paired.median(ms) or 0 / 0, table.concat(runs, ", "))
end

local function med(result, key)
  local list = {}
  for _, p in ipairs(result.pairs) do if p.ours[key] then list[#list + 1] = p.ours[key] end end
  return paired.median(list), list
end

local function num(v) return v and (v >= 100 and "%.0f" or v >= 10 and "%.1f" or "%.2f"):format(v) or "-" end

-- The rows of one link: per bucket size, medians and the paired efficiency; the best bucket marked.
local function report(hosts, label, result, o)
  local best, best_ips
  for _, b in ipairs(o.buckets) do
    local ips = med(result, "ips" .. b)
    if ips and (not best_ips or ips > best_ips) then best, best_ips = b, ips end
  end
  for _, b in ipairs(o.buckets) do
    local ips, list = med(result, "ips" .. b)
    local _, eff, lo, hi = paired.ratios(result, {ours = "ips" .. b, peer = "images_per_s"})
    print(("| %d | %s | %g%s | %s | %s | %s | %s | %s | %d/%d |"):format(hosts, label, b, b == best and " (best)" or "",
      num(ips), eff and ("%.2f (%.2f-%.2f)"):format(eff, lo, hi) or "-", num(med(result, "wait" .. b)),
      num(med(result, "backward" .. b)), num(med(result, "hidden" .. b)), #list, #result.pairs))
  end
end

return function(opts)
  assert(L.distributed.available(), L.distributed.UNAVAILABLE)
  local why = N.unavailable()
  if why then error("bench/ddp_bench.lua --hosts: " .. why, 0) end
  local o = {batch = opts.batch, steps = opts.steps, pairs = opts.pairs, timeout = 60, buckets = BUCKETS,
    wire = opts.wire}
  local rates = RATES
  if opts.links then   -- (e.g. "none,1gbit": those links only, and no lossy ones)
    rates = {}
    for _, rate in ipairs(RATES) do
      if opts.links:find((rate[1] or "none"), 1, true) then rates[#rates + 1] = rate end
    end
  end
  local counts = {}
  for n in opts.hosts:gmatch("%d+") do counts[#counts + 1] = tonumber(n) end
  print(("lightning DDP across namespace hosts: BasicImageClassifier 32x32, global batch %d, %d steps a run, " ..
    "%d pairs; 1 process x 1 thread per host against 1 process x 2 threads; gradients sent as %s"):format(o.batch,
    o.steps, o.pairs, o.wire))
  print(("%s; %d logical CPUs"):format(L.info().cpu.model, L.info().cpu.logical_cpus))
  print("| hosts | link | bucket MB | images/s | efficiency vs 1 process (pairs) | all-reduce wait ms | backward ms " ..
    "| % hidden | runs |")
  print("|---|---|---|---|---|---|---|---|---|")
  local started = L.now()
  local alone = {}
  for _, n in ipairs(counts) do
    local net = N.create(n)
    local ok, err = pcall(function()
      for _, rate in ipairs(rates) do
        net:rate(rate[1])
        local result = paired.run(o.pairs, function() return ddp_round(net, o) end, function() return single(o) end)
        report(n, rate[2], result, o)
      end
      net:rate(nil)
      for _, rate in ipairs(rates) do
        net:rate(rate[1])
        for _, numel in ipairs({256, PARAMS}) do alone[#alone + 1] = allreduce(net, n, rate[2], numel) end
      end
      net:rate(nil)
      local nft = os.execute("command -v nft >/dev/null 2>&1")
      if not nft then print("(nft is not installed (Debian: nftables): the rows with packet loss are left out)") end
      for _, p in ipairs(nft and not opts.links and LOSSES or {}) do
        net:loss(p)
        local lossy = {batch = o.batch, steps = o.steps, pairs = o.pairs, timeout = o.timeout, buckets = {1}}
        local result = paired.run(o.pairs, function() return ddp_round(net, lossy) end, function() return single(o) end)
        report(n, ("%g %% loss"):format(100 * p), result, lossy)
      end
    end)
    net:teardown()
    if not ok then error(err, 0) end
  end
  print("")
  print("The all-reduce alone (the median of 3 runs of --reps each, after 3 untimed):")
  print("| hosts | link | bytes | ms per all-reduce (runs) |")
  print("|---|---|---|---|")
  for _, line in ipairs(alone) do print(line) end
  print(("(%.0f s in all)"):format(L.now() - started))
end
