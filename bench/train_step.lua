-- Training and evaluation throughput of BasicImageClassifier in lightning, next to PyTorch running the
-- same model (bench/torch_reference.py) from the same run.
--   lua bench/train_step.lua [--threads 2] [--batch 64] [--size 32] [--seconds 5] [--no-peer] [--memory STEPS]
-- A training step is forward, cross-entropy, backward and an Adam step; eval is a forward pass in eval mode.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local L = require "lightning"

local opts = {threads = 2, batch = 64, size = 32, seconds = 5, peer = true, memory = nil}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--no-peer" then opts.peer = false
  else
    local key = a:match("^%-%-(%w+)$")
    assert(key and opts[key] ~= nil or key == "memory", "unknown argument " .. a)
    opts[key] = tonumber(arg[i + 1])
    i = i + 1
  end
  i = i + 1
end

L.set_num_threads(opts.threads)
L.manual_seed(0)
local model = L.models.BasicImageClassifier{image_size = opts.size}
local x = L.randn(opts.batch, 3, opts.size, opts.size)
local y = (L.rand(opts.batch) * 10):clamp(0, 9.999):add(1)
for j = 1, opts.batch do y[j] = math.floor(y[j]) end
local crit = L.nn.CrossEntropyLoss()
local opt = L.optim.Adam(model:parameters(), {lr = 1e-3})

local function train_step()
  opt:zero_grad()
  local logits = model:forward(x)
  crit:forward(logits, y)
  model:backward(x, crit:backward(logits, y))
  opt:step()
end

local function eval_step() model:forward(x) end

local function rate(step)
  for _ = 1, 3 do step() end
  local n, t0 = 0, L.now()
  repeat
    step()
    n = n + 1
  until L.now() - t0 >= opts.seconds and n >= 5
  return n * opts.batch / (L.now() - t0)
end

local function status(key)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. key .. ":%s+(%d+) kB")
    if v then return tonumber(v) / 1024 end
  end
end

if opts.memory then
  model:train()
  local marks = {}
  for step = 1, opts.memory do
    train_step()
    if step == 100 or step % 500 == 0 then marks[#marks + 1] = ("step %d: %.0f MB"):format(step, status("VmRSS")) end
  end
  print("resident memory: " .. table.concat(marks, ", ") .. (", peak %.0f MB"):format(status("VmHWM")))
  os.exit(0)
end

-- forward FLOPs per image: convolutions and linear layers (multiply-adds x 2)
local function forward_flops()
  local total, cin, s = 0, 3, opts.size
  for _, cout in ipairs({32, 64, 128, 256}) do
    total = total + 2 * cout * cin * 9 * s * s
    cin, s = cout, s // 2
  end
  local flat = 256 * (opts.size // 16) ^ 2
  return total + 2 * (flat * 512 + 512 * 256 + 256 * 10), 2 * 3 * 32 * 9 * opts.size * opts.size
end

local peer = {}
if opts.peer then
  local cmd = ("OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/torch_reference.py --threads %d --batch %d --size %d --seconds %g"):format(
    opts.threads, opts.batch, opts.size, opts.seconds)
  local p = io.popen(cmd)
  for line in p:lines() do
    local k, v = line:match("^(%S+) (%S+)$")
    if k then peer[k] = tonumber(v) or v end
  end
  p:close()
end

model:train()
local train = rate(train_step)
model:eval()
local eval = rate(eval_step)

local a, b = L.randn(1024, 1024), L.randn(1024, 1024)
L.mm(a, b)
local t0, reps = L.now(), 0
repeat L.mm(a, b) reps = reps + 1 until L.now() - t0 > 0.5
local sgemm = 2 * 1024 ^ 3 * reps / (L.now() - t0) / 1e9

local fwd, conv1_dx = forward_flops()
local info = L.info()
print(("BasicImageClassifier, batch %d, %dx%dx%d, %d threads, %s (%s, BLAS core %s)"):format(opts.batch, 3,
  opts.size, opts.size, opts.threads, info.cpu.model, info.cpu.simd, info.blas_core))
print(("%-6s %14s %14s %7s %22s"):format("", "lightning", "PyTorch " .. (peer.version or "-"), "ratio", "lightning GFLOP/s"))
local function line(name, ours, theirs, flops)
  print(("%-6s %10.0f img/s %10s img/s %7s %14.0f"):format(name, ours, theirs and ("%.0f"):format(theirs) or "-",
    theirs and ("%.2fx"):format(ours / theirs) or "-", ours * flops / 1e9))
end
line("train", train, peer.train, 3 * fwd - conv1_dx)
line("eval", eval, peer.eval, fwd)
print(("sgemm 1024^3 on this machine: %.0f GFLOP/s; training counts 3x the forward FLOPs (%.1f MFLOP/image)"):format(sgemm,
  fwd / 1e6))
