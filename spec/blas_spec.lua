local L = require "lightning"

describe("the BLAS core", function()
  it("is reported by info() with the CPU, threads and version", function()
    local info = L.info()
    assert.is_string(info.blas_core)
    assert.are_not.equal("unknown", info.blas_core)
    assert.is_string(info.blas_core_chosen_by)
    assert.is_number(info.threads)
    assert.is_string(info.cpu.model)
    assert.is_table(info.cpu.features)
    assert.is_string(info.cpu.simd)
    assert.matches("^%d+%.%d+%.%d+", info.version)
  end)

  it("is chosen from the CPU's features unless the user set OPENBLAS_CORETYPE", function()
    local info = L.info()
    local user = os.getenv("OPENBLAS_CORETYPE")
    if user then
      assert.equal("OPENBLAS_CORETYPE", info.blas_core_chosen_by)
    elseif info.cpu.simd == "avx512" and not os.getenv("LIGHTNING_BLAS_CORETYPE") then
      assert.equal("SkylakeX", info.blas_core)
      assert.equal("lightning (cpu features)", info.blas_core_chosen_by)
    end
  end)

  it("lets a user's OPENBLAS_CORETYPE win", function()
    local cmd = [[OPENBLAS_CORETYPE=Haswell lua5.4 -e 'package.path="lua/?.lua;lua/?/init.lua;"..package.path;
      package.cpath="]] .. package.cpath .. [[;"..package.cpath; local i = require"lightning".info();
      io.write(i.blas_core, " ", i.blas_core_chosen_by)']]
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    assert.equal("Haswell OPENBLAS_CORETYPE", out)
  end)

  it("starts no OpenBLAS threads (it runs on one inside ours) unless the user set OPENBLAS_NUM_THREADS", function()
    if not io.open("/proc/self/status") then return end  -- counts threads through Linux's /proc
    local function threads_after_a_product(settings)
      local cmd = [[env -u OPENBLAS_NUM_THREADS ]] .. settings .. [[ lua5.4 -e '
        package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
        package.cpath = "]] .. package.cpath .. [[;" .. package.cpath
        local L = require "lightning"
        L.set_num_threads(1)
        local a = L.randn(256, 256)
        L.mm(a, a)
        for line in io.lines("/proc/self/status") do
          local n = line:match("^Threads:%s+(%d+)")
          if n then io.write(n, " ", tostring(os.getenv("OPENBLAS_NUM_THREADS"))) end
        end']]
      local p = assert(io.popen(cmd))
      local out = p:read("a")
      p:close()
      return out
    end
    assert.equal("1 nil", threads_after_a_product(""))   -- and the variable is not left to child processes
    assert.matches(" 2$", threads_after_a_product("OPENBLAS_NUM_THREADS=2"))
  end)

  it("governs its thread count with set_num_threads", function()
    local before = L.get_num_threads()
    L.set_num_threads(1)
    assert.equal(1, L.get_num_threads())
    assert.equal(1, L.info().threads)
    L.set_num_threads(before)
    assert.equal(before, L.get_num_threads())
  end)
end)
