-- The airbench recipe's augmentation and test-time augmentation: T.AlternatingHorizontalFlip (the flip
-- pattern over epochs, its independence of workers, shuffling and the thread that loads), the 2-pixel
-- reflect-padded translation (RandomCrop's distribution), and the batch functions F.hflip / F.shift.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"
local T = L.data.transforms
local F = T.functional

local PER_FILE = 20   -- 100 training images

describe("T.AlternatingHorizontalFlip", function()
  local dir, raw
  setup(function()
    dir = D.make_cifar(H.tmpdir() .. "/cifar", PER_FILE)
    raw = L.data.CIFAR10{root = dir, records_per_file = PER_FILE}
  end)
  teardown(function() H.rmdir(dir:match("^(.*)/cifar$")) end)

  -- Which of the n samples a loader's unshuffled epoch hands out flipped (each checked to be the image
  -- itself or its mirror).
  local function flipped_set(loader)
    local set, i = {}, 0
    for _, batch in loader:iter() do
      for j = 1, batch.input:size(1) do
        i = i + 1
        local x, plain = batch.input[j], raw[i].input
        if H.max_rel_diff(x, plain) == 0 then set[i] = false
        else
          H.assert_close(x, F.hflip(plain), 0, "sample " .. i)
          set[i] = true
        end
      end
    end
    assert.equal(#raw, i)
    return set
  end

  it("flips each image by a coin of its own, then the other way in every odd epoch", function()
    local ds = L.data.CIFAR10{root = dir, records_per_file = PER_FILE, transform = T.AlternatingHorizontalFlip{seed = 3}}
    local loader = L.data.DataLoader(ds, {batch_size = 16})
    local epochs = {}
    for e = 1, 4 do epochs[e] = flipped_set(loader) end
    local count = 0
    for i = 1, #raw do
      if epochs[1][i] then count = count + 1 end
      assert.equal(epochs[1][i], not epochs[2][i], "sample " .. i)
      assert.equal(epochs[1][i], epochs[3][i], "sample " .. i)
      assert.equal(epochs[2][i], epochs[4][i], "sample " .. i)
    end
    assert(count >= 30 and count <= 70, ("%d of 100 flipped in epoch 0"):format(count))
    -- the epoch a loader runs can be set (the Trainer sets its current epoch)
    loader:set_epoch(1)
    assert.same(epochs[2], flipped_set(loader))
    assert.same(epochs[3], flipped_set(loader))   -- then it counts on
    loader:set_epoch(6)
    assert.same(epochs[1], flipped_set(loader))
    -- another seed, another coin per image; the same seed, the same
    local other = L.data.CIFAR10{root = dir, records_per_file = PER_FILE, transform = T.AlternatingHorizontalFlip{seed = 4}}
    assert.are_not.same(epochs[1], flipped_set(L.data.DataLoader(other, {batch_size = 16})))
    local again = L.data.CIFAR10{root = dir, records_per_file = PER_FILE, transform = T.AlternatingHorizontalFlip{seed = 3}}
    assert.same(epochs[1], flipped_set(L.data.DataLoader(again, {batch_size = 7, num_workers = 2})))
  end)

  it("gives the same batches with 0, 1 and 3 workers, shuffled, and its flips on the Lua thread", function()
    local function epochs_of(workers, lua_step)
      -- (a mixed pipeline seeds its random steps otherwise: on the Lua thread the flip alone is compared)
      local steps = {T.AlternatingHorizontalFlip{seed = 9}}
      if not lua_step then steps[2] = T.RandomCrop(32, {padding = 2, padding_mode = "reflect"}) end
      if lua_step then steps[#steps + 1] = function(x) return x end end   -- makes the data set load on the Lua thread
      local ds = L.data.CIFAR10{root = dir, records_per_file = PER_FILE, transform = T.Compose(steps)}
      local loader = L.data.DataLoader(ds, {batch_size = 32, shuffle = true, seed = 5, num_workers = workers})
      assert.equal(not lua_step, loader:runs_in_c())
      local out = {}
      for e = 1, 2 do
        for i, batch in loader:iter() do out[#out + 1] = batch.input:clone() end
      end
      return out
    end
    local ref = epochs_of(0)
    for _, workers in ipairs{1, 3} do
      local got = epochs_of(workers)
      assert.equal(#ref, #got)
      for b = 1, #ref do H.assert_close(got[b], ref[b], 0, ("batch %d, %d workers"):format(b, workers)) end
    end
    local lua_thread = epochs_of(0, true)
    local c_thread = (function()
      local ds = L.data.CIFAR10{root = dir, records_per_file = PER_FILE, transform = T.AlternatingHorizontalFlip{seed = 9}}
      local out = {}
      local loader = L.data.DataLoader(ds, {batch_size = 32, shuffle = true, seed = 5, num_workers = 2})
      for e = 1, 2 do for _, batch in loader:iter() do out[#out + 1] = batch.input:clone() end end
      return out
    end)()
    for b = 1, #c_thread do H.assert_close(lua_thread[b], c_thread[b], 0, ("batch %d on the Lua thread"):format(b)) end
  end)

  it("draws its seed from the global generator unless given one, and checks it", function()
    L.manual_seed(1)
    local a = tostring(T.AlternatingHorizontalFlip())
    L.manual_seed(1)
    assert.equal(a, tostring(T.AlternatingHorizontalFlip()))
    assert.matches("^AlternatingHorizontalFlip%(seed=%-?%d+%)$", a)
    assert.matches("AlternatingHorizontalFlip: seed must be an integer, got 1.5",
      H.error_of(T.AlternatingHorizontalFlip, {seed = 1.5}))
    assert.matches("AlternatingHorizontalFlip: unknown option 'p'", H.error_of(T.AlternatingHorizontalFlip, {p = 0.5}))
    -- on an image alone: sample 0 of epoch 0, the same every call
    local t = T.AlternatingHorizontalFlip{seed = 2}
    local x = L.randn(3, 4, 5)
    H.assert_close(t(x), t(x), 0)
  end)
end)

describe("translation by up to 2 pixels (RandomCrop with reflect padding 2)", function()
  it("picks each of the 5 x 5 offsets alike and fills the border by reflection", function()
    local x = L.arange(0, 36):view(1, 6, 6)          -- each pixel its own value
    local padded = F.pad(x, 2, {padding_mode = "reflect"})
    local crop = T.RandomCrop(6, {padding = 2, padding_mode = "reflect"})
    local counts = {}
    for s = 1, 2500 do
      local y = crop:_apply(x, s, 0)
      local found
      for top = 0, 4 do
        for left = 0, 4 do
          if not found and H.max_rel_diff(y, F.crop(padded, top + 1, left + 1, 6, 6)) == 0 then found = top * 5 + left end
        end
      end
      assert(found, "sample " .. s .. " is no crop of the padded image")
      counts[found] = (counts[found] or 0) + 1
    end
    for k = 0, 24 do   -- 100 expected each; 5 standard deviations either side
      assert((counts[k] or 0) > 50 and (counts[k] or 0) < 150, ("offset %d drawn %d times"):format(k, counts[k] or 0))
    end
  end)
end)

describe("F.hflip and F.shift on batches (test-time augmentation)", function()
  it("mirror a batch image by image", function()
    local x = L.randn(3, 2, 4, 5)
    local y = F.hflip(x)
    for n = 1, 3 do H.assert_close(y[n], F.hflip(x[n]), 0) end
    H.assert_close(F.hflip(y), x, 0)
    assert.equal(5, y[1][2][3][1] == x[1][2][3][5] and 5 or 0)
  end)

  it("shift as a reflect-padded crop does, whole batches at a time, in any padding mode", function()
    local x = L.randn(2, 3, 5, 6)
    for _, mode in ipairs{"reflect", "constant", "edge", "symmetric"} do
      for _, d in ipairs{{1, 1}, {-1, -1}, {2, -1}, {0, 0}} do
        local y = F.shift(x, d[1], d[2], {padding_mode = mode})
        for n = 1, 2 do
          local padded = F.pad(x[n], 2, {padding_mode = mode})
          H.assert_close(y[n], F.crop(padded, 3 - d[1], 3 - d[2], 5, 6), 0, ("%s %d,%d"):format(mode, d[1], d[2]))
        end
      end
    end
    -- airbench's translations: the top-left and bottom-right crops of the image padded by 1
    local img = L.arange(1, 10):view(1, 1, 3, 3)
    assert.same({{{{5, 4, 5}, {2, 1, 2}, {5, 4, 5}}}}, F.shift(img, 1, 1, {padding_mode = "reflect"}):totable())
    assert.same({{{{5, 6, 5}, {8, 9, 8}, {5, 6, 5}}}}, F.shift(img, -1, -1, {padding_mode = "reflect"}):totable())
  end)

  it("write into a given tensor, reused from call to call", function()
    local x, out = L.randn(4, 3, 8, 8), L.empty(0)
    F.hflip(x, out)
    local first = out
    assert.equal(first, F.shift(x, 1, 1, {padding_mode = "reflect", out = out}))
    H.assert_close(out, F.shift(x, 1, 1, {padding_mode = "reflect"}), 0)
    assert.equal(out, F.hflip(x:transpose(3, 4), out))   -- any strides in
    H.assert_close(out, F.hflip(x:transpose(3, 4):contiguous()), 0)
  end)

  it("refuse what they cannot take", function()
    local fn = "lightning.data.transforms.functional."
    assert.matches(fn .. "hflip: expected images %(N, C, H, W%) or an image %(C, H, W%), got 3x4", H.error_of(F.hflip, L.randn(3, 4)))
    local x = L.randn(2, 3, 4, 4)
    assert.matches(fn .. "hflip: out must not share the input's storage", H.error_of(F.hflip, x, x))
    assert.matches(fn .. "shift: padding_mode must be constant, edge, reflect or symmetric, got \"wrap\"",
      H.error_of(F.shift, x, 1, 1, {padding_mode = "wrap"}))
    assert.matches(fn .. "shift: dy must be an integer", H.error_of(F.shift, x, 0.5, 1))
    assert.matches(fn .. "shift: unknown option 'mode'", H.error_of(F.shift, x, 1, 1, {mode = "reflect"}))
    assert.matches(fn .. "hflip", H.error_of(F.hflip, "x"))
  end)
end)

describe("ImageDataModule for the airbench recipe", function()
  it("val_split = 1 trains on every image in the files' order and has no validation loader", function()
    local dir = D.make_cifar(H.tmpdir() .. "/cifar", PER_FILE)
    local dm = L.data.ImageDataModule{dataset = "cifar10", data_root = dir, records_per_file = PER_FILE, batch_size = 32,
      val_split = 1, augmentation = "flip_translate", drop_last = true, num_workers = 0, seed = 7}
    dm:setup("fit")
    assert.equal(100, #dm.train_set)
    assert.is_nil(dm.val_set)
    assert.is_nil(dm:val_dataloader())
    assert.equal(3, #dm:train_dataloader())   -- drop_last: 3 batches of 32
    local raw = L.data.CIFAR10{root = dir, records_per_file = PER_FILE}
    assert.equal(raw[1].target, dm.train_set[1].target)
    assert.equal(raw[100].target, dm.train_set[100].target)
    assert.matches("AlternatingHorizontalFlip%(seed=7%)", tostring(dm.train_set.transform))
    assert.matches("RandomCrop%(size={32, 32}, padding={2, 2, 2, 2}%)", tostring(dm.train_set.transform))
    dm:setup("test")
    assert.equal(PER_FILE, #dm.test_set)   -- the test file, not a split
    H.rmdir(dir:match("^(.*)/cifar$"))
  end)
end)
