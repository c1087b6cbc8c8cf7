-- bench/paired.lua, the benchmarks' one way of comparing with a peer: alternating pairs, ratios oriented
-- so that > 1 means ours is better (rates ours / peer, times peer / ours), the report's lines, a missing
-- peer said in one line, the peer's "name value" lines, the scripts' options.
local paired = dofile("bench/paired.lua")

-- the lines print() was given while fn ran
local function printed(fn)
  local lines, real = {}, print
  _G.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring(select(i, ...)) end
    lines[#lines + 1] = table.concat(parts, "\t")
  end
  local ok, err = pcall(fn)
  _G.print = real
  assert(ok, err)
  return lines
end

local function result_of(pairs_)
  local r = {pairs = {}}
  for i, p in ipairs(pairs_) do r.pairs[i] = {ours = p[1], peer = p[2]} end
  return r
end

describe("bench/paired", function()
  it("alternates which side runs first, pair after pair", function()
    local order = {}
    local r = paired.run(4, function() order[#order + 1] = "ours" return {x = 1} end,
      function() order[#order + 1] = "peer" return {x = 2} end)
    assert.same({"ours", "peer", "peer", "ours", "ours", "peer", "peer", "ours"}, order)
    assert.equal(4, #r.pairs)
    assert.same({ours = {x = 1}, peer = {x = 2}}, r.pairs[3])
  end)

  it("runs ours alone without a peer", function()
    local n = 0
    local r = paired.run(3, function() n = n + 1 return {x = n} end)
    assert.equal(3, n)
    assert.same({x = 2}, r.pairs[2].ours)
    assert.is_nil(r.pairs[2].peer)
  end)

  it("takes the median of an odd and an even count", function()
    assert.equal(2, paired.median({3, 1, 2}))
    assert.equal(2.5, paired.median({4, 1, 3, 2}))
    assert.is_nil(paired.median({}))
  end)

  it("orients ratios so that above 1 means ours is better: ours / peer for rates, peer / ours for times", function()
    local r = result_of({{{v = 200}, {v = 100}}, {{v = 300}, {v = 100}}, {{v = 150}, {v = 100}}})
    local ratios, med, lo, hi = paired.ratios(r, "v")
    assert.same({2, 3, 1.5}, ratios)
    assert.same({2, 1.5, 3}, {med, lo, hi})
    local _, tmed, tlo, thi = paired.ratios(r, "v", true)   -- times: ours took 2x as long
    assert.same({0.5, 1 / 3, 1 / 1.5}, {tmed, tlo, thi})
  end)

  it("compares with another figure of the peer and leaves out pairs missing either", function()
    local r = result_of({{{adam = 1}, {adam = 4, adam_foreach = 2}}, {{adam = 1}, {adam = 4}}, {{}, {adam_foreach = 2}}})
    local ratios = paired.ratios(r, {ours = "adam", peer = "adam_foreach", lower = true})
    assert.same({2}, ratios)
  end)

  it("prints each pair and the median with its range, saying which way the ratio goes", function()
    local r = result_of({{{save = 10, draw = 1}, {save = 20}}, {{save = 10, draw = 3}, {save = 30}},
      {{save = 10, draw = 2}, {save = 15}}})
    local lines = printed(function()
      paired.report(r, {"save", {ours = "draw", peer = false, label = "drawing"}},
        {ours = "lightning", peer = "PyTorch"}, {unit = "ms", lower = true})
    end)
    assert.equal("pair 1: save 10.0 ms / 20.0 ms (2.00x), drawing 1.00 ms", lines[1])
    assert.equal("pair 3: save 10.0 ms / 15.0 ms (1.50x), drawing 2.00 ms", lines[3])
    assert.equal("save: PyTorch's time / lightning's, median of 3 pairs 2.00x (pairs 1.50-3.00x), > 1: " ..
      "lightning is faster; medians lightning 10.0 ms, PyTorch 20.0 ms", lines[4])
    assert.equal("drawing: lightning 2.00 ms, median of 3 rounds (rounds 1.00-3.00 ms)", lines[5])
    assert.equal(5, #lines)
  end)

  it("reports rates as ours / peer and, without the peer, our figures once each", function()
    local r = result_of({{{train = 800}, {train = 400}}})
    local lines = printed(function() paired.report(r, {"train"}, {ours = "lightning", peer = "PyTorch"}) end)
    assert.matches("train: lightning / PyTorch, median of 1 pairs 2.00x", lines[2], 1, true)
    local alone = paired.run(2, function() return {save = 5} end)
    lines = printed(function()
      paired.report(alone, {"save", {ours = "save", peer = "pt_save"}}, {ours = "lightning", peer = "PyTorch"},
        {unit = "ms", lower = true})
    end)
    assert.same({"round 1: save 5.00 ms", "round 2: save 5.00 ms",
      "save: lightning 5.00 ms, median of 2 rounds (rounds 5.00-5.00 ms)"}, lines)
  end)

  it("says in one line why a peer is missing", function()
    assert.has_error(function() paired.python("torch3") end, "--peer must be torch, torch1.13 or none, not torch3")
    local python, why = paired.python("none")
    assert.is_nil(python)
    assert.equal("no peer (--peer none): lightning's figures alone", why)
    paired.PYTHON.nowhere = "/nonexistent/python3"
    python, why = paired.python("nowhere", {"torch", "torchvision"})
    paired.PYTHON.nowhere = nil
    assert.is_nil(python)
    assert.equal("no peer: /nonexistent/python3 cannot import torch, torchvision (Debian's python3-torch, " ..
      "python3-torchvision); lightning's figures alone", why)
  end)

  it("reads a peer round's name value lines and names a command that fails", function()
    assert.same({adam = 2.5, version = "2.15.0"},
      paired.command("printf 'version 2.15.0\\nadam 2.5\\na line of words\\n'"))
    assert.has_error(function() paired.command("exit 3") end, "the peer failed: exit 3")
  end)

  it("parses a script's options, numbers where the default is one, bare arguments in turn", function()
    local opts = paired.options({"128", "--pairs", "7", "--peer", "none"}, {mb = 64, pairs = 5, peer = "torch"},
      {"mb"}, "usage line")
    assert.same({mb = 128, pairs = 7, peer = "none"}, opts)
    assert.has_error(function() paired.options({"--bogus", "1"}, {pairs = 5}, nil, "usage line") end,
      "usage: usage line")
    assert.has_error(function() paired.options({"--pairs", "x"}, {pairs = 5}, nil, "usage line") end,
      "--pairs takes a number; usage: usage line")
    assert.has_error(function() paired.options({"a", "b"}, {f = "x"}, {"f"}, "usage line") end, "usage: usage line")
  end)
end)
