local L = require "lightning"

describe("the random generator", function()
  it("gives the same numbers for the same seed", function()
    L.manual_seed(123)
    local a = L.randn(1000):totable()
    local u = L.rand(5):totable()
    L.manual_seed(123)
    assert.same(a, L.randn(1000):totable())
    assert.same(u, L.rand(5):totable())
    L.manual_seed(124)
    assert.are_not.same(a, L.randn(1000):totable())
  end)

  it("gives the same numbers at every thread count", function()
    local threads = L.get_num_threads()
    L.set_num_threads(1)
    L.manual_seed(7)
    local one = L.randn(300000):sum()
    L.set_num_threads(2)
    L.manual_seed(7)
    local two = L.randn(300000):sum()
    L.set_num_threads(threads)
    assert.equal(one, two)
  end)

  it("saves and restores its state, including a pending normal number", function()
    L.manual_seed(9)
    L.randn(3)                         -- leaves the second Box-Muller number cached
    local state = L.get_rng_state()
    assert.is_string(state)
    local expected = L.randn(10):totable()
    L.manual_seed(1)
    L.set_rng_state(state)
    assert.same(expected, L.randn(10):totable())
  end)

  it("is the same sequence in a fresh process (no hidden state)", function()
    L.manual_seed(42)
    local here = L.rand(3):totable()
    local cmd = [[lua5.4 -e 'package.path="lua/?.lua;lua/?/init.lua;"..package.path; package.cpath="]]
      .. package.cpath .. [[;"..package.cpath; local L=require"lightning"; L.manual_seed(42);
      for _, v in ipairs(L.rand(3):totable()) do io.write(string.format("%.9g ", v)) end']]
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    local there = {}
    for v in out:gmatch("%S+") do there[#there + 1] = tonumber(v) end
    assert.equal(3, #there)
    for i = 1, 3 do assert.is_true(math.abs(here[i] - there[i]) < 1e-7) end
  end)
end)
