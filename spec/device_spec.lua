-- The core's device seam on a machine without a GPU: loading the backend module and saying why it
-- cannot be, tensors on a device, copies through the host, the choice of a backend's implementation,
-- mixed devices refused, running out of device memory. The device is csrc/testing/fake_device.c (the
-- CUDA module's interface over host memory whose pointers fault when the host reads them), loaded
-- through LIGHTNING_CUDA_MODULE. Each case runs in a process of its own: a process loads its backend once.
local H = require "helpers"

local core_path = package.searchpath("lightning.core", package.cpath)
local build_dir = core_path:match("^(.*)/lightning/core%.so$")
local fake = build_dir .. "/testing/fake_device.so"

-- Runs `script` (Lua, with L = lightning) in a new lua5.4 with the environment `env`; returns whether
-- it exited 0 and what it printed.
local function run(script, env)
  local dir = H.tmpdir()
  H.write_file(dir .. "/case.lua", 'local L = require "lightning"\n' .. script)
  local vars = {}
  for k, v in pairs(env or {}) do vars[#vars + 1] = ("%s=%q"):format(k, v) end
  local cmd = ("%s LUA_PATH=%q LUA_CPATH=%q lua5.4 %q 2>&1"):format(table.concat(vars, " "), package.path,
    package.cpath, dir .. "/case.lua")
  local p = io.popen(cmd)
  local out = p:read("a")
  local ok = p:close()
  H.rmdir(dir)
  return ok, out
end

local function on_fake(script, env)
  env = env or {}
  env.LIGHTNING_CUDA_MODULE = fake
  local ok, out = run(script, env)
  assert(ok, out)
  return out
end

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
    -- the fake device has every operation but the mixed-precision variants: a bf16 activation is one
    local out = on_fake([[
      local r = L.nn.ReLU():to("cuda")
      local ok, err = pcall(r.forward, r, L.randn(4):cuda():bfloat16())
      print(err)
    ]])
    assert.matches("activation.mixed has no implementation on cuda:0 yet", out)
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
