-- Our training and evaluation throughput with one build of lightning against another, in pairs
-- (bench/paired.lua): each round is one `bench/train_step.lua --round` in a process of its own with
-- that build's module, the two builds alternating. What it was made for: oneDNN 2.6 (Debian's) against
-- 3.x (cmake -DLIGHTNING_DNNL_ROOT, docs/development.md), as docs/performance.md reports.
--   lua5.4 bench/builds.lua BUILD_A BUILD_B [--precision 32|bf16-mixed] [--batch 64] [--size 32]
--                           [--threads 2] [--seconds 3] [--pairs 5]
-- Ratios are A / B: > 1 means build A is faster.
local paired = dofile("bench/paired.lua")

local usage = "lua5.4 bench/builds.lua BUILD_A BUILD_B [--precision 32|bf16-mixed] [--batch 64] [--size 32] "
  .. "[--threads 2] [--seconds 3] [--pairs 5]"
local opts = paired.options(arg, {a = "", b = "", precision = "32", batch = 64, size = 32, threads = 2, seconds = 3,
  pairs = 5}, {"a", "b"}, usage)
if opts.a == "" or opts.b == "" then error("usage: " .. usage, 0) end
assert(opts.precision == "32" or opts.precision == "bf16-mixed", "--precision must be 32 or bf16-mixed")

local function round(build)
  return function()
    local cmd = ("lua5.4 bench/train_step.lua --round --build %s --precision %s --batch %d --size %d --threads %d "
      .. "--seconds %g"):format(build, opts.precision, opts.batch, opts.size, opts.threads, opts.seconds)
    local out = paired.command(cmd)
    return assert(out.train and out, "no training rate from " .. cmd)
  end
end

local result = paired.run(opts.pairs, round(opts.a), round(opts.b))
local function name(build, r) return ("%s (oneDNN %s)"):format(build, r.onednn or "none") end
print(("BasicImageClassifier, batch %d, %dx%dx%d, %d threads, %s"):format(opts.batch, 3, opts.size, opts.size,
  opts.threads, opts.precision == "bf16-mixed" and "bf16-mixed" or "float32"))
local names = {ours = name(opts.a, result.pairs[1].ours), peer = name(opts.b, result.pairs[1].peer)}
paired.report(result, {"train", "eval"}, names)
local function peak(side)
  local mb = 0
  for _, p in ipairs(result.pairs) do mb = math.max(mb, p[side].peak_rss_mb or 0) end
  return mb
end
print(("peak resident memory: %s %.0f MB, %s %.0f MB"):format(names.ours, peak("ours"), names.peer, peak("peer")))
