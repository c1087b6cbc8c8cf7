-- CUDA graphs (L.cuda.CUDAGraph) on the specs' stand-in device, which keeps the contract of a real
-- graph (csrc/testing/fake_graph.c): nothing runs during a capture, a replay runs the recorded calls with
-- the arguments of the capture, and what cannot be recorded is refused. spec/cuda_spec.lua runs the
-- shared cases on a GPU. Each case runs in a process of its own (a process loads its backend once).
local F = require "fake_device"

local on_fake = F.on_fake
local pending_without_fake = not F.built()

local function case(name, fn)
  if pending_without_fake then return pending(name .. " (this build has no fake device)") end
  it(name, fn)
end

-- The cases spec/cuda_spec.lua runs on a GPU too (spec/cuda_graph_cases.lua), by their descriptions.
local SHARED = {
  {"replay_basics", "a replay runs the recorded work again, and only it: no Lua runs, the capture computed nothing"},
  {"graphed_training_step", "a whole training step, replayed, gives the eager steps' bits: dropout's draws, " ..
    "the optimizer's update under a learning-rate schedule"},
  {"graphed_optimizers", "each optimizer's update, per parameter or flat, follows its schedule in a graph"},
  {"refusals", "refuses what a graph cannot do, naming it, and the next capture starts afresh"},
}

describe("CUDA graphs", function()
  for _, shared in ipairs(SHARED) do
    case(shared[2], function()
      local script = ('require("cuda_graph_cases").%s(L) print("ok")'):format(shared[1])
      assert.equal("ok\n", on_fake(script, {LIGHTNING_FP32_ONEDNN = "0"}))
    end)
  end

  case("what a capture allocates, and what it frees, stays until no graph lives", function()
    local out = on_fake([[
      local function in_use() collectgarbage() collectgarbage() return L.cuda.memory_stats().in_use end
      local x = L.ones(1000):cuda()
      local before = in_use()
      local g = L.cuda.CUDAGraph()
      local doubled = g:capture(function() return x * 2 end)
      assert(in_use() == before + 4000)
      doubled = nil
      assert(in_use() == before + 4000, "the graph's memory was freed while the graph lives")
      local h = L.cuda.CUDAGraph()
      local y = L.ones(500):cuda()
      h:capture(function() y = nil collectgarbage() collectgarbage() end)
      assert(in_use() == before + 6000, "memory freed during a capture went before the graphs")
      g:reset()
      assert(in_use() == before + 6000)
      h = nil
      assert(in_use() == before, in_use() - before)
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)
end)

describe("CUDA graphs without a GPU", function()
  it("say why not", function()
    local ok, out = F.run([[
      local ok, err = pcall(function() L.cuda.CUDAGraph():capture(function() end) end)
      assert(not ok, "captured without a GPU")
      print(err)
      assert(L.cuda.is_current_stream_capturing() == false)
    ]], {LIGHTNING_CUDA_MODULE = ""})
    assert(ok, out)
    assert.matches("cuda.capture_begin: .*CUDA", out)
  end)
end)
