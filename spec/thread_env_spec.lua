-- The thread runtime's defaults (lightning.env, loaded by lua/lightning/core.lua before core.so): a short
-- OpenMP spin unless the user chose, read by the runtime when it loads, gone from the environment after.
-- Each case runs in a fresh process, since OpenMP reads its environment once per process.
local L = require "lightning"

-- Requires lightning in a fresh process with `settings` ("NAME=value ...", after OMP_WAIT_POLICY and
-- GOMP_SPINCOUNT are cleared); returns what it printed: libgomp's settings as it read them
-- (OMP_DISPLAY_ENV) and a last line "<thread_env value> <chosen_by> <GOMP_SPINCOUNT after loading>".
local function child(settings)
  local cmd = [[env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT ]] .. settings .. [[ OMP_DISPLAY_ENV=verbose lua5.4 -e '
    package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
    package.cpath = "]] .. package.cpath .. [[;" .. package.cpath
    local s = require "lightning".core.thread_env.GOMP_SPINCOUNT
    print(tostring(s.value) .. " " .. s.chosen_by .. " " .. tostring(os.getenv("GOMP_SPINCOUNT")))' 2>&1]]
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function read_by_runtime(out) return out:match("GOMP_SPINCOUNT = '(%d+)'") end
local function last_line(out) return out:match("([^\n]*)\n$") end

describe("the OpenMP wait before a thread sleeps", function()
  it("is short by default, set before the runtime read it, and not left to child processes", function()
    local out = child("")
    assert.equal("10000 lightning nil", last_line(out))
    -- libgomp prints its settings only when it is the runtime (a clang build uses LLVM's libomp)
    if out:find("GOMP_SPINCOUNT", 1, true) then assert.equal("10000", read_by_runtime(out)) end
  end)

  it("is the user's when they set GOMP_SPINCOUNT", function()
    local out = child("GOMP_SPINCOUNT=1234")
    assert.equal("1234 user 1234", last_line(out))
    if out:find("GOMP_SPINCOUNT", 1, true) then assert.equal("1234", read_by_runtime(out)) end
  end)

  it("is the user's when they set OMP_WAIT_POLICY", function()
    local out = child("OMP_WAIT_POLICY=active")
    assert.equal("nil user nil", last_line(out))
    if out:find("GOMP_SPINCOUNT", 1, true) then assert.equal("30000000000", read_by_runtime(out)) end
  end)

  it("is reported by the library loaded here", function()
    local s = L.core.thread_env.GOMP_SPINCOUNT
    assert.is_table(s)
    assert.is_truthy(s.chosen_by == "lightning" or s.chosen_by == "user")
  end)
end)

describe("the team on a busy machine", function()
  -- parallel.c measures how many CPUs other processes keep busy; this is what it does with the figure
  it("is every thread asked for while the cores are free, fewer while other processes use them", function()
    local fit = L.core.testing.threads_fit
    assert.equal(2, fit(2, 2, 0))      -- a quiet machine
    assert.equal(2, fit(2, 2, 0.4))    -- a little background work
    assert.equal(1, fit(2, 2, 0.9))    -- one busy process beside a team of two
    assert.equal(1, fit(2, 2, 1.0))    -- the same, measured beside one thread
    assert.equal(1, fit(2, 2, 3.0))    -- never fewer than one
    assert.equal(4, fit(4, 16, 3.0))   -- never more than asked
    assert.equal(3, fit(4, 4, 1.2))
    assert.equal(1, fit(1, 2, 0))
  end)

  it("is reported by info() beside the count asked for", function()
    local info = L.info()
    assert.is_true(info.threads_now >= 1 and info.threads_now <= info.threads)
  end)
end)
