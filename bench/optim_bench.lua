-- Milliseconds per optimizer step over the reference model's parameters (bench/optim_shapes.txt,
-- about 1.05 M values in 26 tensors), next to PyTorch's torch.optim on the same shapes and thread count,
-- measured in the same run (bench/optim_bench_torch.py with Debian's /usr/bin/python3).
-- Usage (from the repository root): lua bench/optim_bench.lua [--threads N] [--seconds S]
-- (S: seconds per case and side, default 3; the best of 10 rounds counts)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local L = require "lightning"

local threads, seconds = L.get_num_threads(), 3.0
for i = 1, #arg, 2 do
  if arg[i] == "--threads" then threads = assert(tonumber(arg[i + 1]), "--threads N")
  elseif arg[i] == "--seconds" then seconds = assert(tonumber(arg[i + 1]), "--seconds S")
  else error("usage: lua bench/optim_bench.lua [--threads N] [--seconds S]") end
end
L.set_num_threads(threads)

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
    until L.now() - t0 > seconds / rounds and reps >= 3
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

local mine = {}
local cases = {
  {"adam", function() return L.optim.Adam(params, {lr = 1e-3}) end},
  {"adamw", function() return L.optim.AdamW(params, {lr = 1e-3}) end},
  {"sgd_momentum", function() return L.optim.SGD(params, {lr = 0.01, momentum = 0.9, nesterov = true}) end},
}
for _, c in ipairs(cases) do
  local opt = c[2]()
  mine[c[1]] = ms_per_step(function() opt:step() end)
end
mine.clip_grad_norm = ms_per_step(function() L.optim.clip_grad_norm(params, 1e9) end)

local peer = {}
local cmd = ("/usr/bin/python3 bench/optim_bench_torch.py %d %g 2>/dev/null"):format(threads, seconds)
local pipe = io.popen(cmd)
for line in pipe:lines() do
  local name, ms = line:match("^(%S+) (%S+)$")
  if name then peer[name] = tonumber(ms) end
end
pipe:close()

print(("optimizer step over %d tensors, %d values; %d thread(s); ms per step (lower is better)"):format(#params, count, threads))
print(("%-16s %10s %10s %8s"):format("case", "lightning", "pytorch", "speedup"))
local function row(name, peer_name)
  local p = peer[peer_name or name]
  print(("%-16s %10.3f %10s %8s"):format(peer_name and name .. "*" or name, mine[name], p and ("%.3f"):format(p) or "n/a",
    p and ("%.2fx"):format(p / mine[name]) or ""))
end
row("adam")
row("adam", "adam_foreach")
row("adamw")
row("sgd_momentum")
row("clip_grad_norm")
print("* against torch.optim.Adam(foreach = true), PyTorch's multi-tensor variant (the default is foreach = false in 1.13)")
if next(peer) == nil then print("(PyTorch did not run: is python3-torch installed at /usr/bin/python3?)") end
