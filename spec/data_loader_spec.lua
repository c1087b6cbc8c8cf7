-- DataLoader: batches in C with worker threads (the same whatever num_workers), reshuffling per epoch,
-- seeds, buffer reuse and its rule, stopping early, and the Lua-thread fallback.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"

local T = L.data.transforms
local PER_FILE = 7  -- 35 training images

describe("data: DataLoader", function()
  local dir, ds
  setup(function()
    dir = H.tmpdir()
    D.make_cifar(dir, PER_FILE)
    ds = L.data.CIFAR10{root = dir, records_per_file = PER_FILE,
      transform = T.Compose{T.RandomCrop(32, {padding = 4}), T.RandomHorizontalFlip(), T.ColorJitter{brightness = 0.2},
        T.Normalize({0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616})}}
  end)
  teardown(function() H.rmdir(dir) end)

  -- Every batch of one epoch, cloned.
  local function epoch(loader)
    local out = {}
    for i, batch in loader:iter() do
      assert.equal(#out + 1, i)
      out[i] = {input = batch.input:clone(), target = batch.target:clone()}
    end
    return out
  end

  local function same_batches(a, b)
    assert.equal(#a, #b)
    for i = 1, #a do
      H.assert_close(a[i].input, b[i].input, 0, "batch " .. i)
      H.assert_close(a[i].target, b[i].target, 0, "targets " .. i)
    end
  end

  it("loads in C and makes (B, C, H, W) batches with 1-based float targets", function()
    local loader = L.data.DataLoader(ds, {batch_size = 8})
    assert.is_true(loader:runs_in_c())
    assert.equal(5, #loader)
    local batches = epoch(loader)
    assert.equal(5, #batches)
    assert.equal("8x3x32x32", tostring(batches[1].input:size()))
    assert.equal("3x3x32x32", tostring(batches[5].input:size()))
    -- without shuffling, in order: the targets are the data set's
    local want = {}
    for r = 0, 7 do want[r + 1] = D.cifar_label(r) + 1 end
    assert.same(want, batches[1].target:totable())
    assert.equal(4, #L.data.DataLoader{dataset = ds, batch_size = 8, drop_last = true})
  end)

  it("with a batch_size beyond the data set allocates for the data set only", function()
    -- 2^24 images of 3x32x32 would be 200 GB per buffer (out of memory, or worse); 35 images are 430 kB
    local loader = L.data.DataLoader(ds, {batch_size = 1 << 24, num_workers = 2, shuffle = true, seed = 1})
    assert.equal(1, #loader)
    local batches = epoch(loader)
    assert.equal(1, #batches)
    assert.equal("35x3x32x32", tostring(batches[1].input:size()))
    same_batches(batches, epoch(L.data.DataLoader(ds, {batch_size = 35, num_workers = 2, shuffle = true, seed = 1})))
    assert.equal(0, #L.data.DataLoader(ds, {batch_size = 1 << 24, drop_last = true}))
  end)

  it("gives the same batches whatever num_workers is, for the same seed", function()
    local ref
    for _, workers in ipairs{0, 1, 2, 3} do
      local loader = L.data.DataLoader(ds, {batch_size = 4, shuffle = true, num_workers = workers, seed = 11})
      local batches = epoch(loader)
      if ref then same_batches(batches, ref) else ref = batches end
    end
    -- and under the global generator
    local runs = {}
    for k, workers in ipairs{0, 2} do
      L.manual_seed(5)
      runs[k] = epoch(L.data.DataLoader(ds, {batch_size = 6, shuffle = true, num_workers = workers}))
    end
    same_batches(runs[1], runs[2])
  end)

  it("matches ds[i] with the sample's own generator: one sample, one augmentation", function()
    local loader = L.data.DataLoader(ds, {batch_size = 35, num_workers = 2, seed = 3})
    local batch = epoch(loader)[1]
    local order, aug_seed = L.core.data.epoch_plan(35, false, 3, 0)
    for _, i in ipairs{1, 17, 35} do
      local x = ds:load(order[i], aug_seed)
      H.assert_close(batch.input[i], x, 0, "sample " .. i)
    end
  end)

  it("reshuffles and redraws the augmentation each epoch", function()
    local loader = L.data.DataLoader(ds, {batch_size = 35, shuffle = true, num_workers = 2, seed = 1})
    local a, b = epoch(loader)[1], epoch(loader)[1]
    assert.is_true(H.max_rel_diff(a.target, b.target) > 0, "a new order")
    local again = L.data.DataLoader(ds, {batch_size = 35, shuffle = true, num_workers = 1, seed = 1})
    same_batches({a, b}, {epoch(again)[1], epoch(again)[1]})
    -- every sample exactly once per epoch
    local seen = {}
    for _, t in ipairs(b.target:totable()) do seen[#seen + 1] = t end
    table.sort(seen)
    local want = ds:targets()
    table.sort(want)
    assert.same(want, seen)
  end)

  it("closes a batch's tensors at the next step and reuses their memory; views and the last batch stay valid", function()
    local loader = L.data.DataLoader(ds, {batch_size = 4, num_workers = 2, seed = 8})
    local first, view, view_copy, last
    for i, batch in loader:iter() do
      if i == 1 then
        first = batch.input
        view = batch.input:narrow(1, 1, 1)
        view_copy = view:clone()
      end
      if i == 2 then
        D.fails_with("closed tensor", function() return first:sum() end)
        last = batch
        break
      end
    end
    assert.equal(4, last.input:size(1))
    assert.is_true(last.input:sum() == last.input:sum(), "readable after the break")
    -- the kept view was not overwritten by the batches of later epochs
    for _ = 1, 2 do epoch(loader) end
    H.assert_close(view, view_copy, 0)
    H.assert_close(last.input[1], epoch(L.data.DataLoader(ds, {batch_size = 4, seed = 8}))[2].input[1], 0)
  end)

  it("stops its workers when the loop is left early, and when the loader is collected", function()
    local base = D.thread_count()
    local loader = L.data.DataLoader(ds, {batch_size = 2, num_workers = 3})
    for i in loader:iter() do
      if i == 1 then assert.equal(base + 3, D.thread_count()) end
      if i == 2 then break end
    end
    assert.equal(base, D.thread_count())
    local ok = pcall(function()
      for i in loader:iter() do if i == 3 then error("stop here") end end
    end)
    assert.is_false(ok)
    assert.equal(base, D.thread_count())
    do
      local other = L.data.DataLoader(ds, {batch_size = 2, num_workers = 2})
      local step = other:iter()  -- iterated by hand, never closed
      step()
    end
    collectgarbage()
    collectgarbage()
    assert.equal(base, D.thread_count())
  end)

  it("stops an old iteration when a new one starts", function()
    local loader = L.data.DataLoader(ds, {batch_size = 2, num_workers = 2})
    local old = loader:iter()
    old()
    local new = loader:iter()
    assert.equal(1, (new()))
    D.fails_with("DataLoader:iter: this iteration was stopped: the loader started another with iter()", old)
  end)

  it("runs a data set with a Lua transform on the Lua thread, with the same C augmentation per sample", function()
    local lua_ds = L.data.CIFAR10{root = dir, records_per_file = PER_FILE,
      transform = T.Compose{T.RandomCrop(32, {padding = 4}), function(x) return x * 2 end}}
    local loader = L.data.DataLoader(lua_ds, {batch_size = 5, shuffle = true, num_workers = 2, seed = 4})
    assert.is_false(loader:runs_in_c())
    local batches = epoch(loader)
    assert.equal(7, #batches)
    assert.equal("5x3x32x32", tostring(batches[1].input:size()))
    same_batches(batches, epoch(L.data.DataLoader(lua_ds, {batch_size = 5, shuffle = true, seed = 4})))
    assert.is_true(batches[1].input:max() > 1, "the Lua step ran")
  end)

  it("takes any Lua data set with #ds and ds[i]", function()
    local samples = {}
    for i = 1, 10 do samples[i] = {input = L.full({2, 3}, i), target = i % 3 + 1} end
    local loader = L.data.DataLoader(samples, {batch_size = 4, shuffle = false})
    local batches = epoch(loader)
    assert.equal(3, #batches)
    assert.equal("4x2x3", tostring(batches[1].input:size()))
    assert.same({2, 3, 1, 2}, batches[1].target:totable())
    assert.equal(10, batches[3].input[2][1][1])
  end)

  it("rejects bad arguments", function()
    local F = "lightning.data.DataLoader: "
    D.fails_with(F .. "batch_size must be positive, got 0", L.data.DataLoader, ds, {batch_size = 0})
    D.fails_with(F .. "num_workers must be a non-negative integer, got -1", L.data.DataLoader, ds, {num_workers = -1})
    D.fails_with(F .. "num_workers must be at most 64, got 100", L.data.DataLoader, ds, {num_workers = 100})
    D.fails_with(F .. "shuffle must be a boolean, got \"yes\"", L.data.DataLoader, ds, {shuffle = "yes"})
    D.fails_with(F .. "unknown option 'batchsize'", L.data.DataLoader, ds, {batchsize = 3})
    D.fails_with(F .. "dataset must be a data set (#ds and ds[i]), got 5", L.data.DataLoader, 5, {})
    D.fails_with(F .. "seed must be an integer, got 1.5", L.data.DataLoader, ds, {seed = 1.5})
    D.fails_with(F .. "a dataset is required", L.data.DataLoader, {batch_size = 2, dataset = nil, shuffle = true})
    local wrong = L.data.CIFAR10{root = dir, records_per_file = PER_FILE, transform = T.CenterCrop(40)}
    local ok = pcall(L.data.DataLoader, wrong, {batch_size = 2})
    assert.is_true(ok, "a crop larger than the image pads, as torchvision")
    local bad = L.data.CIFAR10{root = dir, records_per_file = PER_FILE, transform = T.RandomCrop(40)}
    D.fails_with(F .. "step 1 (RandomCrop): crop 40x40 is larger than the input image 32x32", L.data.DataLoader, bad, {batch_size = 2})
    local mixed = {{input = L.zeros(2, 2), target = 1}, {input = L.zeros(3, 2), target = 1}}
    D.fails_with(F .. "sample 2 has size 3x2, the batch's first sample 2x2", function()
      for _ in L.data.DataLoader(mixed, {batch_size = 2}):iter() do end
    end)
  end)
end)
