--- The data sets: CIFAR10, FashionMNIST, MNIST and ImageFolder (one sub-folder of PNG images per class).
local L = require "lightning"
local U = require "lightning.util.checks"
local Dataset = require "lightning.data.dataset"
local download = require "lightning.data.download"

local core = L.core.data
local M = {}

-- ---- CIFAR-10 ----

local function cifar_folder(root)
  for _, dir in ipairs{root, root .. "/cifar-10-batches-bin"} do
    if U.file_exists(dir .. "/batches.meta.txt") or U.file_exists(dir .. "/data_batch_1.bin")
        or U.file_exists(dir .. "/test_batch.bin") then
      return dir
    end
  end
end

--- The folder with the CIFAR-10 batches under root (root itself or root/cifar-10-batches-bin); when there
-- is none, downloads them (download = true) or fails with a message that says where to put them.
function M.cifar10_folder(root, download_missing, opts)
  local fname = opts and opts.fname or "lightning.data.CIFAR10"
  local folder = cifar_folder(root)
  if folder then return folder end
  local dest = root:match("^(.*)/cifar%-10%-batches%-bin$") or root
  dest = dest ~= "" and dest or "."
  if not download_missing then
    U.fail(fname, "no CIFAR-10 files in %s (looked for %s/data_batch_1.bin and %s/cifar-10-batches-bin/); %s.\n%s",
      root, root, root, download.DOWNLOAD_HINT, download.cifar10_manual_steps(dest))
  end
  return download.cifar10(dest, {url = opts and opts.url, md5 = opts and opts.md5, fname = fname,
    output = opts and opts.output})
end

--- CIFAR10{root, train = true, transform, download = false, url, md5, records_per_file = 10000}
-- root: the folder holding the binary batches (data_batch_1.bin ... test_batch.bin, batches.meta.txt),
-- or its parent (torchvision's meaning: root/cifar-10-batches-bin/). With download = true and no files
-- there, fetches cifar-10-binary.tar.gz into root (url and md5 override the official ones, as does the
-- LIGHTNING_CIFAR10_URL variable) and unpacks it.
function M.CIFAR10(opts)
  local fname = "lightning.data.CIFAR10"
  if type(opts) ~= "table" then U.fail(fname, "expected an options table {root = ..., train = ...}, got %s", U.describe(opts)) end
  U.check_options(fname, opts, {"root", "train", "transform", "download", "url", "md5", "records_per_file"})
  local root = opts.root
  if type(root) ~= "string" then U.fail(fname, "root must be a folder path, got %s", U.describe(root)) end
  root = root:gsub("(.)/+$", "%1")
  local train = U.boolean(fname, "train", opts.train, true)
  local records = opts.records_per_file and U.positive_int(fname, "records_per_file", opts.records_per_file) or 10000
  local folder = M.cifar10_folder(root, U.boolean(fname, "download", opts.download, false), opts)
  local c = core.cifar10(folder, train, records)
  return Dataset.new(c, {name = "CIFAR10", transform = opts.transform, root = folder, extra = {train = train}})
end

-- ---- IDX: Fashion-MNIST and MNIST ----

local idx_files = {
  train = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
  test = {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
}

-- The path of an IDX file under root: plain or .gz, directly or in torchvision's <Name>/raw/.
local function find_idx(root, name, base)
  local tried = {}
  for _, dir in ipairs{root, root .. "/" .. name .. "/raw"} do
    for _, ext in ipairs{"", ".gz"} do
      local path = dir .. "/" .. base .. ext
      if U.file_exists(path) then return path end
      tried[#tried + 1] = path
    end
  end
  return nil, tried
end

local function idx_dataset(name, opts, default_root, classes, hint)
  local fname = "lightning.data." .. name
  if opts ~= nil and type(opts) ~= "table" then U.fail(fname, "expected an options table {root = ..., train = ...}, got %s", U.describe(opts)) end
  opts = U.check_options(fname, opts, {"root", "train", "transform"})
  local root = opts.root or default_root
  if type(root) ~= "string" then U.fail(fname, "root must be a folder path, got %s", U.describe(root)) end
  root = root:gsub("(.)/+$", "%1")
  local train = U.boolean(fname, "train", opts.train, true)
  local files = idx_files[train and "train" or "test"]
  local paths = {}
  for i, base in ipairs(files) do
    local path, tried = find_idx(root, name, base)
    if not path then
      U.fail(fname, "%s is missing: looked for %s%s", base, table.concat(tried, ", "), hint or "")
    end
    paths[i] = path
  end
  local c = core.idx_dataset(paths[1], paths[2], #classes, fname)
  local ds = Dataset.new(c, {name = name, transform = opts.transform, root = root, extra = {train = train}})
  ds.classes = classes
  return ds
end

M.FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

--- FashionMNIST{root = "/usr/share/datasets/fashion-mnist", train = true, transform}: IDX files, gzip or not.
function M.FashionMNIST(opts)
  return idx_dataset("FashionMNIST", opts, M.FASHION_MNIST_ROOT,
    {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"},
    " (on Debian: apt-get install dataset-fashion-mnist)")
end

--- MNIST{root, train = true, transform}
function M.MNIST(opts)
  return idx_dataset("MNIST", opts, nil,
    {"0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"})
end

-- ---- image folders ----

--- ImageFolder{root, image_size, channels = 3, transform, skip_bad = false, warn}
-- root/<class>/**/*.png, classes sorted by name (hidden folders skipped), images decoded by libpng and
-- converted to `channels` (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), resized (bilinear, antialiased) to
-- image_size (n or {h, w}; nil: every image must have the first one's size). A file that cannot be read
-- is an error naming it; with skip_bad = true it is left out with a warning (through warn, default
-- io.stderr) and counted in ds.skipped (ds.skipped_files says why).
function M.ImageFolder(opts)
  local fname = "lightning.data.ImageFolder"
  if type(opts) ~= "table" then U.fail(fname, "expected an options table {root = ..., image_size = ...}, got %s", U.describe(opts)) end
  U.check_options(fname, opts, {"root", "image_size", "channels", "transform", "skip_bad", "warn"})
  if type(opts.root) ~= "string" then U.fail(fname, "root must be a folder path, got %s", U.describe(opts.root)) end
  local root = opts.root:gsub("(.)/+$", "%1")
  local size = opts.image_size and U.size2(fname, "image_size", opts.image_size) or {0, 0}
  local channels = opts.channels == nil and 3 or U.positive_int(fname, "channels", opts.channels)
  if channels > 4 then U.fail(fname, "channels must be 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), got %d", channels) end
  local skip_bad = U.boolean(fname, "skip_bad", opts.skip_bad, false)
  local c, report = core.image_folder(root, channels, size[1], size[2], skip_bad)
  if report.skipped > 0 then
    local warn = opts.warn or function(msg) io.stderr:write(msg, "\n") end
    warn(("%s: warning: left out %d unreadable file%s of %s (first: %s)"):format(fname, report.skipped,
      report.skipped == 1 and "" or "s", root, report.messages[1]))
  end
  return Dataset.new(c, {name = "ImageFolder", transform = opts.transform, root = root,
    extra = {skipped = report.skipped, skipped_files = report.messages, ignored_files = report.ignored}})
end

return M
