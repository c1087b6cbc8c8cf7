-- bench/builds.lua: one build of the library against another (oneDNN 2.6 against 3.x in
-- docs/performance.md), each round a `bench/train_step.lua --round` in a process of its own. Here the
-- build under test against itself, one short pair, and the usage errors.
local build = package.cpath:match("^([^;]-)/%?%.so")

local function run(args)
  local p = assert(io.popen("lua5.4 bench/builds.lua " .. args .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("bench/builds.lua", function()
  it("runs a pair of rounds, one per build, and reports the ratio, the oneDNN each loaded and the memory", function()
    local ok, out = run(("%s %s --pairs 1 --seconds 0.05 --batch 4 --size 16"):format(build, build))
    assert.is_true(ok, out)
    assert.matches("pair 1: train [%d.]+ img/s / [%d.]+ img/s %([%d.]+x%)", out)
    assert.matches("train: " .. build:gsub("%p", "%%%0") .. " %(oneDNN [^)]+%) / ", out)
    assert.matches("median of 1 pairs", out)
    assert.matches("peak resident memory: .- %d+ MB, .- %d+ MB", out)
    local info = require("lightning").info().mixed_precision
    assert.matches(info and ("oneDNN " .. info.version .. "-" .. info.runtime):gsub("%p", "%%%0") or "oneDNN none", out)
  end)

  it("says how to call it when a build or an option is wrong", function()
    local ok, out = run("")
    assert.is_falsy(ok)
    assert.matches("usage: lua5.4 bench/builds.lua BUILD_A BUILD_B", out)
    ok, out = run(build .. " " .. build .. " --precision 16")
    assert.is_falsy(ok)
    assert.matches("%-%-precision must be 32 or bf16%-mixed", out)
    ok, out = run("no-such-build " .. build .. " --pairs 1 --seconds 0.05")
    assert.is_falsy(ok)
    assert.matches("no%-such%-build", out)
  end)
end)
