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
  {"graphed_training_step", "a bf16-mixed training step too (channels-last bf16 activations)", '"bf16"'},
  {"graphed_optimizers", "each optimizer's update, per parameter or flat, follows its schedule in a graph"},
  {"refusals", "refuses what a graph cannot do, naming it, and the next capture starts afresh"},
}

describe("CUDA graphs", function()
  for _, shared in ipairs(SHARED) do
    case(shared[2], function()
      local script = ('require("cuda_graph_cases").%s(L, %s) print("ok")'):format(shared[1], shared[3] or "nil")
      assert.equal("ok\n", on_fake(script, {LIGHTNING_FP32_ONEDNN = "0"}))
    end)
  end

  case("keeps what a live graph may use: memory made before its capture ended is freed once no graph lives, " ..
    "memory made after it at once", function()
    local out = on_fake([[
      local function in_use() collectgarbage() collectgarbage() return L.cuda.memory_stats().in_use end
      local x = L.ones(1000):cuda()
      local warm = L.ones(250):cuda()          -- made before the capture: the graph may use it
      local base = in_use()
      local g = L.cuda.CUDAGraph()
      local doubled = g:capture(function() return x * 2 end)
      assert(in_use() == base + 4000)
      doubled, warm = nil, nil
      assert(in_use() == base + 4000, "freed what the graph may use")
      local young = L.ones(500):cuda()         -- made after the capture: freed at once
      assert(in_use() == base + 6000)
      young = nil
      assert(in_use() == base + 4000)
      local h = L.cuda.CUDAGraph()
      local y = L.ones(100):cuda()
      h:capture(function() y = nil collectgarbage() collectgarbage() end)
      assert(in_use() == base + 4000 + 400, "memory freed during a capture went before the graphs")
      g:reset()
      assert(in_use() == base + 4400)
      h = nil
      assert(in_use() == base - 1000, in_use() - base)   -- warm's 1000 bytes too
      print("ok")
    ]])
    assert.equal("ok\n", out)
  end)

  case("a captured model used eagerly with another batch size between replays leaves the graph's memory " ..
    "alone", function()
    local out = on_fake([[
      local function run(detour)
        L.manual_seed(3)
        local model = L.models.BasicImageClassifier{image_size = 16, dropout_rate = 0}:cuda()
        local crit = L.nn.CrossEntropyLoss()
        local opt = L.optim.SGD(model:parameters(), {lr = 0.05})
        L.manual_seed(4)
        local x, y = L.randn(4, 3, 16, 16):cuda(), L.tensor{1, 2, 3, 4}:cuda()
        local small = L.randn(2, 3, 16, 16):cuda()
        local function step()
          opt:zero_grad()
          local loss = crit(model(x), y)
          loss:backward()
          opt:step()
          return loss
        end
        step()
        local g = L.cuda.CUDAGraph()
        local loss = g:capture(step)
        local losses = {}
        for i = 1, 3 do
          g:replay()
          losses[i] = loss:clone()
          if detour then
            model(small)                                    -- the layers' buffers change size
            for _ = 1, 3 do L.randn(4, 3, 16, 16):cuda() end  -- and the memory pool moves on
            collectgarbage()
          end
        end
        for i = 1, 3 do losses[i] = losses[i]:item() end
        return losses
      end
      local plain, detoured = run(false), run(true)
      for i = 1, 3 do assert(plain[i] == detoured[i], i .. ": " .. plain[i] .. " " .. detoured[i]) end
      print("ok")
    ]], {LIGHTNING_FP32_ONEDNN = "0"})
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
