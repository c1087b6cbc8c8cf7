-- ImageDataModule: CIFAR-10 (tiny files made here), Fashion-MNIST-style IDX files and image folders;
-- the seeded split, augmentation on the training split only, loaders, and the debug report.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"

describe("data: ImageDataModule", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function cifar_module(opts)
    D.make_cifar(dir .. "/cifar-10-batches-bin", 20)  -- 100 training, 20 test images
    local o = {dataset = "cifar10", data_root = dir, records_per_file = 20, batch_size = 16, num_workers = 2}
    for k, v in pairs(opts or {}) do o[k] = v end
    return L.data.ImageDataModule(o)
  end

  it("splits CIFAR-10 80/20 with its seed, and loads train, val and test", function()
    local dm = cifar_module()
    dm:prepare_data()
    dm:setup("fit")
    assert.equal(80, #dm.train_set)
    assert.equal(20, #dm.val_set)
    assert.equal(10, dm.num_classes)
    assert.equal(3, dm.in_channels)
    assert.same({32, 32}, dm.image_size)
    assert.same(D.CLASSES, dm.classes)
    -- disjoint and complete: the classes of both splits add up to the full set's
    local counts = {}
    for _, set in ipairs{dm.train_set, dm.val_set} do
      for _, t in ipairs(set:targets()) do counts[t] = (counts[t] or 0) + 1 end
    end
    local want = {}
    for r = 0, 99 do local t = D.cifar_label(r) + 1; want[t] = (want[t] or 0) + 1 end
    assert.same(want, counts)
    -- the same seed, the same split; another seed, another
    local again = cifar_module()
    again:setup("fit")
    assert.same(dm.val_set:targets(), again.val_set:targets())
    local other = cifar_module{seed = 7}
    other:setup("fit")
    assert.are_not.same(dm.val_set:targets(), other.val_set:targets())

    local train = dm:train_dataloader()
    assert.equal(5, #train)
    assert.is_true(train:runs_in_c())
    for i, batch in train:iter() do
      assert.equal("16x3x32x32", tostring(batch.input:size()))
      if i == 2 then break end
    end
    assert.equal(2, #dm:val_dataloader())
    dm:setup("test")
    assert.equal(20, #dm.test_set)
    assert.equal(2, #dm:test_dataloader())
    assert.equal(2, #dm:predict_dataloader())
  end)

  it("augments the training split only", function()
    local dm = cifar_module{augment = true}
    dm:setup()
    local val_a, val_b = dm.val_set[1].input, dm.val_set[1].input
    H.assert_close(val_a, val_b, 0, "evaluation is deterministic")
    local norm = L.data.transforms.Normalize({0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616})
    -- val: just normalised
    local raw = L.data.CIFAR10{root = dir, records_per_file = 20}
    local idx = nil
    for i = 1, #raw do
      if H.max_rel_diff(norm(raw[i].input), val_a) == 0 then idx = i break end
    end
    assert.is_not_nil(idx, "a validation sample is a normalised training image")
    -- train: crops and flips vary between draws
    local differ = false
    for _ = 1, 10 do
      if H.max_rel_diff(dm.train_set[1].input, dm.train_set[1].input) > 0 then differ = true end
    end
    assert.is_true(differ)
    local plain = cifar_module{augment = false}
    plain:setup("fit")
    H.assert_close(plain.train_set[1].input, plain.train_set[1].input, 0)
    assert.truthy(tostring(cifar_module{augmentation = "flip_rotate_jitter"}:_transforms()):find("ColorJitter", 1, true))
  end)

  it("prints sizes, classes, distributions and the first batch in debug mode", function()
    local lines = {}
    local dm = cifar_module{debug = true, output = function(s) lines[#lines + 1] = s end}
    dm:setup("fit")
    local text = table.concat(lines, "\n")
    for _, frag in ipairs{"DATA MODULE SETUP (stage: fit)", "Dataset: CIFAR-10", "Classes (10): airplane, automobile",
      "Train samples: 80", "Val samples: 20", "Train class distribution: airplane=", "Batch size: 16, workers: 2",
      "Training batches: 5 per epoch, reshuffled each epoch",
      "First validation batch: input [16, 3, 32, 32], labels [16]", "input range: min", "label distribution: ["} do
      assert.truthy(text:find(frag, 1, true), ("%q not in:\n%s"):format(frag, text))
    end
    -- all inside the block, which ends the report: making the loaders prints nothing more (a model
    -- summary printed between them would otherwise land inside the data block)
    assert.matches("label distribution: %[[%d, ]+%]\n=+$", text)
    local n = #lines
    dm:train_dataloader()
    dm:val_dataloader()
    assert.equal(n, #lines)
    -- the validation batch described is the one validation_step gets first
    local _, first = dm:val_dataloader():iter()()
    local counts = {}
    for c = 1, 10 do counts[c] = 0 end
    for _, t in ipairs(first.target:totable()) do counts[t] = counts[t] + 1 end
    assert.truthy(text:find("label distribution: [" .. table.concat(counts, ", ") .. "]", 1, true), text)
    -- the report does not draw from the global generator
    L.manual_seed(3)
    local before = L.get_rng_state()
    dm:val_dataloader()
    assert.equal(before, L.get_rng_state())
  end)

  it("reads Fashion-MNIST-style IDX files, one channel", function()
    D.make_idx_set(dir, 50, 10, 28, 28)
    local dm = L.data.ImageDataModule{dataset = "fashion_mnist", data_root = dir, batch_size = 8, num_workers = 0}
    dm:setup()
    assert.equal(1, dm.in_channels)
    assert.equal(40, #dm.train_set)
    assert.equal(10, #dm.test_set)
    assert.equal("Ankle boot", dm.classes[10])
    for _, batch in dm:train_dataloader():iter() do
      assert.equal("8x1x28x28", tostring(batch.input:size()))
      break
    end
  end)

  it("reads a folder of PNGs, resizing to image_size; the validation split doubles as test set", function()
    D.make_folder(dir .. "/imgs", {cat = 6, dog = 4}, 12, 10)
    local dm = L.data.ImageDataModule{data_dir = dir .. "/imgs", image_size = 8, batch_size = 4, num_workers = 1,
      val_split = 0.7}
    assert.equal("folder", dm.dataset)
    dm:setup()
    assert.same({"cat", "dog"}, dm.classes)
    assert.equal(7, #dm.train_set)
    assert.equal(3, #dm.val_set)
    assert.equal(dm.val_set, dm.test_set)
    for _, batch in dm:train_dataloader():iter() do
      assert.equal("4x3x8x8", tostring(batch.input:size()))
      break
    end
  end)

  it("uses a folder's own train/ and test/ sub-folders when it has them", function()
    D.make_folder(dir .. "/imgs/train", {a = 5, b = 5}, 8, 8)
    D.make_folder(dir .. "/imgs/test", {a = 2, b = 1}, 8, 8)
    local dm = L.data.ImageDataModule{data_dir = dir .. "/imgs", image_size = 8, num_workers = 0}
    dm:setup()
    assert.equal(8, #dm.train_set)
    assert.equal(3, #dm.test_set)
  end)

  it("rejects bad options", function()
    local F = "lightning.data.ImageDataModule: "
    D.fails_with(F .. 'dataset must be "cifar10", "fashion_mnist", "mnist" or "folder"', L.data.ImageDataModule, {dataset = "imagenet"})
    D.fails_with(F .. "a folder data set needs data_dir", L.data.ImageDataModule, {dataset = "folder"})
    D.fails_with(F .. "val_split is the training share and must lie in (0, 1] (1: every image trains, no validation), got 1.5",
      L.data.ImageDataModule, {val_split = 1.5})
    D.fails_with(F .. "augmentation must be crop_flip, flip_rotate_jitter, flip_translate or none, got \"autoaugment\"",
      L.data.ImageDataModule, {augmentation = "autoaugment"})
    D.fails_with(F .. "unknown option 'batchsize'", L.data.ImageDataModule, {batchsize = 3})
    D.fails_with(F .. "CIFAR-10 has 3 channel(s); channels = 1 applies to folders only", L.data.ImageDataModule, {channels = 1})
    D.fails_with("lightning.data.ImageDataModule:setup: stage must be", function()
      L.data.ImageDataModule{}:setup("train")
    end)
    D.fails_with({F .. "no CIFAR-10 files in " .. dir, "download = true"}, function()
      L.data.ImageDataModule{data_root = dir}:prepare_data()
    end)
  end)
end)
