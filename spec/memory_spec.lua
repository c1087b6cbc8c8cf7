local L = require "lightning"

local function resident_mb()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4096 / 2 ^ 20
end

describe("memory", function()
  -- #rss: AddressSanitizer's allocator holds freed blocks in quarantine, so the asan run skips it.
  -- What the loop adds to the process: PyPI's oneDNN 3 (SYCL) alone holds some 150 MB once an earlier
  -- test has used it, Debian's 2.6 a few.
  it("stays bounded when a loop makes a fresh 1M-element tensor each time, without collectgarbage() #rss", function()
    collectgarbage()
    local base, peak = resident_mb(), 0
    for i = 1, 10000 do
      local t = L.zeros(1000000)
      t[1] = i
      if i % 500 == 0 then peak = math.max(peak, resident_mb()) end
    end
    assert.is_true(peak - base < 150, ("resident memory grew from %.0f to %.0f MB"):format(base, peak))
  end)

  -- A layer over many input sizes (each its own activations, gradients, im2col and oneDNN buffers):
  -- glibc kept the freed buffers of every size in its heaps and oneDNN its primitives, so resident
  -- memory grew with the number of sizes seen (issue 24: 8.9 GB for one convolution over 300 sizes
  -- whose largest needs 0.3 GB; here 325 MB in float32 and 344 MB in bf16 where the largest size
  -- alone took 99 and 36). The heap is trimmed after every 64 MB freed (csrc/core/base/heap.c), so what
  -- the other sizes may add is that, and a quarter of the working set.
  for _, precision in ipairs{"fp32", "bf16"} do
    it(("stays near the largest working set when a %s convolution sees many input sizes #rss"):format(precision), function()
      if precision == "bf16" and not (L.info().mixed_precision or {}).bf16_supported then
        return pending("no bf16 kernels in this build or on this CPU")
      end
      local conv = L.nn.Conv2d(16, 32, 3, {padding = 1})
      if precision == "bf16" then conv:set_precision("bf16") end
      local function step(s)
        local x = L.randn(2, 16, s, s)
        local y = conv:forward(x)
        conv:backward(x, L.ones(y:size()))
      end
      collectgarbage()
      local base = resident_mb()
      step(176)
      collectgarbage()
      local largest = resident_mb()
      for _ = 1, 2 do
        for i = 1, 80 do step(16 + 2 * i) end
        collectgarbage()
      end
      local after, limit = resident_mb(), largest + 0.25 * math.max(largest - base, 0) + 64 + 16
      assert.is_true(after <= limit, ("resident memory %.0f MB after 80 sizes, %.0f MB after the largest alone " ..
        "(from %.0f MB): more than %.0f MB"):format(after, largest, base, limit))
    end)
  end

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
