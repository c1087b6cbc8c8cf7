-- Training and evaluation throughput of BasicImageClassifier in lightning, next to PyTorch running the
-- same model (bench/torch_reference.py) from the same run.
--   lua bench/train_step.lua [--threads 2] [--batch 64] [--size 32] [--seconds 5] [--no-peer]
--                            [--precision 32|bf16-mixed] [--memory STEPS]
-- A training step is forward, cross-entropy, backward and an Adam step; eval is a forward pass in eval mode.
-- --precision bf16-mixed measures lightning in float32 and in bf16-mixed, and PyTorch with bf16 autocast
-- and channels_last (its fastest CPU mode), and the machine's bf16 matrix-product rate (PyTorch's
-- oneDNN matmul). --memory STEPS runs that many training steps at the precision given and prints the
-- resident memory (peak included).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build.luarocks/?.so;" .. package.cpath   -- the tree's build, as the specs use
local L = require "lightning"

local opts = {threads = 2, batch = 64, size = 32, seconds = 5, peer = true, memory = nil, precision = "32"}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--no-peer" then opts.peer = false
  else
    local key = a:match("^%-%-(%w+)$")
    assert(key and opts[key] ~= nil or key == "memory", "unknown argument " .. a)
    opts[key] = key == "precision" and arg[i + 1] or tonumber(arg[i + 1])
    i = i + 1
  end
  i = i + 1
end
assert(opts.precision == "32" or opts.precision == "bf16-mixed", "--precision must be 32 or bf16-mixed")
local mixed = opts.precision == "bf16-mixed"

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
  model:set_precision(mixed and "bf16" or "fp32")
  model:train()
  local marks = {}
  for step = 1, opts.memory do
    train_step()
    if step == 100 or step % 500 == 0 then marks[#marks + 1] = ("step %d: %.0f MB"):format(step, status("VmRSS")) end
  end
  print(("resident memory (%s): "):format(opts.precision) .. table.concat(marks, ", ") ..
    (", peak %.0f MB"):format(status("VmHWM")))
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
  local cmd = ("OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/torch_reference.py --threads %d --batch %d --size %d " ..
    "--seconds %g --precision %s"):format(opts.threads, opts.batch, opts.size, opts.seconds, mixed and "bf16" or "fp32")
  local p = io.popen(cmd)
  for line in p:lines() do
    local k, v = line:match("^(%S+) (%S+)$")
    if k then peer[k] = tonumber(v) or v end
  end
  p:close()
end

local function measure(precision)
  model:set_precision(precision)
  model:train()
  local train = rate(train_step)
  model:eval()
  return train, rate(eval_step)
end

local train32, eval32 = measure("fp32")
local train16, eval16
if mixed then train16, eval16 = measure("bf16") end

local a, b = L.randn(1024, 1024), L.randn(1024, 1024)
L.mm(a, b)
local t0, reps = L.now(), 0
repeat L.mm(a, b) reps = reps + 1 until L.now() - t0 > 0.5
local sgemm = 2 * 1024 ^ 3 * reps / (L.now() - t0) / 1e9

local fwd, conv1_dx = forward_flops()
local info = L.info()
print(("BasicImageClassifier, batch %d, %dx%dx%d, %d threads, %s (%s, BLAS core %s%s)"):format(opts.batch, 3,
  opts.size, opts.size, opts.threads, info.cpu.model, info.cpu.simd, info.blas_core,
  info.mixed_precision and (", oneDNN %s %s"):format(info.mixed_precision.version, info.mixed_precision.isa) or ""))
local peer_name = "PyTorch " .. (peer.version or "-") .. (mixed and " bf16" or "")
print(("%-12s %14s %20s %8s %18s"):format("", "lightning", peer_name, "ratio", "lightning GFLOP/s"))
local function line(name, ours, theirs, flops)
  print(("%-12s %10.0f img/s %16s img/s %8s %18.0f"):format(name, ours, theirs and ("%.0f"):format(theirs) or "-",
    theirs and ("%.2fx"):format(ours / theirs) or "-", ours * flops / 1e9))
end
local train_flops = 3 * fwd - conv1_dx
if mixed then
  line("train fp32", train32, nil, train_flops)
  line("train bf16", train16, peer.train, train_flops)
  line("eval fp32", eval32, nil, fwd)
  line("eval bf16", eval16, peer.eval, fwd)
  print(("bf16-mixed over our float32: training %.2fx, eval %.2fx"):format(train16 / train32, eval16 / eval32))
else
  line("train", train32, peer.train, train_flops)
  line("eval", eval32, peer.eval, fwd)
end
print(("sgemm 1024^3 on this machine: %.0f GFLOP/s%s; training counts 3x the forward FLOPs (%.1f MFLOP/image)")
  :format(sgemm, peer.bf16_mm_gflops and (", bf16 matmul 1024^3 (oneDNN via PyTorch): %.0f GFLOP/s"):format(
    peer.bf16_mm_gflops) or "", fwd / 1e6))
