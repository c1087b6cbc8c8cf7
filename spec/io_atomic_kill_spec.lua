-- A writer killed at any moment leaves the target loadable (the old or the new contents, never a mix)
-- and at most its own temporary file, which the next atomic write into the folder removes. A live
-- writer's temporary is never removed. (csrc/core/base/fileio.c names temporaries
-- .<name>.tmp.<host>.<pid>.<random>.)
local L = require "lightning"
local H = require "helpers"

local core = require "lightning.core"
local N = 1 << 19  -- 2 MB of float32 per save

local function sleep(seconds) os.execute(("sleep %.3f"):format(seconds)) end

local function temporaries(dir)
  local found = {}
  for _, name in ipairs(core.io.listdir(dir)) do
    if name:find("%.tmp%.") then found[#found + 1] = name end
  end
  return found
end

-- Whether process pid is gone (a killed child that nobody reaps stays a zombie: gone as well).
local function gone(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return true end
  local line = f:read("a") or ""
  f:close()
  local state = line:match("%) (%a)")
  return state == nil or state == "Z" or state == "X"
end

-- Starts a lua5.4 that saves to target in a loop; returns its pid once it has begun saving.
local function start_writer(dir, target)
  local script = dir .. "/writer.lua"
  local ready = dir .. "/ready"
  os.remove(ready)
  H.write_file(script, ([[
local L = require "lightning"
local t = L.randn(%d)
local first = true
while true do
  L.save_safetensors(%q, {w = t}, {writer = "child"})
  if first then io.open(%q, "w"):close() first = false end
end]]):format(N, target, ready))
  local cmd = ("LUA_PATH=%q LUA_CPATH=%q lua5.4 %q >/dev/null 2>&1 & echo $!"):format(package.path, package.cpath, script)
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("l"))
  p:close()
  for _ = 1, 3000 do
    if io.open(ready) then return pid end
    if gone(pid) then error("the writer died before its first save") end
    sleep(0.01)
  end
  error("the writer did not start")
end

describe("atomic writes killed halfway", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("leave a loadable target and at most one temporary, which the next save removes (20 kills)", function()
    local target = dir .. "/model.safetensors"
    local mine = L.zeros(N)
    local left_behind = 0
    for kill = 1, 20 do
      local pid = start_writer(dir, target)
      sleep(math.random() * 0.15)
      os.execute("kill -9 " .. pid)
      for _ = 1, 1000 do if gone(pid) then break end sleep(0.01) end
      assert.is_true(gone(pid), "the killed writer is still running")

      local tensors, meta = L.load_safetensors(target)  -- never half-written
      assert.equal(N, tensors.w:numel(), "kill " .. kill)
      assert.is_truthy(meta.writer == "child" or meta.writer == "parent")
      local stale = temporaries(dir)
      assert.is_true(#stale <= 1, ("kill %d left %d temporaries"):format(kill, #stale))
      left_behind = left_behind + #stale

      L.save_safetensors(target, {w = mine}, {writer = "parent"})
      assert.same({}, temporaries(dir), "the next save did not remove the killed writer's temporary")
      assert.equal(0, L.load_safetensors(target).w:sum())
    end
    if os.getenv("SHOW_KILLS") then print("kills that left a temporary: " .. left_behind) end
    -- the kills must have landed inside saves for the test to mean anything
    assert.is_true(left_behind >= 5, ("only %d of 20 kills left a temporary"):format(left_behind))
  end)

  it("keeps the temporaries of live writers and of other hosts", function()
    local host, me = core.io.hostname():gsub("/", "_"), core.io.pid()
    local live = (".x.safetensors.tmp.%s.%d.0badc0de"):format(host, me)
    local elsewhere = (".x.safetensors.tmp.%s.%d.0badc0de"):format("another-host", 999999999)
    local not_ours = ".notes.tmp.txt"
    for _, name in ipairs({live, elsewhere, not_ours}) do H.write_file(dir .. "/" .. name, "partial") end
    -- a dead writer of this host: a process that has exited
    local p = assert(io.popen("sh -c 'echo $$'"))
    local dead = tonumber(p:read("l"))
    p:close()
    local stale = (".y.safetensors.tmp.%s.%d.00000001"):format(host, dead)
    H.write_file(dir .. "/" .. stale, "partial")

    L.save_safetensors(dir .. "/z.safetensors", {w = L.ones(3)})
    local names = {}
    for _, name in ipairs(core.io.listdir(dir)) do names[name] = true end
    assert.is_true(names[live], "a live writer's temporary was removed")
    assert.is_true(names[elsewhere], "another host's temporary was removed")
    assert.is_true(names[not_ours], "a file that is not a temporary was removed")
    assert.is_nil(names[stale], "a dead writer's temporary was kept")
    assert.is_true(names["z.safetensors"])
  end)
end)
