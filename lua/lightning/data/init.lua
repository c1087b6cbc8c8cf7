--- lightning.data: data sets, transforms, the loader and the image data module.
--   L.data.CIFAR10{root, train, transform, download}     L.data.FashionMNIST{root, train, transform}
--   L.data.MNIST{root, train, transform}                 L.data.ImageFolder{root, image_size, channels, transform}
--   L.data.DataLoader(dataset, {batch_size, shuffle, drop_last, num_workers, seed, sampler})
--   L.data.DistributedSampler{num_replicas, rank, shuffle, seed, drop_last}   (a data-parallel run's share)
--   L.data.transforms (T.Compose, T.RandomCrop, ...)     L.data.ImageDataModule{dataset = "cifar10", ...}
--   L.data.read_png(path, {channels = n}) -> (C, H, W)   L.data.write_png(path, tensor, {bit_depth, palette})
local L = require "lightning"
local U = require "lightning.util.checks"
local datasets = require "lightning.data.datasets"

local core = L.core.data
local data = {
  CIFAR10 = datasets.CIFAR10,
  FashionMNIST = datasets.FashionMNIST,
  MNIST = datasets.MNIST,
  ImageFolder = datasets.ImageFolder,
  Dataset = require "lightning.data.dataset",
  DataLoader = require "lightning.data.loader",
  DistributedSampler = require "lightning.data.sampler",
  transforms = require "lightning.data.transforms",
  md5 = core.md5,
  md5_file = core.md5_file,
}

--- Subset(dataset, indices[, {transform = ...}])
function data.Subset(dataset, indices, opts)
  if not data.Dataset.is_dataset(dataset) then
    U.fail("lightning.data.Subset", "dataset must be a lightning.data data set, got %s", U.describe(dataset))
  end
  return dataset:subset(indices, opts)
end

--- read_png(path[, {channels = n}]) -> tensor (C, H, W) in [0, 1]; channels 1-4 converts (default: the file's).
data.read_png = core.read_png
data.decode_png = core.decode_png

--- write_png(path, tensor[, {bit_depth = 8, palette = false}]): a (C, H, W) tensor with C = 1 (gray),
-- 2 (gray+alpha), 3 (RGB) or 4 (RGBA), or (H, W), values in [0, 1] (clamped), written atomically.
-- bit_depth = 16 writes 16-bit linear-light samples; palette = true an indexed file (at most 256 colours).
function data.write_png(path, t, opts)
  local fname = "lightning.data.write_png"
  opts = U.check_options(fname, opts, {"bit_depth", "palette"})
  local depth = opts.bit_depth == nil and 8 or opts.bit_depth
  if depth ~= 8 and depth ~= 16 then U.fail(fname, "bit_depth must be 8 or 16, got %s", U.describe(depth)) end
  return core.write_png(path, t, math.tointeger(depth), U.boolean(fname, "palette", opts.palette, false))
end

-- the data module loads on first use
return require("lightning.lazy")({ImageDataModule = "lightning.data.datamodule"}, data)
