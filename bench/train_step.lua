-- Training and evaluation throughput of BasicImageClassifier in lightning, next to PyTorch running the
-- same model (bench/torch_reference.py), in pairs (bench/paired.lua): ours and the peer alternate in
-- short rounds and the report is the median of the per-pair ratios with their range.
--   lua bench/train_step.lua [--threads 2] [--batch 64] [--size 32] [--seconds 3] [--pairs 5]
--                            [--precision 32|bf16-mixed] [--peer torch|torch1.13|none] [--compile]
--                            [--memory STEPS] [--build DIR] [--round] [--accelerator cpu|gpu] [--cuda_graph]
-- A training step is forward, cross-entropy, backward and an Adam step; eval is a forward pass in eval mode.
-- --peer torch is PyTorch 2.x from the peers' venv (bench/setup_peers.sh), torch1.13 Debian's
-- python3-torch; --compile runs the peer through torch.compile. --precision bf16-mixed measures
-- lightning in bf16-mixed and PyTorch with bf16 autocast and channels_last (its fastest CPU mode).
-- Peak resident memory is printed beside each. --memory STEPS runs that many training steps at the
-- precision given and prints the resident memory (peak included). --build DIR takes lightning's module
-- from another build than build.luarocks; --round runs one round of ours alone and prints it as
-- "name value" lines (how bench/builds.lua compares two builds, e.g. against oneDNN 2.6 and 3.x).
-- --accelerator gpu runs both on the GPU (PyTorch eager with channels_last in both precisions); a rate
-- then counts a step when the GPU has finished it. --cuda_graph (with it) captures our training step,
-- the optimizer's update included, once in a CUDA graph (L.cuda.CUDAGraph) and replays it: a step is
-- one launch (the peer stays eager).
local build = "build.luarocks"   -- the tree's build, as the specs use
for j = 1, #arg - 1 do
  if arg[j] == "--build" then
    build = arg[j + 1]   -- (without its module there, require would take another one from the search path)
    assert(io.open(build .. "/lightning/core.so"), "--build " .. build .. ": no lightning/core.so there"):close()
  end
end
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
local L = require "lightning"

local paired = dofile("bench/paired.lua")

local opts = {threads = 2, batch = 64, size = 32, seconds = 3, pairs = 5, peer = "torch", memory = nil,
  precision = "32", compile = false, build = build, round = false, accelerator = "cpu", cuda_graph = false}
local STRINGS = {precision = true, peer = true, build = true, accelerator = true}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--no-peer" then opts.peer = "none"
  elseif a == "--compile" then opts.compile = true
  elseif a == "--cuda_graph" then opts.cuda_graph = true
  elseif a == "--round" then opts.round = true
  else
    local key = a:match("^%-%-(%w+)$")
    assert(key and opts[key] ~= nil or key == "memory", "unknown argument " .. a)
    opts[key] = STRINGS[key] and arg[i + 1] or tonumber(arg[i + 1])
    i = i + 1
  end
  i = i + 1
end
assert(opts.precision == "32" or opts.precision == "bf16-mixed", "--precision must be 32 or bf16-mixed")
local mixed = opts.precision == "bf16-mixed"
assert(opts.accelerator == "cpu" or opts.accelerator == "gpu", "--accelerator must be cpu or gpu")
local gpu = opts.accelerator == "gpu"

L.set_num_threads(opts.threads)
L.manual_seed(0)
local model = L.models.BasicImageClassifier{image_size = opts.size}
local x = L.randn(opts.batch, 3, opts.size, opts.size)
local y = (L.rand(opts.batch) * 10):clamp(0, 9.999):add(1)
for j = 1, opts.batch do y[j] = math.floor(y[j]) end
local crit = L.nn.CrossEntropyLoss()
local sync = function() end
if gpu then
  model:to("cuda")
  crit:to("cuda")
  x, y = x:cuda(), y:cuda()
  sync = L.cuda.synchronize
end
local opt = L.optim.Adam(model:parameters(), {lr = 1e-3})

local function train_step()
  opt:zero_grad()
  local logits = model:forward(x)
  crit(logits, y)   -- the loss as a tensor, as the peer's: on a GPU nothing is read back mid-step
  model:backward(x, crit:backward(logits, y))
  opt:step()
end

local function eval_step() model:forward(x) end

if opts.cuda_graph then
  assert(gpu, "--cuda_graph needs --accelerator gpu")
  local eager, graph = train_step, nil
  train_step = function()
    if not graph then
      eager()   -- a warm-up step: the layers' buffers, Adam's state, cuDNN's algorithms
      graph = L.cuda.CUDAGraph()
      graph:capture(eager)
    end
    graph:replay()
  end
end

local function rate(step)
  for _ = 1, 3 do step() end
  sync()
  local n, t0 = 0, L.now()
  repeat
    step()
    n = n + 1
    sync()
  until L.now() - t0 >= opts.seconds and n >= 5
  return n * opts.batch / (L.now() - t0)
end

local status = paired.memory_mb

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

local python, no_peer = paired.python(opts.peer)

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

-- One round of the peer, in its own process: {train = img/s, eval = img/s, peak_rss_mb = ..., version = ...}.
local function peer_round()
  local cmd = ("%s bench/torch_reference.py --threads %d --batch %d --size %d --seconds %g --precision %s%s%s")
    :format(python, opts.threads, opts.batch, opts.size, opts.seconds, mixed and "bf16" or "fp32",
      opts.compile and " --compile" or "", gpu and " --device cuda" or "")
  local out = paired.command(cmd)
  return assert(out.train and out, "the peer printed no training rate: " .. cmd)
end

local function our_round()
  model:set_precision(mixed and "bf16" or "fp32")
  model:train()
  local train = rate(train_step)
  model:eval()
  return {train = train, eval = rate(eval_step)}
end

if opts.round then
  local r, info = our_round(), L.info().mixed_precision
  print(("train %.1f\neval %.1f\npeak_rss_mb %.0f"):format(r.train, r.eval, status("VmHWM")))
  if info then print(("onednn %s-%s"):format(info.version, info.runtime)) end
  os.exit(0)
end

local a, b = L.randn(1024, 1024), L.randn(1024, 1024)
L.mm(a, b)
local t0, reps = L.now(), 0
repeat L.mm(a, b) reps = reps + 1 until L.now() - t0 > 0.5
local sgemm = 2 * 1024 ^ 3 * reps / (L.now() - t0) / 1e9

local fwd, conv1_dx = forward_flops()
local info = L.info()
if gpu then
  local p = L.cuda.get_device_properties(0)
  print(("GPU: %s, %.0f GiB, compute capability %d.%d, driver %s, cuDNN %s"):format(p.name, p.total_memory / 2 ^ 30,
    p.major, p.minor, p.driver_version, p.cudnn_version))
end
print(("BasicImageClassifier, batch %d, %dx%dx%d, %d threads, %s, %s (%s, BLAS core %s%s)"):format(opts.batch, 3,
  opts.size, opts.size, opts.threads, mixed and "bf16-mixed" or "float32", info.cpu.model, info.cpu.simd,
  info.blas_core, info.mixed_precision and (", oneDNN %s %s"):format(info.mixed_precision.version,
  info.mixed_precision.isa) or ""))
local train_flops = 3 * fwd - conv1_dx
if not python then
  print(no_peer)
  local r = our_round()
  print(("train %.0f img/s (%.0f GFLOP/s), eval %.0f img/s (%.0f GFLOP/s)"):format(r.train,
    r.train * train_flops / 1e9, r.eval, r.eval * fwd / 1e9))
else
  local result = paired.run(opts.pairs, our_round, peer_round)
  local peer_info = result.pairs[1].peer
  local peer_name = ("PyTorch %s %s%s%s"):format(peer_info.version, mixed and "bf16 autocast + channels_last" or "fp32",
    opts.compile and " + torch.compile" or " eager", gpu and " on the GPU (channels_last)" or "")
  paired.report(result, {"train", "eval"}, {ours = opts.cuda_graph and "lightning (training step in a CUDA graph)" or
    "lightning", peer = peer_name})
  local peer_peak = paired.max(result, "peer", "peak_rss_mb")
  local ours_train = {}
  for _, p in ipairs(result.pairs) do ours_train[#ours_train + 1] = p.ours.train end
  print(("peak resident memory: lightning %.0f MB, %s %.0f MB; lightning's median training rate %.0f GFLOP/s")
    :format(status("VmHWM"), peer_name, peer_peak, paired.median(ours_train) * train_flops / 1e9))
end
print(("sgemm 1024^3 on this machine: %.0f GFLOP/s; training counts 3x the forward FLOPs (%.1f MFLOP/image)")
  :format(sgemm, fwd / 1e6))
