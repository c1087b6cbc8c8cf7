-- DataLoader{device = "cuda"}: the data set's bytes on the device and each batch made there
-- (csrc/core/data/image_plan.h, device_batches.c), holding the host loader's values bit for bit for the
-- same seed, epoch and order. On the specs' fake device (the host's executor of the plan behind the CUDA
-- module's interface: the plan, the draws, the loader's device mode and the bindings end to end) and on
-- a GPU where there is one (the CUDA kernel); the refusals on the host. The same kernel mirrors and
-- shifts float images there (F.hflip, F.shift: airbench's test-time augmentation).
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"
local F = require "fake_device"

local T = L.data.transforms
local PER_FILE = 7  -- 35 training images: batches of 8 end with a short one

-- Compares, for each pipeline (Lua source of a transforms list), shuffled and not, three epochs, with and
-- without drop_last and through a DistributedSampler, every batch of the host loader with the device's.
local COMPARE = [[
local T = L.data.transforms
local dir = %q
local PIPELINES = {
  crop_flip = {T.RandomCrop(32, {padding = 4}), T.RandomHorizontalFlip(),
    T.Normalize({0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616})},
  flip_translate = {T.AlternatingHorizontalFlip{seed = 5}, T.RandomCrop(32, {padding = 2, padding_mode = "reflect"}),
    T.Normalize({0.5}, {0.25})},
  fill_then_normalize = {T.Pad(3, {fill = 0.3}), T.RandomCrop(30), T.RandomVerticalFlip(0.5),
    T.Normalize({0.1, 0.2, 0.3}, {0.5, 0.6, 0.7})},
  normalize_then_fill = {T.Normalize({0.1, 0.2, 0.3}, {0.5, 0.6, 0.7}), T.RandomCrop(36, {padding = 3, fill = {0.5, 0.25, 1}}),
    T.CenterCrop(28), T.RandomHorizontalFlip(0.3)},
  pad_if_needed_mirrored = {T.RandomCrop(40, {padding = 2, pad_if_needed = true, padding_mode = "symmetric"}),
    T.Pad({1, 2, 3, 4}, {padding_mode = "edge"}), T.CenterCrop({20, 24})},
  none = {},
}
local function batches(loader)
  local out = {}
  for i, b in loader:iter() do out[i] = {b.input:cpu():clone(), b.target:cpu():clone(), b.input:device(), b.target:device()} end
  return out
end
local names = {}
for name in pairs(PIPELINES) do names[#names + 1] = name end
table.sort(names)
local function sets(transforms)
  local ds = L.data.CIFAR10{root = dir, records_per_file = 7, transform = T.Compose(transforms)}
  return {ds, ds:subset({5, 3, 30, 1, 2, 17, 9, 11, 12, 35})}  -- a view: its own samples go to the device
end
for _, name in ipairs(names) do
 for _, ds in ipairs(sets(PIPELINES[name])) do
  for _, opts in ipairs({{shuffle = false, seed = 2}, {shuffle = true, seed = 3}, {shuffle = true, seed = 4, drop_last = true},
      {sampler = L.data.DistributedSampler{num_replicas = 2, rank = 1, seed = 9}}}) do
    opts.batch_size = 8
    local host = L.data.DataLoader(ds, opts)
    opts.device = "cuda"
    local device = L.data.DataLoader(ds, opts)
    assert(#device == #host)
    for epoch = 0, 2 do
      host:set_epoch(epoch)
      device:set_epoch(epoch)
      local a, b = batches(host), batches(device)
      assert(#a == #b and #a == #host, name)
      for i = 1, #a do
        assert(b[i][3] == "cuda:0" and b[i][4] == "cuda:0", "the batch is on " .. b[i][3])
        assert(a[i][1]:size() == b[i][1]:size(), name .. ": sizes")
        local di, dt = (a[i][1] - b[i][1]):abs():max(), (a[i][2] - b[i][2]):abs():max()
        assert(di == 0 and dt == 0, ("%%s, epoch %%d, batch %%d: inputs differ by %%g, targets by %%g"):format(name, epoch, i, di, dt))
      end
    end
  end
 end
end
print("compared")
]]

-- F.hflip and F.shift of float images on the device against the host's, and airbench's TTA there.
local REMAP = [[
  local F = L.data.transforms.functional
  L.manual_seed(4)
  local function same(host, device, what)
    assert(device:device() == "cuda:0", what .. " is on " .. device:device())
    assert(host:size() == device:size() and (host - device:cpu()):abs():max() == 0, what)
  end
  for _, x in ipairs({L.randn(3, 2, 7, 9), L.randn(2, 5, 6), L.randn(2, 3, 9, 7):transpose(3, 4)}) do
    local gx = x:cuda()
    same(F.hflip(x), F.hflip(gx), "hflip")
    for _, mode in ipairs({"constant", "edge", "reflect", "symmetric"}) do
      for _, d in ipairs({{1, 1}, {-1, -1}, {2, -3}, {0, 0}, {-8, 11}}) do
        same(F.shift(x, d[1], d[2], {padding_mode = mode}), F.shift(gx, d[1], d[2], {padding_mode = mode}),
          ("shift %d, %d, %s"):format(d[1], d[2], mode))
      end
    end
    local out = L.empty(0):cuda()
    assert(F.hflip(gx, out) == out)
    same(F.hflip(x), out, "hflip into out")
  end
  local ok, err = pcall(F.hflip, L.randn(1, 2, 3):cuda(), L.empty(0))
  assert(not ok and err:find("expected cuda:0, got cpu", 1, true), err)
  -- airbench's test-time augmentation follows its model to the device (its max-pooling layers hold the
  -- host pass's uint8 indices, not contiguous: they move too)
  local recipe = require("lightning.recipes").get("airbench94")
  L.cuda.allow_tf32(false)  -- (a GPU's convolutions in exact float32: the host's tolerance)
  local model = recipe.Model{widths = {8, 16, 16}, batch_size = 4}
  model:eval()
  local x = L.rand(4, 3, 32, 32)
  local host = model:tta_logits(x):clone()
  model:to("cuda")
  local device = model:tta_logits(x:cuda())
  assert(device:device() == "cuda:0")
  local diff = (host - device:cpu()):abs():max()
  assert(diff < 1e-4, "TTA logits differ by " .. diff)
]]

describe("data: batches made on the device", function()
  local dir
  setup(function()
    dir = H.tmpdir()
    D.make_cifar(dir, PER_FILE)
  end)
  teardown(function() H.rmdir(dir) end)

  it("hold the host loader's values on the fake device: crops, pads of every mode, flips, Normalize before and after",
    function()
      if not F.built() then return pending("needs the build's testing/fake_device.so") end
      assert.matches("compared", F.on_fake(COMPARE:format(dir)))
    end)

  it("hold the host loader's values with the CUDA kernel, emulated on the host (csrc/testing/cuda_emu/)", function()
    if not F.emu_built() then return pending("needs the build's testing/cuda_emu.so") end
    assert.matches("compared", F.on_emu(COMPARE:format(dir)))
  end)

  it("hold the host loader's values on a GPU (the CUDA kernel)", function()
    local available, why = L.cuda.is_available()
    if not available then return pending("needs a GPU: " .. tostring(why)) end
    local ok, out = F.run(COMPARE:format(dir))
    assert(ok, out)
  end)

  it("keep the data set on the device once, as bytes", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    F.on_fake(([[
      local ds = L.data.CIFAR10{root = %q, records_per_file = 7}
      local before = L.cuda.memory_stats().in_use
      local loader = L.data.DataLoader(ds, {batch_size = 8, device = "gpu"})
      local held = L.cuda.memory_stats().in_use - before
      assert(held == 35 * 3 * 32 * 32, "held " .. held)
      assert(tostring(loader):find("made on gpu", 1, true), tostring(loader))
      for _ = 1, 3 do for _ in loader:iter() do end end
      collectgarbage()
      assert(L.cuda.memory_stats().in_use - before == held, "batches left memory behind")
      local before_view = L.cuda.memory_stats().in_use
      local view = L.data.DataLoader(ds:subset({4, 2, 9}), {batch_size = 2, device = "cuda"})
      assert(L.cuda.memory_stats().in_use - before_view == 3 * 3 * 32 * 32, "a view holds its own samples only")
    ]]):format(dir))
  end)

  it("refuse what cannot run there, saying why", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    F.on_fake(([[
      local T = L.data.transforms
      local function refused(ds, pattern, opts)
        opts = opts or {}
        opts.device = opts.device or "cuda"
        local ok, err = pcall(L.data.DataLoader, ds, opts)
        assert(not ok and err:find(pattern, 1, true), tostring(err))
      end
      local function cifar(transforms) return L.data.CIFAR10{root = %q, records_per_file = 7, transform = T.Compose(transforms)} end
      refused(cifar{T.RandomCrop(32, {padding = 4}), T.RandomRotation(10)},
        "the transforms cannot run on cuda:0: step 2 (RandomRotation) is not a flip, crop, pad or Normalize")
      refused(cifar{T.ColorJitter{brightness = 0.2}}, "step 1 (ColorJitter) is not a flip, crop, pad or Normalize")
      refused(cifar{T.Normalize({0.5}, {0.2}), T.Normalize({0.5}, {0.2})}, "step 2 (Normalize): a plan holds one Normalize")
      refused(cifar{T.Resize(16)}, "step 1 (Resize)")
      refused({{input = L.zeros(3), target = 1}}, "batches on cuda need a C data set with C transforms")
      refused(cifar{}, "unknown device 'tpu'", {device = "tpu"})
      refused(cifar{}, "device must be a device name, got 1", {device = 1})
    ]]):format(dir))
  end)

  it("need a GPU, or say why not; device = \"cpu\" is the host loader", function()
    local ds = L.data.CIFAR10{root = dir, records_per_file = PER_FILE}
    local loader = L.data.DataLoader(ds, {batch_size = 8, device = "cpu"})
    assert.is_true(loader:runs_in_c())
    assert.is_nil(loader.device)
    for _, b in loader:iter() do assert.equal("cpu", b.input:device()) end
    local ok, out = F.run(([[
      local ok, err = pcall(L.data.DataLoader, L.data.CIFAR10{root = %q, records_per_file = 7}, {device = "cuda"})
      assert(not ok)
      print(err)
    ]]):format(dir), {LIGHTNING_CUDA_MODULE = ""})
    assert(ok, out)
    assert.matches("lightning.data.DataLoader: .*CUDA", out)
  end)

  it("come from ImageDataModule's loaders when its Trainer computes on a GPU (data_on_device)", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    local out = F.on_fake(([[
      local said = {}
      local function module(opts)
        opts.data_root, opts.dataset, opts.records_per_file, opts.batch_size = %q, "cifar10", 7, 4
        opts.val_split, opts.num_workers = 0.8, 0
        opts.output = function(line) said[#said + 1] = line end
        local dm = L.data.ImageDataModule(opts)
        dm.trainer = L.Trainer{accelerator = "gpu", logger = false, enable_checkpointing = false,
          enable_progress_bar = false, enable_model_summary = false}
        return dm
      end
      local dm = module{augmentation = "flip_translate"}
      for _, loader in ipairs({dm:train_dataloader(), dm:val_dataloader(), dm:test_dataloader()}) do
        assert(loader.device == "cuda:0", tostring(loader))
        for _, b in loader:iter() do assert(b.input:device() == "cuda:0") break end
      end
      -- the original's augmentation rotates: its training batches stay on the host, and the module says so once
      dm = module{augmentation = "flip_rotate_jitter"}
      assert(dm:train_dataloader().device == nil and dm:train_dataloader().device == nil)
      assert(dm:val_dataloader().device == "cuda:0")
      assert(#said == 1, table.concat(said, "\n"))
      print(said[1])
      assert(module{data_on_device = false}:train_dataloader().device == nil)
      local ok, err = pcall(function() module{augmentation = "flip_rotate_jitter", data_on_device = true}:train_dataloader() end)
      assert(not ok and err:find("RandomRotation", 1, true), err)
      ok, err = pcall(L.data.ImageDataModule, {data_on_device = "yes"})
      assert(not ok and err:find('data_on_device must be "auto", true or false, got "yes"', 1, true), err)
    ]]):format(dir))
    assert.matches("^training batches are made on the host: lightning.data.DataLoader: the transforms cannot run on " ..
      "cuda:0: step 2 %(RandomRotation%) is not a flip, crop, pad or Normalize", out)
  end)

  it("mirror and shift float images there as on the host (F.hflip, F.shift: test-time augmentation)", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    F.on_fake(REMAP)
  end)

  it("mirror and shift float images as on the host with the CUDA kernel, emulated on the host", function()
    if not F.emu_built() then return pending("needs the build's testing/cuda_emu.so") end
    F.on_emu(REMAP)
  end)

  it("mirror and shift float images on a GPU as on the host (the CUDA kernel)", function()
    local available, why = L.cuda.is_available()
    if not available then return pending("needs a GPU: " .. tostring(why)) end
    local ok, out = F.run(REMAP)
    assert(ok, out)
  end)

  it("refuse an image folder, which is decoded file by file on the host", function()
    if not F.built() then return pending("needs the build's testing/fake_device.so") end
    local folder = H.tmpdir()
    D.make_folder(folder, {cat = 2, dog = 2})
    local out = F.on_fake(([[
      local ds = L.data.ImageFolder{root = %q, image_size = 8}
      local ok, err = pcall(L.data.DataLoader, ds, {device = "cuda"})
      assert(not ok)
      print(err)
    ]]):format(folder))
    H.rmdir(folder)
    assert.matches("need a data set held in memory", out)
  end)
end)
