-- Shared by the specs that drive the device seam without a GPU: csrc/testing/fake_device.c (the CUDA
-- module's interface over host memory whose pointers fault when the host reads them), loaded through
-- LIGHTNING_CUDA_MODULE in a process of its own for each case (a process loads its backend once).
local H = require "helpers"

local F = {}

local core_path = package.searchpath("lightning.core", package.cpath)
F.build_dir = core_path:match("^(.*)/lightning/core%.so$")
F.path = F.build_dir .. "/testing/fake_device.so"
-- The emulated CUDA device (csrc/testing/cuda_emu/): the CUDA backend's own kernels run on the host.
F.emu_path = F.build_dir .. "/testing/cuda_emu.so"

--- Whether this build made the fake device (the specs report pending without it).
function F.built() return io.open(F.path) ~= nil end

--- Whether this build made the emulated CUDA device (it needs a C++ compiler and lua5.4).
function F.emu_built() return io.open(F.emu_path) ~= nil end

--- Runs `script` (Lua, with L = lightning) in a new lua5.4 with the environment `env`; returns whether
-- it exited 0 and what it printed.
function F.run(script, env)
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

-- Runs `script` with the backend module at `path` (env adds to LIGHTNING_CUDA_MODULE); fails the spec
-- when the script fails, else returns what it printed.
local function on_module(path, script, env)
  env = env or {}
  env.LIGHTNING_CUDA_MODULE = path
  local ok, out = F.run(script, env)
  assert(ok, out)
  return out
end

--- Runs `script` on the fake device.
function F.on_fake(script, env) return on_module(F.path, script, env) end

--- The same on the emulated CUDA device.
function F.on_emu(script, env) return on_module(F.emu_path, script, env) end

return F
