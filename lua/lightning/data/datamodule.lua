--- ImageDataModule: the original project's datamodule.py in Lua. CIFAR-10 built in, Fashion-MNIST, or any
-- folder of PNG images (one sub-folder per class); a seeded train/val split; augmentation on the training
-- split only; loaders; and with debug = true, a report of sizes, classes, class distributions and the
-- first batch of each split in a fixed order, through self.output (default: print), when it builds them.
--
--   local dm = L.data.ImageDataModule{dataset = "cifar10", data_root = "data", batch_size = 64}
--   dm:prepare_data(); dm:setup("fit")
--   for i, batch in dm:train_dataloader():iter() do ... end
local L = require "lightning"
local U = require "lightning.util.checks"
local T = require "lightning.data.transforms"
local datasets = require "lightning.data.datasets"
local DataLoader = require "lightning.data.loader"

local ImageDataModule = {}
ImageDataModule.__index = ImageDataModule
ImageDataModule.__name = "ImageDataModule"

local fname = "lightning.data.ImageDataModule"

-- What each built-in data set is: its default image size, channels and normalisation.
local KNOWN = {
  cifar10 = {title = "CIFAR-10", image_size = 32, channels = 3,
    mean = {0.4914, 0.4822, 0.4465}, std = {0.2470, 0.2435, 0.2616}},
  fashion_mnist = {title = "Fashion-MNIST", image_size = 28, channels = 1, mean = {0.2860}, std = {0.3530}},
  mnist = {title = "MNIST", image_size = 28, channels = 1, mean = {0.1307}, std = {0.3081}},
  folder = {title = "image folder", image_size = 224, channels = 3,
    mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225}},  -- ImageNet's, as the original used
}

--- Training augmentation presets: "crop_flip" (RandomCrop with padding + RandomHorizontalFlip, the usual
-- CIFAR-10 recipe and the default), "flip_rotate_jitter" (the original project's RandomHorizontalFlip,
-- RandomRotation(10), ColorJitter 0.2), "flip_translate" (airbench's: AlternatingHorizontalFlip seeded by
-- the module's seed, then a translation by up to 2 pixels with reflection), "none". Each is a function of
-- the image size and the data module.
ImageDataModule.augmentations = {
  crop_flip = function(size)
    return {T.RandomCrop(size, {padding = math.max(1, size[1] // 8)}), T.RandomHorizontalFlip()}
  end,
  flip_rotate_jitter = function()
    return {T.RandomHorizontalFlip(), T.RandomRotation(10), T.ColorJitter{brightness = 0.2, contrast = 0.2, saturation = 0.2}}
  end,
  flip_translate = function(size, dm)
    return {T.AlternatingHorizontalFlip{seed = dm.seed}, T.RandomCrop(size, {padding = 2, padding_mode = "reflect"})}
  end,
  none = function() return {} end,
}

local OPTIONS = {"dataset", "data_dir", "data_root", "image_size", "channels", "batch_size", "num_workers", "val_split",
  "seed", "augment", "augmentation", "mean", "std", "download", "debug", "output", "shuffle", "drop_last", "url", "md5",
  "skip_bad", "records_per_file", "data_on_device"}

local function new(_, opts)
  opts = U.check_options(fname, opts or {}, OPTIONS)
  local kind = opts.dataset or (opts.data_dir and "folder" or "cifar10")
  if kind == "fashion-mnist" or kind == "fashionmnist" then kind = "fashion_mnist" end
  if kind == "cifar-10" then kind = "cifar10" end
  local known = KNOWN[kind]
  if not known then
    U.fail(fname, "dataset must be \"cifar10\", \"fashion_mnist\", \"mnist\" or \"folder\" (with data_dir), got %s", U.describe(opts.dataset))
  end
  if kind == "folder" and type(opts.data_dir) ~= "string" then
    U.fail(fname, "a folder data set needs data_dir, the folder with one sub-folder per class")
  end
  local self = setmetatable({
    dataset = kind,
    title = known.title,
    data_dir = opts.data_dir,
    data_root = opts.data_root or (kind == "fashion_mnist" and datasets.FASHION_MNIST_ROOT) or "data",
    batch_size = opts.batch_size == nil and 32 or U.positive_int(fname, "batch_size", opts.batch_size),
    num_workers = opts.num_workers == nil and 2 or U.nonneg_int(fname, "num_workers", opts.num_workers),
    val_split = opts.val_split == nil and 0.8 or U.number(fname, "val_split", opts.val_split),
    seed = opts.seed == nil and 42 or opts.seed,
    augment = U.boolean(fname, "augment", opts.augment, true),
    augmentation = opts.augmentation or "crop_flip",
    download = U.boolean(fname, "download", opts.download, false),
    debug = U.boolean(fname, "debug", opts.debug, false),
    shuffle = U.boolean(fname, "shuffle", opts.shuffle, true),
    drop_last = U.boolean(fname, "drop_last", opts.drop_last, false),
    skip_bad = U.boolean(fname, "skip_bad", opts.skip_bad, false),
    output = opts.output or print,
    url = opts.url, md5 = opts.md5,
    records_per_file = opts.records_per_file,  -- CIFAR-10 files with fewer records than 10,000 (tests)
    data_on_device = opts.data_on_device == nil and "auto" or opts.data_on_device,
  }, ImageDataModule)
  if self.data_on_device ~= "auto" and type(self.data_on_device) ~= "boolean" then
    U.fail(fname, "data_on_device must be \"auto\", true or false, got %s", U.describe(self.data_on_device))
  end
  if not (self.val_split > 0 and self.val_split <= 1) then
    U.fail(fname, "val_split is the training share and must lie in (0, 1] (1: every image trains, no validation), got %s",
      tostring(self.val_split))
  end
  if math.type(self.seed) ~= "integer" then U.fail(fname, "seed must be an integer, got %s", U.describe(self.seed)) end
  if not ImageDataModule.augmentations[self.augmentation] then
    U.fail(fname, "augmentation must be crop_flip, flip_rotate_jitter, flip_translate or none, got %s",
      U.describe(self.augmentation))
  end
  if type(self.output) ~= "function" then U.fail(fname, "output must be a function, got %s", U.describe(self.output)) end
  self.image_size = U.size2(fname, "image_size", opts.image_size or known.image_size)
  self.in_channels = opts.channels and U.positive_int(fname, "channels", opts.channels) or known.channels
  if kind ~= "folder" and opts.channels and self.in_channels ~= known.channels then
    U.fail(fname, "%s has %d channel(s); channels = %d applies to folders only", known.title, known.channels, self.in_channels)
  end
  self.mean = opts.mean and U.numbers(fname, "mean", opts.mean, 4) or known.mean
  self.std = opts.std and U.numbers(fname, "std", opts.std, 4) or known.std
  return self
end

function ImageDataModule:__tostring()
  return ("ImageDataModule(%s, batch_size=%d, image_size=%dx%d)"):format(self.title, self.batch_size, self.image_size[1],
    self.image_size[2])
end

local function say(self, fmt, ...)
  if self.debug then self.output(fmt:format(...)) end
end

local RULE = ("="):rep(60)

--- Downloads what is missing (CIFAR-10 with download = true); called once, before setup.
function ImageDataModule:prepare_data()
  if self.dataset == "cifar10" then self:_cifar10_folder() end
end

-- The folder of the CIFAR-10 batches (downloaded first when they are missing and download is on).
function ImageDataModule:_cifar10_folder()
  self._cifar_folder = self._cifar_folder or datasets.cifar10_folder(self.data_root, self.download,
    {fname = fname, url = self.url, md5 = self.md5, output = self.output})
  return self._cifar_folder
end

-- The transforms for evaluation and (with augmentation) training.
function ImageDataModule:_transforms()
  local size = self.image_size
  local native = self.dataset == "folder" and size or ({cifar10 = {32, 32}, fashion_mnist = {28, 28}, mnist = {28, 28}})[self.dataset]
  local base = {}
  if native[1] ~= size[1] or native[2] ~= size[2] then base[#base + 1] = T.Resize(size) end
  local normalize = T.Normalize(self.mean, self.std)
  local eval_list, train_list = {}, {}
  for _, t in ipairs(base) do eval_list[#eval_list + 1] = t; train_list[#train_list + 1] = t end
  if self.augment then
    for _, t in ipairs(ImageDataModule.augmentations[self.augmentation](size, self)) do train_list[#train_list + 1] = t end
  end
  eval_list[#eval_list + 1] = normalize
  train_list[#train_list + 1] = normalize
  return T.Compose(train_list), T.Compose(eval_list)
end

-- The data set (without transform) for "train" (the part that is split) or "test".
function ImageDataModule:_load(part)
  local train = part == "train"
  if self.dataset == "cifar10" then
    return datasets.CIFAR10{root = self:_cifar10_folder(), train = train, records_per_file = self.records_per_file}
  elseif self.dataset == "fashion_mnist" then
    return datasets.FashionMNIST{root = self.data_root, train = train}
  elseif self.dataset == "mnist" then
    return datasets.MNIST{root = self.data_root, train = train}
  end
  -- a folder: data_dir/train and data_dir/test when both exist, else data_dir split for train and val
  local dir = self.data_dir
  local has_split = U.file_exists(dir .. "/train") and (U.file_exists(dir .. "/test") or U.file_exists(dir .. "/val"))
  if has_split then
    dir = dir .. "/" .. (train and "train" or (U.file_exists(self.data_dir .. "/test") and "test" or "val"))
  elseif not train then
    return nil  -- no separate test set: the validation split serves
  end
  return datasets.ImageFolder{root = dir, image_size = self.image_size, channels = self.in_channels, skip_bad = self.skip_bad,
    warn = function(msg) self.output(msg) end}
end

local function distribution(targets, classes)
  local counts = {}
  for k = 1, #classes do counts[k] = 0 end
  for _, t in ipairs(targets) do counts[t] = (counts[t] or 0) + 1 end
  local parts = {}
  for k = 1, #classes do parts[k] = ("%s=%d"):format(classes[k], counts[k]) end
  return table.concat(parts, " "), counts
end

--- Builds the data sets of a stage: "fit" (train and val), "validate" (val), "test"/"predict" (test),
-- nil (all).
function ImageDataModule:setup(stage)
  if stage ~= nil and stage ~= "fit" and stage ~= "validate" and stage ~= "test" and stage ~= "predict" then
    U.fail(fname .. ":setup", "stage must be \"fit\", \"validate\", \"test\", \"predict\" or nil, got %s", U.describe(stage))
  end
  local train_transform, eval_transform = self:_transforms()
  local built = false  -- the report is printed when the sets are built, not again for a later setup
  if (stage == nil or stage == "fit" or stage == "validate") and not self.train_set then
    built = true
    local full = self:_load("train")
    local n = #full
    if self.val_split == 1 then   -- every image trains, in the files' order; no validation set
      self.train_set = full:with_transform(train_transform)
    else
      local n_train = math.floor(self.val_split * n)
      if n_train < 1 or n_train >= n then
        U.fail(fname, "a split of %d samples at val_split = %s leaves %d for training and %d for validation", n,
          tostring(self.val_split), n_train, n - n_train)
      end
      local perm = L.core.data.permutation(n, self.seed)
      local train_idx, val_idx = table.move(perm, 1, n_train, 1, {}), table.move(perm, n_train + 1, n, 1, {})
      self.train_set = full:subset(train_idx, {transform = train_transform})
      self.val_set = full:subset(val_idx, {transform = eval_transform})
    end
    self.classes, self.num_classes = full.classes, full.num_classes
    self._full_size = n
  end
  if (stage == nil or stage == "test" or stage == "predict") and not self.test_set then
    built = true
    local test = self:_load("test")
    if test then
      self.test_set = test:with_transform(eval_transform)
      self.classes, self.num_classes = test.classes, test.num_classes
    else
      if not self.val_set then self:setup("validate") end
      if not self.val_set then
        U.fail(fname, "%s has no test split (a train/ folder beside test/ or val/) and val_split = 1 leaves no "
          .. "validation split to test on", self.data_dir)
      end
      self.test_set = self.val_set
      self.test_is_val = true
      self.output(("%s has no test split (a train/ folder beside test/ or val/): %s on the validation split (%d images)")
        :format(self.data_dir, stage == "predict" and "predicting" or "testing", #self.val_set))
    end
  end
  if self.debug and built then self:_report_sets(stage) end
end

-- The sets a stage uses, for the report.
local STAGE_SETS = {fit = {train = true, val = true}, validate = {val = true}, test = {test = true}, predict = {test = true}}

function ImageDataModule:_report_sets(stage)
  local shown = STAGE_SETS[stage] or {train = true, val = true, test = true}
  say(self, "%s", RULE)
  say(self, "DATA MODULE SETUP (stage: %s)", tostring(stage))
  say(self, "%s", RULE)
  local root = self.dataset == "folder" and self.data_dir or (self._cifar_folder or self.data_root)
  say(self, "Dataset: %s (%s)", self.title, root)
  say(self, "Classes (%d): %s", self.num_classes, table.concat(self.classes, ", "))
  say(self, "Image size: %dx%d, channels: %d", self.image_size[1], self.image_size[2], self.in_channels)
  local parts = {{"Train", self.train_set, "train"}, {"Val", self.val_set, "val"}, {"Test", self.test_set, "test"}}
  for _, part in ipairs(parts) do
    local name, set = part[1], part[2]
    if set and shown[part[3]] then
      say(self, "%s samples: %d", name, #set)
      say(self, "%s class distribution: %s", name, (distribution(set:targets(), self.classes)))
    end
  end
  if self.train_set and (shown.train or shown.val) then
    say(self, "Train split: %.0f%% of %d (seed %d)%s; augmentation: %s", 100 * self.val_split, self._full_size, self.seed,
      self.val_set and "" or ", no validation split", self.augment and self.augmentation or "off")
  end
  say(self, "Batch size: %d, workers: %d", self.batch_size, self.num_workers)
  for _, part in ipairs(parts) do
    if part[2] and shown[part[3]] then self:_report_first_batch(part[2], part[3]) end
  end
  say(self, "%s", RULE)
end

local SPLIT_NAMES = {train = "training", val = "validation", test = "test"}

local function shape(t) return "[" .. table.concat(t:size(), ", ") .. "]" end

-- The first batch of a split's loader, when it is known before the loop runs: a split in a fixed order
-- (validation, test) gives the first batch that validation_step sees (the model's VALIDATION STEP
-- reports the same labels); a shuffled one is drawn anew each epoch: its batch count instead. Read
-- without the global generator, so training is unaffected.
function ImageDataModule:_report_first_batch(set, split)
  local name = SPLIT_NAMES[split]
  if split == "train" and self.shuffle then
    say(self, "Training batches: %d per epoch, reshuffled each epoch",
      self.drop_last and #set // self.batch_size or -(-#set // self.batch_size))
    return
  end
  local peek = DataLoader(set, {batch_size = self.batch_size, shuffle = false, seed = self.seed})
  for _, batch in peek:iter() do
    local x, y = batch.input, batch.target
    local _, counts = distribution(y:totable(), self.classes)
    say(self, "First %s batch: input %s, labels %s", name, shape(x), shape(y))
    say(self, "  input range: min %.4f, max %.4f, mean %.4f, std %.4f", x:min(), x:max(), x:mean(), x:std())
    say(self, "  label distribution: [%s]", table.concat(counts, ", "))
    break
  end
end

-- The GPU the module's Trainer computes on, or nil (no Trainer yet, or the host).
local function trainer_gpu(self)
  local strategy = self.trainer and self.trainer.strategy
  local device = strategy and strategy:root_device()
  return device ~= nil and device ~= "cpu" and device or nil
end

-- A loader over a split (the debug report describes its first batch with the split, at setup). With
-- data_on_device ("auto", true) and a Trainer on a GPU, its batches are made there (DataLoader's
-- device); "auto" falls back to the host loader, saying why once, when the split cannot (rotation or
-- colour jitter in its transforms, an image folder, too little GPU memory).
function ImageDataModule:_loader(set, name, shuffle)
  local opts = {batch_size = self.batch_size, shuffle = shuffle, num_workers = self.num_workers,
    drop_last = shuffle and self.drop_last or false}
  local gpu = self.data_on_device and trainer_gpu(self)
  if gpu then
    opts.device = gpu
    local ok, loader = pcall(DataLoader, set, opts)
    if ok then return loader end
    if self.data_on_device == true then error(loader, 0) end
    self._host_batches_said = self._host_batches_said or {}
    if not self._host_batches_said[name] then
      self._host_batches_said[name] = true
      local why = tostring(loader):gsub("^[^\n]-:%d+: ", "")  -- (without the position Lua put in front)
      self.output(("%s batches are made on the host: %s"):format(name, why))
    end
    opts.device = nil
  end
  return DataLoader(set, opts)
end

local function need(self, field, stage)
  if not self[field] then self:setup(stage) end
  return self[field]
end

function ImageDataModule:train_dataloader() return self:_loader(need(self, "train_set", "fit"), "training", self.shuffle) end
--- nil when val_split = 1 (no validation set: the Trainer then validates nothing).
function ImageDataModule:val_dataloader()
  local set = need(self, "val_set", "validate")
  return set and self:_loader(set, "validation", false) or nil
end
function ImageDataModule:test_dataloader() return self:_loader(need(self, "test_set", "test"), "test", false) end
function ImageDataModule:predict_dataloader() return self:_loader(need(self, "test_set", "predict"), "predict", false) end

return setmetatable(ImageDataModule, {__call = new})
