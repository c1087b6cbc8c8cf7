-- The hardware the Trainer computes on, as far as a machine without a GPU shows it: L.cuda says why
-- there is none, accelerator = "auto" takes the CPU and the device block says why, "gpu" and "cuda"
-- are refused with the reason, devices is checked, the batch transfer hooks run on every batch (the
-- default is the identity on the CPU), Module:to keeps identities, and train.lua --accelerator cpu
-- trains. On a machine with a GPU the tests about its absence report pending; spec/cuda_spec.lua
-- covers the GPU itself.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local X = require "script_helpers"
local accelerators = require "lightning.accelerators"
local options = require "lightning.util.options"
local SafetensorsCheckpointIO = require "lightning.io.safetensors_checkpoint_io"

local AVAILABLE, REASON = L.cuda.is_available()

local function escaped(text) return (text:gsub("%p", "%%%0")) end
-- The example scripts load the tree's build.luarocks (examples/checkout.lua), which may be another build
-- than the one these specs run on (CI's minimal build has no CUDA module, build.luarocks has one): their
-- reason for having no GPU is that build's, so the specs below check that a reason is given, not which.
local REASON_IN_CHILD = "[^\n]+"

-- true (and the test reports pending) where a GPU is there: the test is about its absence.
local function has_gpu()
  if AVAILABLE then pending("needs a machine without a GPU (this one has " .. L.cuda.summary(0) .. ")") end
  return AVAILABLE
end

describe("L.cuda", function()
  it("says whether a GPU is there, and why not", function()
    assert.is_boolean(AVAILABLE)
    if has_gpu() then return end
    assert.is_string(REASON)
    assert.is_true(#REASON > 0)
    assert.equal(0, L.cuda.device_count())
    assert.same({}, L.cuda.describe())
    -- everything else raises an error that carries the reason
    for name, call in pairs {
      get_device_properties = function() return L.cuda.get_device_properties(0) end,
      synchronize = L.cuda.synchronize,
      manual_seed = function() return L.cuda.manual_seed(1) end,
      memory_stats = L.cuda.memory_stats,
      empty_cache = L.cuda.empty_cache,
      summary = L.cuda.summary,
    } do
      assert.matches(escaped(REASON), H.error_of(call), nil, name)
    end
  end)

  it("names a device index that is not one", function()
    for _, bad in ipairs {-1, 0.5, "0"} do
      assert.matches("lightning%.cuda%.get_device_properties: the device must be a 0%-based index %(an integer >= 0%), got",
        H.error_of(L.cuda.get_device_properties, bad))
    end
    assert.matches("lightning%.cuda%.summary: the device must be a 0%-based index", H.error_of(L.cuda.summary, "x"))
  end)
end)

describe("accelerators", function()
  it("auto takes the CPU without a GPU, and the device block says why", function()
    if has_gpu() then return end
    local acc = accelerators.resolve("auto", "auto")
    assert.equal("cpu", acc.accelerator_name)
    assert.equal("cpu", acc:device())
    assert.equal(1, acc.num_devices)
    local lines = accelerators.describe(acc)
    assert.equal("GPU available: no (" .. REASON .. ")", lines[1])
    assert.matches("^CPU: .+, %d+ logical CPUs$", lines[2])
    assert.matches("^SIMD: ", lines[3])
    assert.matches("^BLAS: .+, core .+ %(chosen by ", lines[4])
    assert.matches("^Threads: %d+", lines[5])
    assert.equal(5, #lines)
    -- the Trainer takes the same, and its strategy computes there
    local trainer = L.Trainer(S.quiet(H.tmpdir()))
    assert.equal("cpu", trainer.accelerator.accelerator_name)
    assert.equal(trainer.accelerator, trainer.strategy.accelerator)
    assert.equal("cpu", trainer.strategy:root_device())
  end)

  it("refuses gpu and cuda without a GPU, naming the reason", function()
    if has_gpu() then return end
    for _, name in ipairs {"gpu", "cuda"} do
      local pattern = ("Trainer: accelerator '%s': no CUDA device is available %%(%s%%)"):format(name, escaped(REASON))
      assert.matches(pattern, H.error_of(L.Trainer, {accelerator = name}))
      assert.matches(pattern, H.error_of(accelerators.resolve, name, 1))
    end
    -- an accelerator made all the same says so when the strategy sets it up
    local acc = accelerators.CUDAAccelerator(1)
    assert.equal("cuda:0", acc:device())
    assert.matches("CUDAAccelerator:setup_device: no CUDA device is available %(" .. escaped(REASON) .. "%)",
      H.error_of(acc.setup_device, acc, "cuda:0"))
  end)

  it("takes the CPU when asked, whatever the machine has", function()
    local acc = accelerators.resolve("cpu", 1)
    assert.equal("cpu", acc:device())
    assert.is_true(accelerators.CPUAccelerator.is_available())
    acc:setup_device("cpu")
    assert.equal(1, accelerators.CPUAccelerator.parse_devices("auto"))
    local trainer = L.Trainer(S.quiet(H.tmpdir(), {accelerator = "cpu", devices = 1}))
    assert.equal("cpu", trainer.strategy:root_device())
    local lines = accelerators.describe(acc)
    assert.matches("^GPU available: ", lines[1])
    if AVAILABLE then assert.matches(", used: false$", lines[1]) end
  end)

  it("checks accelerator and devices", function()
    assert.matches('Trainer: accelerator must be "auto", "cpu", "gpu" or "cuda", got "tpu"',
      H.error_of(L.Trainer, {accelerator = "tpu"}))
    for _, bad in ipairs {2, 0, "2", 1.5, "gpu"} do
      local got = escaped(options.describe(bad)) .. "$"
      assert.matches('Trainer: devices must be "auto" or 1 %(one device per process; several processes: strategy = ' ..
        '"ddp" under mpirun%), got ' .. got, H.error_of(L.Trainer, {devices = bad}))
      assert.matches("Trainer: devices must be .*, got " .. got, H.error_of(accelerators.CPUAccelerator.parse_devices, bad))
      assert.matches("Trainer: devices must be .*, got " .. got, H.error_of(accelerators.resolve, "cpu", bad))
    end
  end)
end)

describe("the batch transfer hooks", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("move each batch of every loop through the strategy, to its device, before the batch hooks", function()
    local calls, seen_batches = {}, {}
    local Model = S.Regression{noise = false, methods = {
      on_before_batch_transfer = function(_, batch, dataloader_idx)
        calls[#calls + 1] = "before " .. dataloader_idx
        return batch
      end,
      transfer_batch_to_device = function(self, batch, device, dataloader_idx)
        calls[#calls + 1] = ("transfer %s %d"):format(device, dataloader_idx)
        -- a new table, as a user's hook may give: the steps must get it
        local moved = L.LightningModule.transfer_batch_to_device(self, batch, device, dataloader_idx)
        assert.equal(batch, moved)   -- (the default, on the host: the batch as it is)
        return {input = batch.input, target = batch.target, moved = true}
      end,
      on_after_batch_transfer = function(_, batch, dataloader_idx)
        calls[#calls + 1] = "after " .. dataloader_idx
        batch.after = true
        return batch
      end,
      on_train_batch_start = function(_, batch) calls[#calls + 1] = "train batch start" end,
      on_validation_batch_start = function(_, batch) calls[#calls + 1] = "validation batch start" end,
    }}
    local step = Model.training_step
    function Model:training_step(batch, i)
      seen_batches[#seen_batches + 1] = batch
      return step(self, batch, i)
    end
    local vstep = Model.validation_step
    function Model:validation_step(batch, i)
      seen_batches[#seen_batches + 1] = batch
      return vstep(self, batch, i)
    end
    local batches = S.regression_batches(3, 4, 2)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, num_sanity_val_steps = 0, accelerator = "cpu"}))
    trainer:fit(Model(2), S.Loader(batches), S.Loader({batches[1]}))
    local one = {"before 0", "transfer cpu 0", "after 0"}
    local expected = {}
    for _ = 1, 3 do
      for _, c in ipairs(one) do expected[#expected + 1] = c end
      expected[#expected + 1] = "train batch start"
    end
    for _, c in ipairs(one) do expected[#expected + 1] = c end
    expected[#expected + 1] = "validation batch start"
    assert.same(expected, calls)
    assert.equal(4, #seen_batches)
    for _, b in ipairs(seen_batches) do assert.is_true(b.moved and b.after) end
    -- test and predict too
    calls = {}
    trainer = L.Trainer(S.quiet(dir, {accelerator = "cpu"}))
    trainer:predict(Model(2), S.Loader({batches[1], batches[2]}))
    assert.same({"before 0", "transfer cpu 0", "after 0", "before 0", "transfer cpu 0", "after 0"}, calls)
  end)

  it("default: the batch as it is on the host; the tensors moved elsewhere", function()
    local module = S.Regression{}(2)
    local batch = {input = L.randn(2, 2), target = L.randn(2, 1), nested = {ids = L.randn(2)}, name = "b"}
    assert.equal(batch, module:transfer_batch_to_device(batch, "cpu", 0))
    if has_gpu() then return end
    assert.matches("Tensor:to: " .. escaped(REASON), H.error_of(module.transfer_batch_to_device, module, batch,
      "cuda:0", 0))
  end)
end)

-- A network with every kind of tensor a layer keeps: parameters, gradients, BatchNorm's buffers.
local function network()
  L.manual_seed(5)
  local nn = L.nn
  return nn.Sequential(nn.Conv2d(1, 2, 3, {padding = 1}), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
    nn.Linear(2 * 4 * 4, 3))
end

describe("Module:to", function()
  it("to the CPU keeps every tensor where and what it is", function()
    local net = network()
    local x = L.randn(2, 1, 4, 4)
    local before = net:forward(x):clone()
    local params, grads = net:parameters(), {}
    for i, p in ipairs(params) do grads[i] = p.grad end
    local bn = net:children()[2]
    local running_mean = bn.running_mean
    assert.equal(net, net:to("cpu"))
    assert.equal(net, net:cpu())
    assert.equal("cpu", net:device())
    for i, p in ipairs(net:parameters()) do
      assert.equal(params[i], p)
      assert.equal(grads[i], p.grad)
    end
    assert.equal(running_mean, bn.running_mean)
    H.assert_close(net:forward(x), before, 0, "output")
    assert.equal("cpu", L.nn.ReLU():device())   -- (no parameters: the host)
  end)

  it("to the CPU keeps flattened parameters views of their flat buffers", function()
    local net = network()
    local flat_params, flat_grads = net:flatten_parameters()
    assert.equal(net, net:to("cpu"))
    assert.equal(flat_params, (net:flat_parameters()))
    flat_params:fill(0.25)
    flat_grads:fill(-1)
    for _, p in ipairs(net:parameters()) do
      H.assert_close(p, L.full(p:size(), 0.25), 0, "a parameter seen through the flat buffer")
      H.assert_close(p.grad, L.full(p:size(), -1), 0, "a gradient seen through the flat buffer")
    end
  end)

  it("to the GPU without one names the reason and leaves the module working", function()
    if has_gpu() then return end
    local net = network()
    local x = L.randn(2, 1, 4, 4)
    local before = net:forward(x):clone()
    assert.matches("_move_to_: " .. escaped(REASON), H.error_of(net.to, net, "cuda"))
    assert.matches(escaped(REASON), H.error_of(net.cuda, net))
    assert.equal("cpu", net:device())
    H.assert_close(net:forward(x), before, 0, "output")
  end)

  it("happens before configure_optimizers in fit", function()
    local calls = {}
    local Model = S.Regression{noise = false}
    local to, configure = Model.to, Model.configure_optimizers
    function Model:to(device)
      calls[#calls + 1] = "to " .. device
      return to(self, device)
    end
    function Model:configure_optimizers()
      calls[#calls + 1] = "configure_optimizers"
      return configure(self)
    end
    local dir = H.tmpdir()
    L.Trainer(S.quiet(dir, {max_epochs = 1, accelerator = "cpu"})):fit(Model(2), S.Loader(S.regression_batches(2, 4, 2)))
    H.rmdir(dir)
    assert.equal("to cpu", calls[1])
    assert.equal("configure_optimizers", calls[2])
  end)
end)

describe("checkpoint files", function()
  it("hold host tensors: a host tensor is written as it is", function()
    local t = L.randn(3)
    t.dtype = "F32"
    local tensors = SafetensorsCheckpointIO.on_host({w = t})
    assert.equal(t, tensors.w)
  end)
end)

-- On csrc/testing/fake_device.c (the CUDA module's interface over host memory, with Linear only; as
-- spec/device_spec.lua loads it), in a process of its own: the Lua side of the device end to end.
local F = require "fake_device"

local function on_fake_device(script)
  -- (comparisons of parameters are not recorded for autograd)
  return F.on_fake('local nn = L.nn\nL.set_grad_enabled(false)\n' .. script)
end

describe("on a device (the specs' fake one)", function()
  it("Module:to moves every tensor in place and back; host values load into it; files get host copies", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    on_fake_device([[
      local IO = require "lightning.io.safetensors_checkpoint_io"
      L.manual_seed(1)
      local net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
      local params, grads = net:parameters(), {}
      for i, p in ipairs(params) do grads[i] = p.grad end
      local bn, linear = net:children()[2], net:children()[1]
      local running_mean = bn.running_mean
      local x = L.randn(5, 4)
      local host_out = linear:forward(x):clone()
      assert(net:to("cuda") == net and net:device() == "cuda:0")
      for i, p in ipairs(net:parameters()) do
        assert(p == params[i] and p.grad == grads[i], "a parameter or gradient was replaced")
        assert(p:device() == "cuda:0" and p.grad:device() == "cuda:0")
      end
      assert(bn.running_mean == running_mean and running_mean:device() == "cuda:0")
      assert(bn.num_batches_tracked:device() == "cuda:0")
      for key, v in pairs(linear) do if L.is_tensor(v) then assert(v:device() == "cuda:0", key) end end
      -- the layer computes there, as on the host
      local out = linear:forward(x:cuda())
      assert(out:device() == "cuda:0" and (out:cpu() - host_out):abs():max() < 1e-6)
      -- host values load into the device model, which stays there
      local sd = {}
      for name, t in pairs(net:state_dict()) do sd[name] = t:cpu() + 1 end
      net:load_state_dict(sd)
      for name, t in pairs(net:state_dict()) do
        assert(t:device() == "cuda:0" and (t:cpu() - sd[name]):abs():max() == 0, name)
      end
      -- checkpoints and weights hold host copies, written as each tensor asks (an int64 count)
      local path = os.tmpname() .. ".safetensors"
      IO.write({state_dict = net:state_dict(), epoch = 0, global_step = 0, format = IO.FORMAT,
        format_version = IO.VERSION}, path)
      local back = IO.read(path)
      for name, t in pairs(back.state_dict) do assert(t:device() == "cpu" and (t - sd[name]):abs():max() == 0, name) end
      assert(back.state_dict["1.num_batches_tracked"].dtype == "I64")
      L.save_weights(net, path)
      local copy = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
      L.load_weights(copy, path)
      assert((copy:parameters()[1] - sd["0.weight"]):abs():max() == 0)
      os.remove(path)
      -- an optimizer's state loads onto its parameters' device; a parameter registered there has its gradient there
      local opt = L.optim.Adam(net:parameters(), {lr = 0.1})
      opt:load_state_dict({state = {[1] = {step = 1, exp_avg = L.zeros(3, 4), exp_avg_sq = L.zeros(3, 4)}},
        param_groups = {{params = {1, 2, 3, 4, 5, 6}, lr = 0.1, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
        amsgrad = false, maximize = false}}})
      local first = params[1]
      assert(opt.state[first].exp_avg:device() == "cuda:0")
      local extra = nn.Linear(2, 2)
      extra:register_parameter("extra", L.randn(2):cuda())
      assert(extra.extra.grad:device() == "cuda:0")
      -- the default batch transfer copies every tensor, nested ones too
      local module = L.LightningModule()
      local batch = {input = L.randn(2, 2), nested = {ids = L.randn(2)}, name = "b"}
      local moved = module:transfer_batch_to_device(batch, "cuda:0", 0)
      assert(moved ~= batch and moved.input:device() == "cuda:0" and moved.nested.ids:device() == "cuda:0")
      assert(moved.name == "b" and batch.input:device() == "cpu")
      -- and back
      assert(net:cpu() == net and net:device() == "cpu" and running_mean:device() == "cpu")
      for i, p in ipairs(net:parameters()) do assert(p == params[i] and p.grad:device() == "cpu") end
    ]])
  end)

  it("the Trainer moves the model before configure_optimizers and each batch, and its checkpoint resumes on " ..
    "the CPU", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    on_fake_device([[
      local S = require "trainer_standins"
      local checkpoint = require "lightning.trainer.checkpoint"
      -- a Linear (the fake device's one operation); nothing stepped (optimizer_step is a no-op hook)
      local Probe = L.class("Probe", L.LightningModule)
      function Probe:__init()
        L.LightningModule.__init(self)
        self:add_module("layer", nn.Linear(2, 1))
        self.seen = {}
      end
      function Probe:training_step(batch, i)
        local out = self.layer:forward(batch.input)
        self.seen[#self.seen + 1] = batch.input:device() .. " " .. out:device()
        return 0.5
      end
      function Probe:validation_step(batch) self.seen[#self.seen + 1] = "val " .. batch.input:device() end
      function Probe:backward_step() end
      function Probe:optimizer_step() end
      function Probe:configure_optimizers()
        self.configured_on = self:device()
        return L.optim.SGD(self:parameters(), {lr = 0.1})
      end
      local dir = os.tmpname() .. ".d"
      local data = S.regression_batches(2, 4, 2)
      local function fit(accelerator, steps, ckpt_path)
        local model = Probe()
        local trainer = L.Trainer(S.quiet(dir, {accelerator = accelerator, max_steps = steps, num_sanity_val_steps = 0,
          enable_checkpointing = true, callbacks = {L.callbacks.ModelCheckpoint{dirpath = dir, save_last = true}}}))
        trainer:fit(model, S.Loader(data), S.Loader({data[1]}), {ckpt_path = ckpt_path})
        return model, trainer
      end
      local model, trainer = fit("gpu", 2)
      assert(trainer.strategy:root_device() == "cuda:0" and model.configured_on == "cuda:0", model.configured_on)
      assert(table.concat(model.seen, ",") == "cuda:0 cuda:0,cuda:0 cuda:0,val cuda:0", table.concat(model.seen, ","))
      local ckpt = checkpoint.read(dir .. "/last.safetensors")
      for name, t in pairs(ckpt.state_dict) do
        assert(t:device() == "cpu" and (t - model:state_dict()[name]:cpu()):abs():max() == 0, name)
      end
      local resumed, cpu_trainer = fit("cpu", 3, dir .. "/last.safetensors")
      assert(cpu_trainer.global_step == 3 and resumed:device() == "cpu")
      assert((resumed.layer.weight - model.layer.weight:cpu()):abs():max() == 0)
      os.execute(("rm -rf %q"):format(dir))
    ]])
  end)

  local function bf16_mixed_fit(env)
    return F.on_fake([[
      local S = require "trainer_standins"
      local seen = {}
      local model = L.LightningModule()
      local conv = L.nn.Conv2d(2, 3, 3, {padding = 1})
      local net = L.nn.Sequential(conv, L.nn.ReLU(), L.nn.Flatten(), L.nn.Linear(3 * 16, 1))
      model:add_module("net", net)
      function model:training_step(batch)
        local y = net:forward(batch.input:view(-1, 2, 4, 4))
        seen[#seen + 1] = conv.output:scalar_type() .. " on " .. y:device()
        return L.nn.MSELoss()(y, batch.target)   -- (made on the host: it follows its input)
      end
      function model:backward_step() end   -- (the forward pass is what this looks at)
      function model:configure_optimizers() return L.optim.SGD(self:parameters(), {lr = 0.01}) end
      local trainer = L.Trainer(S.quiet(os.tmpname() .. ".d", {accelerator = "gpu", precision = "bf16-mixed", max_steps = 2}))
      trainer:fit(model, S.Loader(S.regression_batches(2, 4, 32)))
      print(table.concat(seen, ", "))
    ]], env)
  end

  it("runs bf16-mixed in bf16 on a GPU with bf16 tensor cores, as the CPU does with oneDNN", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    local out = bf16_mixed_fit()
    assert.not_matches("bf16%-mixed on cuda:0", out)
    assert.matches("bfloat16 on cuda:0, bfloat16 on cuda:0\n$", out)
  end)

  it("runs bf16-mixed in float32 with a backend that has no bf16 kernels, and says so", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    local out = bf16_mixed_fit({LIGHTNING_FAKE_WITHOUT = "conv2d.channels_last"})
    assert.matches("bf16%-mixed on cuda:0: the fake backend has no bf16 kernels, so it computes in float32", out)
    assert.matches("float32 on cuda:0, float32 on cuda:0\n$", out)
  end)

  it("runs bf16-mixed in float32 on an older GPU and says why, once", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    local out = bf16_mixed_fit({LIGHTNING_FAKE_DEVICE_CC_MAJOR = "7"})
    assert.matches("bf16%-mixed on cuda:0: fake device %(host memory, for tests%) %(compute capability 7%.0%) has " ..
      "no bf16 tensor cores %(8%.0 or later%), so it computes in float32", out)
    assert.matches("float32 on cuda:0, float32 on cuda:0\n$", out)
    local _, count = out:gsub("bf16%-mixed on cuda:0", "")
    assert.equal(1, count)
  end)

  it("refuses bf16 gradients for data-parallel training on GPUs before MPI starts (NCCL carries float32)", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    if not L.distributed.available() then return pending("needs the build's MPI module (lightning/dist.so)") end
    on_fake_device([[
      local S = require "trainer_standins"
      local trainer = L.Trainer(S.quiet(os.tmpname() .. ".d", {accelerator = "gpu", max_steps = 1,
        strategy = L.strategies.DDPStrategy{gradient_dtype = "bf16"}}))
      local model = L.LightningModule()
      local ok, err = pcall(trainer.fit, trainer, model, S.Loader(S.regression_batches(1, 2, 2)))
      assert(not ok and tostring(err):find('DDPStrategy: gradient_dtype = "bf16" compresses gradients', 1, true), tostring(err))
      assert(not L.distributed.is_initialized(), "MPI started")
    ]])
  end)
end)

describe("examples/train.lua", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("trains with --accelerator cpu, and the device block says whether a GPU is there", function()
    X.image_folder(dir .. "/images", 3)
    local code, text = X.run("train.lua", "--data_dir images --fast_dev_run --batch_size 4 --num_workers 0 " ..
      "--output_dir out --no_progress_bar --accelerator cpu --devices 1", {cwd = dir})
    assert.equal(0, code, text)
    if AVAILABLE then
      assert.matches("\nGPU available: yes %(.+%), used: false\n", text)
    else
      assert.matches("\nGPU available: no %(" .. REASON_IN_CHILD .. "%)\nCPU: ", text)
    end
    assert.matches("\nBLAS: .*core", text)
    assert.matches("\naccelerator%s+cpu\n", text)   -- (the configuration block)
  end)

  it("refuses --accelerator gpu without a GPU before anything loads, and a --devices other than 1", function()
    if has_gpu() then return end
    local code, text = X.run("train.lua", "--data_dir nothing --accelerator gpu", {cwd = dir})
    assert.equal(1, code, text)
    assert.matches("Training failed: %-%-accelerator gpu: no CUDA device is available %(" .. REASON_IN_CHILD .. "%)\n", text)
    assert.is_nil(text:find("DEVICE", 1, true), text)
    code, text = X.run("train.lua", "--data_dir nothing --devices 2", {cwd = dir})
    assert.equal(1, code, text)
    assert.matches("%-%-devices must be auto or 1 %(one device per process; several processes: %-%-nproc%), got 2", text)
  end)
end)
