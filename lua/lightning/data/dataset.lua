--- Data sets: #ds, ds[i] -> {input = tensor (C, H, W), target = class 1..K}, ds.classes, ds.num_classes.
-- A Dataset wraps a C data set (the samples live in C: CIFAR-10 and IDX files in memory as bytes, image
-- folders as a list of files decoded on demand) and a transform. ds:subset(indices) shares the C data.
local L = require "lightning"
local U = require "lightning.util.checks"
local T = require "lightning.data.transforms"

local Dataset = {}
Dataset.__name = "Dataset"

local methods = {}

local function core_seed() return L.core.data.random_seed() end

function Dataset.__index(self, key)
  if type(key) == "number" then return methods.get(self, key) end
  return methods[key]
end

function Dataset.__len(self) return self._c:len() end

function Dataset.__tostring(self)
  return ("%s (%d samples, %d classes, images %dx%dx%d)"):format(self.name, self._c:len(), self.num_classes,
    self.sample_shape[1], self.sample_shape[2], self.sample_shape[3])
end

--- A Dataset over a C data set. fields: name, transform (a transform, list or function, or nil).
function Dataset.new(c, fields)
  local info = c:info()
  local self = setmetatable({
    _c = c,
    name = fields.name or "Dataset",
    classes = info.classes,
    num_classes = info.num_classes,
    sample_shape = {info.channels, info.height, info.width},  -- before the transform
    root = fields.root,
  }, Dataset)
  self.transform = T.as_transform("lightning.data." .. self.name, fields.transform)
  for k, v in pairs(fields.extra or {}) do rawset(self, k, v) end
  return self
end

function Dataset.is_dataset(v) return getmetatable(v) == Dataset end

--- The C pipeline of the transform: false when there is none, nil when it needs Lua.
function methods:c_pipeline()
  if self.transform == nil then return false end
  return self.transform:c_pipeline()
end

--- Whether loading can run entirely in C (in the loader's worker threads).
function methods:runs_in_c()
  return self:c_pipeline() ~= nil
end

local function check_index(self, i)
  local n = self._c:len()
  if type(i) ~= "number" or i ~= math.floor(i) then
    U.fail("lightning.data." .. self.name, "index must be an integer, got %s", U.describe(i))
  end
  if i < 1 or i > n then U.fail("lightning.data." .. self.name, "index %d out of range (1..%d)", i, n) end
  return math.tointeger(i)
end

--- The sample at i with a given augmentation seed (seed nil: drawn from the global generator) in a given
-- epoch (0 when nil).
function methods:load(i, seed, epoch)
  i = check_index(self, i)
  local pipe = self:c_pipeline()
  if pipe ~= nil then
    local input, target = self._c:get(i, pipe or nil, seed, epoch)
    return input, target
  end
  local raw, target = self._c:get(i)
  return self.transform:_apply(raw, seed or core_seed(), i - 1, epoch), target
end

function methods:get(i)
  local input, target = methods.load(self, i)
  return {input = input, target = target}
end

--- The classes of all samples (1-based), without decoding images.
function methods:targets() return self._c:targets() end

--- The samples at the given 1-based indices (a list or 1-D tensor), sharing this data set's data.
-- opts.transform replaces the transform (default: the same one); give false for none.
function methods:subset(indices, opts)
  opts = U.check_options("Dataset:subset", opts, {"transform"})
  local c = self._c:subset(indices)
  local transform = self.transform
  if opts.transform ~= nil then transform = opts.transform or nil end
  local sub = Dataset.new(c, {name = self.name, transform = transform, root = self.root})
  sub.classes, sub.num_classes = self.classes, self.num_classes
  return sub
end

--- The same samples with another transform (false or nil: none).
function methods:with_transform(transform)
  local c = self._c:subset(L.arange(1, self._c:len() + 1))
  local ds = Dataset.new(c, {name = self.name, transform = transform or nil, root = self.root})
  return ds
end

return Dataset
