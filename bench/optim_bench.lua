-- Milliseconds per optimizer step over the reference model's parameters (bench/optim_shapes.txt,
-- about 1.05 M values in 26 tensors), next to PyTorch's torch.optim on the same shapes and thread count
-- (bench/optim_bench_torch.py), in pairs (bench/paired.lua): ours and the peer alternate in short rounds,
-- each pair is printed, and per case the median of the per-pair ratios PyTorch's time / ours (> 1: ours
-- is faster) with their range.
-- "adam flat" is ours over the same tensors flattened (Module:flatten_parameters), one update for all.
-- Usage (from the repository root):
--   lua bench/optim_bench.lua [--threads N] [--seconds 1] [--pairs 5] [--peer torch|torch1.13|none]
-- --seconds: per case, side and round (the best of 10 slices of it counts); --peer torch is PyTorch 2.x
-- from the peers' venv (bench/setup_peers.sh), torch1.13 Debian's python3-torch.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath   -- the tree's build, as the specs use
local L = require "lightning"

local paired = dofile("bench/paired.lua")
local USAGE = "lua bench/optim_bench.lua [--threads N] [--seconds S] [--pairs 5] [--peer torch|torch1.13|none]"
local opts = paired.options(arg, {threads = L.get_num_threads(), seconds = 1, pairs = 5, peer = "torch"}, nil, USAGE)
L.set_num_threads(opts.threads)
local python, no_peer = paired.python(opts.peer)

local function read_shapes()
  local shapes = {}
  for line in io.lines("bench/optim_shapes.txt") do
    if line:match("%S") and not line:match("^#") then
      local dims = {}
      for d in line:gmatch("%s(%d+)") do dims[#dims + 1] = tonumber(d) end
      shapes[#shapes + 1] = dims
    end
  end
  return shapes
end

-- The best of `rounds` timings of seconds / rounds each: the machine is shared, and the best round is
-- the one least disturbed by other work. The PyTorch side measures the same way.
local function ms_per_step(step, rounds)
  rounds = rounds or 10
  for _ = 1, 5 do step() end
  local best = math.huge
  for _ = 1, rounds do
    local reps, t0 = 0, L.now()
    repeat
      step()
      reps = reps + 1
    until L.now() - t0 > opts.seconds / rounds and reps >= 3
    best = math.min(best, (L.now() - t0) / reps * 1e3)
  end
  return best
end

L.manual_seed(0)
local params, count = {}, 0
for i, shape in ipairs(read_shapes()) do
  params[i] = L.randn(shape)
  params[i].grad = L.randn(shape):mul(1e-3)
  count = count + params[i]:numel()
end

-- the same tensors flattened (Module:flatten_parameters' buffers): the optimizers step them in one update
local flat_params = {}
for i, p in ipairs(params) do
  flat_params[i] = p:clone()
  flat_params[i].grad = p.grad:clone()
end
require("lightning.nn.flat").flatten(flat_params, "optim_bench")

local cases = {
  {"adam", function() return L.optim.Adam(params, {lr = 1e-3}) end},
  {"adam_flat", function() return L.optim.Adam(flat_params, {lr = 1e-3}) end},
  {"adamw", function() return L.optim.AdamW(params, {lr = 1e-3}) end},
  {"sgd_momentum", function() return L.optim.SGD(params, {lr = 0.01, momentum = 0.9, nesterov = true}) end},
}
local function our_round()
  local mine = {}
  for _, c in ipairs(cases) do
    local opt = c[2]()
    mine[c[1]] = ms_per_step(function() opt:step() end)
  end
  mine.clip_grad_norm = ms_per_step(function() L.optim.clip_grad_norm(params, 1e9) end)
  return mine
end

local function peer_round()
  return paired.command(("%s bench/optim_bench_torch.py %d %g"):format(python, opts.threads, opts.seconds))
end

print(("optimizer step over %d tensors, %d values; %d thread(s); %s; ms per step, best of 10 slices of %g s per " ..
  "case and round"):format(#params, count, opts.threads, L.info().cpu.model, opts.seconds))
if not python then print(no_peer) end
local result = paired.run(opts.pairs, our_round, python and peer_round)
local peer_name = python and ("PyTorch %s"):format(result.pairs[1].peer.version) or "PyTorch"
paired.report(result, {"adam", {ours = "adam", peer = "adam_foreach", label = "adam*"},
  {ours = "adam_flat", peer = "adam_foreach", label = "adam flat*"}, "adamw", "sgd_momentum", "clip_grad_norm"},
  {ours = "lightning", peer = peer_name}, {unit = "ms", lower = true})
print("* against torch.optim.Adam(foreach = true), PyTorch's multi-tensor variant; 'adam flat': ours over the " ..
  "tensors flattened (one update for all of them)")
