-- No binding loses C memory when a Lua call it makes raises (an allocation that fails, a metamethod that
-- errors): the error paths of spec/leak_scenarios.lua are taken over and over. Under the asan run they
-- run in a child process with LeakSanitizer on, which reports any block lost; in the default run the C
-- heap (glibc's count) must not grow with the number of rounds.
local H = require "helpers"
local core = require "lightning.core"

local under_asan = package.cpath:find("build%-asan") ~= nil

describe("bindings on their error paths", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("lose no memory (LeakSanitizer in a child, asan run only)", function()
    if not under_asan then return end
    local code = ("local S = dofile('spec/leak_scenarios.lua') S.setup(%q) S.rounds(%q, 2) print('done')"):format(dir, dir)
    local cmd = ("ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LUA_PATH=%q LUA_CPATH=%q lua5.4 -e %q 2>&1; echo \"exit $?\"")
      :format(package.path, package.cpath, code)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    assert.is_falsy(out:find("LeakSanitizer", 1, true), out)
    assert.is_truthy(out:find("done\nexit 0", 1, true), out)
  end)

  it("lose no memory (the C heap does not grow with the rounds)", function()
    if not core.testing.heap_bytes() then return end  -- not glibc, or AddressSanitizer's allocator
    local S = dofile("spec/leak_scenarios.lua")
    S.setup(dir)
    S.rounds(dir, 2)  -- warm up: caches, interned strings, grown tables
    collectgarbage()
    collectgarbage()
    local before = core.testing.heap_bytes()
    S.rounds(dir, 8)
    collectgarbage()
    collectgarbage()
    local grown = core.testing.heap_bytes() - before
    assert.is_true(grown < 1 << 20, ("the C heap grew by %.1f MB over 8 rounds"):format(grown / 2 ^ 20))
  end)
end)
