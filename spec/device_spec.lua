-- The core's device seam on a machine without a GPU: loading the backend module and saying why it
-- cannot be, tensors on a device, copies through the host, the choice of a backend's implementation,
-- mixed devices refused, running out of device memory. The device is csrc/testing/fake_device.c (the
-- CUDA module's interface over host memory whose pointers fault when the host reads them), loaded
-- through LIGHTNING_CUDA_MODULE. Each case runs in a process of its own: a process loads its backend once.
local H = require "helpers"
local F = require "fake_device"

local build_dir, fake, run, on_fake = F.build_dir, F.path, F.run, F.on_fake

describe("without a GPU", function()
  it("says why not, and every call that needs one fails with that reason", function()
    local ok, out = run([[
      local available, why = L.core.cuda.is_available()
      assert(available == false and type(why) == "string" and #why > 0)
      assert(L.core.cuda.device_count() == 0)
      local t = L.zeros(2)
      assert(t:device() == "cpu" and t:to("cpu") == t and t:cpu() == t)
      local ok, err = pcall(t.cuda, t)
      assert(not ok and err:find(why, 1, true), err)
      ok, err = pcall(L.core.cuda.synchronize)
      assert(not ok and err:find("cuda.synchronize: " .. why, 1, true), err)
      print(why)
    ]], {LIGHTNING_CUDA_MODULE = ""})
    assert(ok, out)
    -- this machine has no GPU: no driver, no device, or a build without CUDA
    assert.matches("CUDA", out)
    -- where the build made the CUDA module, the reason is the module's (no driver, no device), not its absence
    if io.open(build_dir .. "/lightning/cuda.so") then assert.not_matches("built without CUDA", out) end
  end)

  it("names the module it could not load and why", function()
    local dir = H.tmpdir()
    H.write_file(dir .. "/not_a_module.so", "text")
    local cases = {
      {dir .. "/missing.so", "lightning was built without CUDA %(no .*/missing%.so%)"},
      {dir .. "/not_a_module.so", "cannot load the CUDA backend .*/not_a_module%.so: "},
      {build_dir .. "/lightning/env.so", "env%.so exports no lt_backend_entry"},
    }
    for _, case in ipairs(cases) do
      local ok, out = run("print(select(2, L.core.cuda.is_available()))", {LIGHTNING_CUDA_MODULE = case[1]})
      assert(ok, out)
      assert.matches(case[2], out)
    end
    H.rmdir(dir)
    local ok, out = run("print(select(2, L.core.cuda.is_available()))",
      {LIGHTNING_CUDA_MODULE = fake, LIGHTNING_FAKE_DEVICE_COUNT = "0"})
    assert(ok, out)
    assert.matches("no CUDA device is present", out)
  end)

  it("drives one of the machine's GPUs a process: LIGHTNING_CUDA_DEVICE, else mpirun's local rank modulo the " ..
    "GPUs, else the first", function()
    local cases = {
      {{}, "^0\n"},
      {{LIGHTNING_FAKE_DEVICE_COUNT = "4", OMPI_COMM_WORLD_LOCAL_RANK = "6"}, "^2\n"},
      {{LIGHTNING_FAKE_DEVICE_COUNT = "4", OMPI_COMM_WORLD_LOCAL_RANK = "1", LIGHTNING_CUDA_DEVICE = "3"}, "^3\n"},
      {{LIGHTNING_FAKE_DEVICE_COUNT = "2", LIGHTNING_CUDA_DEVICE = "2"},
        "LIGHTNING_CUDA_DEVICE=2: expected a GPU's index from 0 to 1"},
    }
    for _, case in ipairs(cases) do
      case[1].LIGHTNING_CUDA_MODULE = fake
      local ok, out = run("local ok, why = L.cuda.is_available() print(ok and L.cuda.current_device() or why)", case[1])
      assert(ok, out)
      assert.matches(case[2], out)
    end
  end)

  it("refuses device names it does not know, and a second GPU", function()
    local L = require "lightning"
    local t = L.zeros(2)
    H.fails("Tensor:to: unknown device 'tpu' %(expected cpu, cuda, cuda:0 or gpu%)", t.to, t, "tpu")
    H.fails("Tensor:to: device cuda:1: one GPU a process is supported", t.to, t, "cuda:1")
    H.fails("Tensor:_move_to_: argument 1 must be a string", t._move_to_, t, 1)
  end)
end)

describe("a tensor on the device", function()
  it("keeps its values through the round trip, whatever its layout and type", function()
    local out = on_fake([[
      local t = L.tensor({{1, 2, 3}, {4, 5, 6}})
      local g = t:cuda()
      assert(g:device() == "cuda:0" and g:to("cuda") == g and g:to("cuda:0") == g and g:to("gpu") == g)
      assert(t:device() == "cpu")
      local back = g:cpu()
      assert(back:device() == "cpu" and back ~= g)
      assert((back - t):abs():max() == 0)
      -- a view with strides: contiguous() on the device, then home
      local tt = g:t():contiguous():cpu()
      assert(tt:size(1) == 3 and tt[3][2] == 6 and tt[1][2] == 4)
      -- bfloat16 and back on the device
      local b = g:bfloat16()
      assert(b:device() == "cuda:0" and b:scalar_type() == "bfloat16")
      assert((b:float():cpu() - t):abs():max() == 0)
      -- fill, zero, clone and copy stay on the device
      local c = g:clone():fill(7)
      assert(c:device() == "cuda:0" and c:cpu():sum() == 42 and g:cpu():sum() == 21)
      c:copy(t)
      assert(c:cpu():sum() == 21)
      local h = L.zeros(2, 3):copy(g)
      assert(h:sum() == 21)
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)

  it("prints, reads item and totable through a copy on the host, and says so", function()
    local out = on_fake([[
      local g = L.tensor({1.5, 2}):cuda()
      print(tostring(g))
      print(g[2], g:narrow(1, 2, 1):item(), g:totable()[1])
      local m = L.tensor({{1, 2}, {3, 4}}):cuda()
      assert(m[2]:device() == "cuda:0" and m[2][1] == 3)  -- a row is a view on the device
    ]])
    assert.matches("%[on cuda:0, printed from a copy on the host%]", out)
    assert.matches("2%.0\t2%.0\t1%.5", out)
  end)

  it("is refused by functions that compute on the host, which name the device", function()
    local out = on_fake([[
      local g = L.ones(3):cuda()
      local m = L.ones(2, 2):cuda()
      for _, f in ipairs {function() return L.mm(m, m) end, function() return m:addmm(m, m) end,
                          function() return L.core.metrics.count_nonfinite(g) end} do
        local ok, err = pcall(f)
        assert(not ok and err:find("is on cuda:0, expected cpu", 1, true) and err:find(":cpu%(%) first"), err)
      end
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)

  it("_move_to_ moves a tensor in place: the same object, on the device", function()
    local out = on_fake([[
      local t = L.tensor({1, 2})
      local same = t
      local v = t:_version()
      assert(t:_move_to_("cuda") == same and t:device() == "cuda:0" and t:_version() > v)
      assert(t:cpu():totable()[2] == 2)
      t:_move_to_("cpu")
      assert(t:device() == "cpu" and t[2] == 2)
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)
end)

describe("an operation on the device", function()
  it("runs the backend's implementation and matches the host's (Linear, forward and backward)", function()
    local out = on_fake([[
      L.manual_seed(3)
      local lin = L.nn.Linear(5, 3)
      local x, go = L.randn(4, 5), L.randn(4, 3)
      local y = lin:forward(x):clone()
      lin.weight.grad:zero(); lin.bias.grad:zero()
      local gx = lin:backward(x, go):clone()
      local gw, gb = lin.weight.grad:clone(), lin.bias.grad:clone()
      for _, t in ipairs {lin.weight, lin.bias, lin.weight.grad, lin.bias.grad, lin.output, lin.grad_input} do
        t:_move_to_("cuda")
      end
      lin.weight.grad:zero(); lin.bias.grad:zero()
      local xg = x:cuda()
      local yg = lin:forward(xg)
      assert(yg:device() == "cuda:0")
      local gxg = lin:backward(xg, go:cuda())
      local function diff(a, b) return (a:cpu() - b):abs():max() end
      assert(diff(yg, y) < 1e-5 and diff(gxg, gx) < 1e-5, "values differ")
      assert(diff(lin.weight.grad, gw) < 1e-5 and diff(lin.bias.grad, gb) < 1e-5, "gradients differ")
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)

  it("refuses tensors on different devices, naming the one that is elsewhere", function()
    local out = on_fake([[
      local lin = L.nn.Linear(5, 3)
      local ok, err = pcall(lin.forward, lin, L.randn(4, 5):cuda())
      print(err)
    ]])
    assert.matches("linear: expected cuda:0, got cpu for weight %(the device of input", out)
  end)

  it("says which operation the backend lacks", function()
    -- (the fake device has every operation; it leaves out the ones LIGHTNING_FAKE_WITHOUT names)
    local out = on_fake([[
      local s = L.nn.Softmax(2):to("cuda")
      local ok, err = pcall(s.forward, s, L.randn(4, 3):cuda())
      print(err)
    ]], {LIGHTNING_FAKE_WITHOUT = "adam,softmax"})
    assert.matches("softmax has no implementation on cuda:0 yet", out)
  end)

  it("the functional activations (t:relu(), L.gelu, L.softmax, L.log_softmax) keep a device tensor there", function()
    local out = on_fake([[
      local x = L.randn(3, 4)
      local xd = x:cuda()
      xd.requires_grad = true
      local ys = {xd:relu(), L.gelu(xd), L.softmax(xd, 2), L.log_softmax(xd, 2)}
      local want = {x:relu(), L.gelu(x), L.softmax(x, 2), L.log_softmax(x, 2)}
      for i, y in ipairs(ys) do
        assert(y:device() == "cuda:0", i)
        assert((y:cpu() - want[i]):abs():max() < 1e-6, i)
      end
      ys[1]:sum():backward()
      print(xd.grad:device())
    ]])
    assert.equal("cuda:0\n", out)
  end)
end)

describe("clipping on the device", function()
  it("keeps the norm there: get_total_norm and clip_grads_with_norm give the host's results and wait for nothing",
    function()
      assert.equal("ok\n", on_fake('require("device_clip_case")(L) print("ok")', {LIGHTNING_FP32_ONEDNN = "0"}))
    end)
end)

describe("the device's generator", function()
  it("saves its state and sets it again: dropout draws the same masks; bad states and a capture are refused",
    function()
      assert.equal("ok\n", on_fake('require("cuda_rng_case")(L) print("ok")'))
    end)

  it("is seeded by L.manual_seed also when the backend loads after it", function()
    assert.equal("ok\n", on_fake([[
      L.manual_seed(4)   -- before anything loads the backend
      local d, x = L.nn.Dropout(0.5), L.ones(256)
      d:cuda()
      local first = d:forward(x:cuda()):cpu()
      L.cuda.manual_seed(4)
      assert((d:forward(x:cuda()):cpu() - first):abs():max() == 0)
      print("ok")
    ]]))
  end)
end)

describe("device memory", function()
  it("runs Lua's collector and tries once more before it fails, then names the bytes asked for and free", function()
    local out = on_fake([[
      -- 4000 bytes of pool: a 3000-byte tensor fits once; dropped, it is collected for the next one
      for i = 1, 5 do local t = L.zeros(750):cuda() end
      local ok, err = pcall(function() return L.zeros(2000):cuda() end)
      print(err)
    ]], {LIGHTNING_FAKE_DEVICE_BYTES = "4000"})
    assert.matches("out of memory on cuda:0 allocating 8000 bytes %(%d+ bytes free of 4000%)", out)
  end)

  it("reports what the pool holds", function()
    local out = on_fake([[
      local before = L.core.cuda.memory_stats().in_use
      local g = L.zeros(256):cuda()
      local s = L.core.cuda.memory_stats()
      assert(s.in_use - before == 1024 and s.peak_in_use >= s.in_use, s.in_use)
      local p = L.core.cuda.get_device_properties(0)
      assert(p.name:find("fake device") and p.major == 9 and p.cudnn_version == "9.10.0" and p.driver_version == "13.0")
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)
end)

describe("tensor arithmetic on the device", function()
  it("matches the host: operators, comparisons, unary functions, in-place methods, reductions, metrics", function()
    -- spec/device_math_cases.lua, shared with spec/cuda_spec.lua; here the backend's arithmetic is the
    -- host's, so every result is exact, and a host read of device memory would fault
    local out = on_fake([[
      local n = require("device_math_cases").check(L, 0)
      print(n > 50 and "ok" or n)
    ]])
    assert.equal("ok\n", out)
  end)

  it("leaves its results on the device and refuses operands on another device, naming them", function()
    local out = on_fake([[
      local g, c = L.ones(2, 3):cuda(), L.ones(2, 3)
      assert((g + 1):device() == "cuda:0" and g:sum(1):device() == "cuda:0" and (-g):device() == "cuda:0")
      local function fails(pattern, f)
        local ok, err = pcall(f)
        assert(not ok and err:find(pattern), tostring(err))
      end
      fails("Tensor:__add: elementwise arithmetic: expected cuda:0, got cpu for other", function() return g + c end)
      fails("Tensor:add: elementwise arithmetic: expected cpu, got cuda:0 for other", function() return c:add(g) end)
      fails("Tensor:addcmul: elementwise arithmetic: expected cuda:0, got cpu for", function() return g:addcmul(c, g) end)
      fails("Tensor:eq: elementwise arithmetic: expected cuda:0, got cpu for other", function() return g:eq(c) end)
      fails("lightning.cat: expected cuda:0, got cpu for tensor 2 %(the device of tensor 1", function() return L.cat({g, c}) end)
      -- a module without parameters follows its input (as PyTorch's); one with parameters refuses
      assert(L.nn.ReLU()(g):device() == "cuda:0")
      local loss = L.nn.MSELoss()(g, g + 1)
      assert((L.is_tensor(loss) and loss:item() or loss) == 1, tostring(loss))
      local pool = L.nn.MaxPool2d(2)
      assert(pool(L.ones(1, 1, 2, 2):cuda()):device() == "cuda:0" and pool(L.ones(1, 1, 2, 2)):device() == "cpu")
      fails("expected cuda:0, got cpu for weight", function() return L.nn.Linear(3, 2)(g) end)
      fails("lightning.stack: expected cpu, got cuda:0 for tensor 3", function() return L.stack({c, c, g}) end)
      local cm = L.metrics.ConfusionMatrix(3)
      fails("ConfusionMatrix:update: expected cuda:0, got cpu for target", function() cm:update(g, L.ones(2)) end)
      fails("call :cpu%(%) first", function() cm:update(L.ones(2):cuda(), L.ones(2):cuda()) end)
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)

  it("keeps a confusion matrix's counts there until they are read, and reports bad targets then", function()
    local out = on_fake([[
      local cm = L.metrics.ConfusionMatrix(3)
      local logits = L.tensor({{0, 5, 1}, {9, 0, 0}}):cuda()
      local second = L.tensor({2, 3}):cuda()
      cm:update(logits, L.tensor({2, 1}):cuda())
      local before = L.cuda.memory_stats().in_use
      cm:update(logits, second)
      assert(L.cuda.memory_stats().in_use == before, "a second batch allocates nothing")
      -- read back, the device buffer stays, zeroed (a CUDA graph counting batches goes on writing it)
      assert(cm:total() == 4 and L.cuda.memory_stats().in_use == before)
      assert(cm:total() == 4, "counted twice")
      assert(cm:counts()[2][2] == 2 and cm:counts()[1][1] == 1 and cm:counts()[3][1] == 1)
      cm:update(logits, L.tensor({0.5, 4}):cuda())   -- not class indices: found when the counts are read
      local ok, err = pcall(cm.compute, cm)
      assert(not ok and err:find("2 targets counted on cuda:0 were not class indices", 1, true), err)
      assert(cm:total() == 4)
      cm:update(logits, L.tensor({1, 1}):cuda()):reset()
      assert(cm:total() == 0)
      -- clone(): the counts pending on the device are copied there (nothing waits), and go their own way
      cm:update(logits, L.tensor({2, 1}):cuda())
      L.cuda.set_sync_debug_mode("error")
      local copy = cm:clone()
      L.cuda.set_sync_debug_mode("default")
      cm:update(logits, L.tensor({2, 1}):cuda())
      assert(copy:total() == 2 and cm:total() == 4 and copy:counts()[2][2] == 1)
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)

  it("backpropagates autograd's reductions and arithmetic there as on the host", function()
    local out = on_fake([[
      local function run(device)
        L.manual_seed(5)
        local x = L.randn(4, 3):to(device)
        x.requires_grad = true
        local w = L.randn(3):to(device)
        w.requires_grad = true
        local y = ((x * w + 1):tanh():sigmoid() - x:clone():exp() / 3) ^ 2
        local z = y:sum() + y:mean(1):sum() + x:std() + x:var(2):sum() + x:norm() + (-x):min() + (x - w):max()
        z:backward()
        assert(z:device() == x:device() and x.grad:device() == x:device())
        return z:item(), x.grad:cpu():totable(), w.grad:cpu():totable()
      end
      local z1, gx1, gw1 = run("cpu")
      local z2, gx2, gw2 = run("cuda")
      assert(string.pack("f", z1) == string.pack("f", z2), z1 .. " " .. z2)
      for i = 1, 4 do for j = 1, 3 do assert(gx1[i][j] == gx2[i][j]) end end
      for j = 1, 3 do assert(gw1[j] == gw2[j]) end
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)
end)

describe("waiting for the device", function()
  it("sync debug mode: 'error' fails the operation that would wait, naming it; 'warn' says so on stderr", function()
    local out = on_fake([[
      assert(L.cuda.get_sync_debug_mode() == "default")
      local t = L.randn(3):cuda()
      L.cuda.set_sync_debug_mode("error")
      assert(L.cuda.get_sync_debug_mode() == "error")
      local ok, e = pcall(function() return t:sum() end)   -- a number: read back
      assert(not ok and e:find("copying a tensor to the host makes the host wait for cuda:0, and the sync debug " ..
        "mode is 'error'", 1, true), e)
      ok, e = pcall(function() return t:cpu() end)
      assert(not ok and e:find("sync debug mode", 1, true), e)
      local p = L.randn(3):cuda()
      p.grad = L.randn(3):cuda()
      ok, e = pcall(L.optim.clip_grad_norm, {p}, 1)
      assert(not ok and e:find("a gradient norm (its total is read on the host) makes the host wait", 1, true), e)
      L.cuda.synchronize()   -- asked for: not one of them
      L.cuda.set_sync_debug_mode(1)
      assert(L.cuda.get_sync_debug_mode() == "warn")
      assert(t:cpu():numel() == 3)
      L.cuda.set_sync_debug_mode("default")
      assert(t:cpu():numel() == 3)
      ok, e = pcall(L.cuda.set_sync_debug_mode, "loud")
      assert(not ok and e:find("mode must be 'default', 'warn' or 'error' (or 0, 1, 2), got loud", 1, true), e)
      ok, e = pcall(L.cuda.set_sync_debug_mode, 3)
      assert(not ok and e:find("got number", 1, true), e)
      print("ok")
    ]])
    assert.equal("lightning: warning: copying a tensor to the host makes the host wait for the GPU (sync debug mode " ..
      "'warn')\nok\n", out)
  end)

  it("a training step waits for nothing: the loss and autograd's gradient of it stay on the device", function()
    local out = on_fake([[
      local function train(device, steps)
        L.manual_seed(3)
        local model = L.models.BasicImageClassifier{image_size = 16, dropout_rate = 0}:to(device)
        local crit = L.nn.CrossEntropyLoss{label_smoothing = 0.1}
        local x, y = L.randn(4, 3, 16, 16):to(device), L.tensor{1, 7, 3, 10}:to(device)
        local opt = L.optim.Adam(model:parameters(), {lr = 1e-2})
        local losses = {}
        for step = 1, steps do
          -- BatchNorm reads its count of batches once after a move; from the second step on nothing waits
          if step == 2 and device == "cuda" then L.cuda.set_sync_debug_mode("error") end
          opt:zero_grad()
          local loss = crit(model(x), y)
          assert(loss:device() == x:device() and loss:numel() == 1, loss:device())
          loss:backward()
          opt:step()
          losses[step] = loss
        end
        if device == "cuda" then L.cuda.set_sync_debug_mode("default") end
        for step = 1, steps do losses[step] = losses[step]:item() end
        return losses
      end
      local host, device = train("cpu", 4), train("cuda", 4)
      for step = 1, 4 do assert(host[step] == device[step], step .. ": " .. host[step] .. " " .. device[step]) end
      assert(host[4] < host[1])
      -- called, a loss is a tensor where its input is (the call moved it there); the Torch7 protocol still
      -- gives a number, read through the host
      local crit = L.nn.MSELoss()
      local a, b = L.tensor{1, 2, 3}:cuda(), L.tensor{1, 2, 5}:cuda()
      assert(crit(a, b):device() == "cuda:0")
      assert(math.abs(crit:forward(a, b) - 4 / 3) < 1e-6)
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.equal("ok\n", out)
  end)
end)

describe("optimizers on the device", function()
  it("step flat parameters in one update a group, with the host's bits", function()
    local out = on_fake([[
      local function run(device, flatten)
        L.manual_seed(4)
        local m = L.nn.Sequential(L.nn.Linear(5, 6), L.nn.ReLU(), L.nn.Linear(6, 3)):to(device)
        if flatten then m:flatten_parameters() end
        local x, y = L.randn(4, 5):to(device), L.tensor{1, 3, 2, 3}:to(device)
        local opt = L.optim.AdamW(m:parameters(), {lr = 1e-2, weight_decay = 0.1, amsgrad = true})
        local updates, update = 0, opt._update
        opt._update = function(...) updates = updates + 1 return update(...) end
        for _ = 1, 3 do
          opt:zero_grad()
          L.nn.CrossEntropyLoss()(m(x), y):backward()
          opt:step()
        end
        local values = {}
        for i, p in ipairs(m:parameters()) do values[i] = p:cpu():view(-1):totable() end
        return values, updates
      end
      local host, n_host = run("cpu", false)
      local flat, n_flat = run("cuda", true)
      assert(n_host == 12 and n_flat == 3, n_host .. " " .. n_flat)
      for i = 1, #host do
        for j = 1, #host[i] do assert(host[i][j] == flat[i][j], i .. " " .. j) end
      end
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.equal("ok\n", out)
  end)
end)

describe("the Trainer on the device", function()
  -- A LightningModule that logs its loss each step; the batches of 4 samples of 5 features.
  local MODULE = [[
    local nn = L.nn
    local S = require "trainer_standins"
    local Net = L.class("Net", L.LightningModule)
    function Net:__init(blow_up_at)
      L.LightningModule.__init(self)
      self.net = self:add_module("net", nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)))
      self.crit = nn.CrossEntropyLoss()
      self.blow_up_at = blow_up_at
    end
    function Net:forward(x) return self.net(x) end
    function Net:training_step(batch, i)
      local loss = self.crit(self(batch.input), batch.target)
      if i == self.blow_up_at then loss = loss * (0 / 0) end
      self:log("train_loss", loss, {on_step = true, on_epoch = true, prog_bar = true})
      return loss
    end
    function Net:configure_optimizers() return L.optim.Adam(self:parameters(), {lr = 1e-2}) end
    local function batches()
      L.manual_seed(2)
      local list = {}
      for i = 1, 8 do list[i] = {input = L.randn(4, 5), target = L.tensor{1, 2, 3, i % 3 + 1}} end
      return list
    end
    -- fit on accelerator; guard(i): the sync debug mode for training batch i
    local function fit(accelerator, guard, blow_up_at)
      L.manual_seed(5)
      local logger, callbacks = S.MemoryLogger(), {}
      if guard then
        callbacks[1] = {
          on_train_batch_start = function(_, _, _, _, i) L.cuda.set_sync_debug_mode(guard(i)) end,
          on_train_batch_end = function() L.cuda.set_sync_debug_mode("default") end,
        }
      end
      local trainer = L.Trainer(S.quiet(os.tmpname() .. ".d", {accelerator = accelerator, max_epochs = 2,
        logger = logger, log_every_n_steps = 4, callbacks = callbacks}))
      trainer:fit(Net(blow_up_at), S.Loader(batches()))
      return logger:text(), trainer
    end
  ]]

  it("reads what a step logs only where it is logged or looked at: between log steps nothing waits", function()
    local out = on_fake(MODULE .. [[
      local host, host_trainer = fit("cpu")
      -- log_every_n_steps = 4: batches 4 and 8 log (and check the loss); the others must not wait
      local device, trainer = fit("gpu", function(i) return (i % 4 ~= 0) and "error" or "default" end)
      assert(host == device, host .. "\n---\n" .. device)
      assert(#host > 0)
      -- callback_metrics hold numbers, read when looked at
      assert(math.type(trainer.callback_metrics.train_loss_step) == "float")
      assert(trainer.callback_metrics.train_loss_epoch == host_trainer.callback_metrics.train_loss_epoch)
      local names = {}
      for k, v in pairs(trainer.progress_bar_metrics) do names[#names + 1] = k .. "=" .. type(v) end
      table.sort(names)
      print(table.concat(names, " "))
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.equal("train_loss_epoch=number train_loss_step=number\n", out)
  end)

  it("an ImageClassifier's steps wait for nothing either: its metrics add up on the device, read at the epoch's end",
    function()
    local out = on_fake([[
      local S = require "trainer_standins"
      local samples = S.band_images(32, 3, {classes = 3, channels = 1, size = 8, band = 2, step = 3, noise = 0.3})
      local batches = {}
      for b = 1, 8 do
        local xs, ys = {}, {}
        for j = 1, 4 do xs[j], ys[j] = samples[(b - 1) * 4 + j].input, samples[(b - 1) * 4 + j].target end
        batches[b] = {input = L.stack(xs), target = L.tensor(ys)}
      end
      -- the first batch reads BatchNorm's count once (after the move); log_every_n_steps = 4
      local guard = {
        on_train_batch_start = function(_, _, _, _, i)
          L.cuda.set_sync_debug_mode((i > 1 and i % 4 ~= 0) and "error" or "default")
        end,
        on_train_batch_end = function() L.cuda.set_sync_debug_mode("default") end,
      }
      local trainer = L.Trainer(S.quiet(os.tmpname() .. ".d", {accelerator = "gpu", max_epochs = 2, log_every_n_steps = 4,
        callbacks = {guard}}))
      trainer:fit(S.conv_classifier({}), S.Loader(batches))
      local m = trainer.callback_metrics
      assert(m.train_acc >= 0 and m.train_acc <= 1 and m.train_loss_epoch > 0, tostring(m.train_acc))
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.equal("ok\n", out)
  end)

  it("checks a loss on the device every log_every_n_steps steps: a NaN at batch 2 stops the run at batch 4", function()
    local out = on_fake(MODULE .. [[
      local _, host = fit("cpu", nil, 2)
      local _, device = fit("gpu", nil, 2)
      print(host.diverged.batch, device.diverged.batch, device.diverged.value ~= device.diverged.value)
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
    assert.matches("2\t4\ttrue\n$", out)
  end)

  it("trains, validates and tests examples/train.lua's model there with the host's metrics", function()
    local X = require "script_helpers"
    local dir = H.tmpdir()
    X.image_folder(dir .. "/images", 6)
    -- train.lua runs on the tree's build.luarocks (examples/checkout.lua), whichever build these specs use:
    -- so does the stand-in here, whose copy of the core must compute as that build's does
    local module = X.ROOT .. "/build.luarocks/testing/fake_device.so"
    if not io.open(module) then return pending("no " .. module .. " (examples/train.lua runs on build.luarocks)") end
    local function summaries(accelerator)
      local code, text = X.run("train.lua", ("--data_dir %s/images --image_size 16 --batch_size 4 --num_workers 0 " ..
        "--output_dir %s/%s --no_progress_bar --max_epochs 2 --test --dropout_rate 0 --seed 3 --accelerator %s")
        :format(dir, dir, accelerator, accelerator),
        -- the stand-in's convolution is the host's im2col one: so is the host's for this comparison
        {env = "LIGHTNING_CUDA_MODULE=" .. module .. " LIGHTNING_FP32_ONEDNN=0"})
      assert.equal(0, code, text)
      local blocks = {}
      for block in text:gmatch("\n([%u%d ]*SUMMARY\n=+\n.-)\n=+") do blocks[#blocks + 1] = block end
      return blocks, text
    end
    local on_device, text = summaries("gpu")
    assert.matches("GPU available: yes %(fake device.-used: true", text)
    local on_host = summaries("cpu")
    H.rmdir(dir)
    assert.equal(5, #on_device, text)   -- two epochs of training and validation, the test
    assert.same(on_host, on_device)
  end)
end)
