local L = require "lightning"

local function resident_mb()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4096 / 2 ^ 20
end

describe("memory", function()
  -- #rss: AddressSanitizer's allocator holds freed blocks in quarantine, so the asan run skips it.
  it("stays bounded when a loop makes a fresh 1M-element tensor each time, without collectgarbage() #rss", function()
    collectgarbage()
    local peak = 0
    for i = 1, 10000 do
      local t = L.zeros(1000000)
      t[1] = i
      if i % 500 == 0 then peak = math.max(peak, resident_mb()) end
    end
    assert.is_true(peak < 200, ("resident memory reached %.0f MB"):format(peak))
  end)

  it("releases a tensor at the end of its scope with <close>", function()
    local escaped
    do
      local t <close> = L.ones(10)
      escaped = t
      assert.equal(10, t:sum())
    end
    assert.has_error(function() escaped:sum() end)
  end)

  it("keeps storage alive while a view of it exists", function()
    local v
    do
      local t = L.arange(10)
      v = t:narrow(1, 3, 2)
    end
    collectgarbage()
    collectgarbage()
    assert.same({2, 3}, v:totable())
  end)
end)
