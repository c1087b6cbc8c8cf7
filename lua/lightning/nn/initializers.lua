--- nn.init: weight initialisations that are not a layer's default (PyTorch's torch.nn.init names).
--   nn.init.dirac_(w[, groups = 1])     the identity: a convolution that passes its first inputs through
--   nn.init.whitening_(w, images[, {eps = 5e-4}])
--                                        a convolution that whitens its input's patches (airbench's first
--                                        layer), from the patches' covariance
--   nn.init.patch_covariance(images, kh, kw) --> the (c kh kw) x (c kh kw) covariance of the patches
-- Each writes into w in place and returns it; w may be a view (conv.weight:narrow(1, 1, n)).
local grad_mode = require "lightning.autograd.mode"
local L = require "lightning"
local options = require "lightning.util.options"
local Conv2d = require "lightning.nn.conv"
local metrics = require "lightning.metrics"

local init = {}

local function check_weight(fname, w)
  if not L.is_tensor(w) then options.fail(fname, "expected a weight tensor, got %s", options.describe(w)) end
  if w:dim() ~= 4 then
    options.fail(fname, "expected a 4-D convolution weight (out, in, kh, kw), got size %s", tostring(w:size()))
  end
end

--- torch.nn.init.dirac_: zeroes w (out, in, kh, kw) and sets the centre tap of filter g * out/groups + d
-- on its input d (d < min(out/groups, in)): the convolution then passes its first inputs through.
-- airbench applies it to the first in_channels filters of its 3x3 convolutions
-- (nn.init.dirac_(conv.weight:narrow(1, 1, conv.in_channels))).
function init.dirac_(w, groups)
  local fname = "nn.init.dirac_"
  check_weight(fname, w)
  groups = groups == nil and 1 or groups
  if math.type(groups) ~= "integer" or groups < 1 or w:size(1) % groups ~= 0 then
    options.fail(fname, "groups must be a positive integer that divides the %d filters, got %s", w:size(1),
      options.describe(groups))
  end
  local per_group = w:size(1) // groups
  local ch, cw = w:size(3) // 2 + 1, w:size(4) // 2 + 1
  w:zero()
  for g = 0, groups - 1 do
    for d = 1, math.min(per_group, w:size(2)) do w[g * per_group + d][d][ch][cw] = 1 end
  end
  return w
end

-- Columns per matrix product: each product's float32 sums stay short, and the parts add up in double.
local BLOCK = 8192

-- The batches of images: a tensor, a list of tensors, or a loader (loader:iter() yielding batch.input).
local function each_batch(fname, images)
  if L.is_tensor(images) then images = {images} end
  if type(images) == "table" and type(images.iter) == "function" then
    local step, state, first = images:iter()
    local bi = 0
    return function()
      local i, batch = step(state, first)
      first = i
      if i == nil then return nil end
      bi = bi + 1
      return bi, batch.input
    end
  end
  if type(images) ~= "table" or #images == 0 then
    options.fail(fname, "expected images (N, C, H, W), a list of such batches or a loader of them, got %s",
      options.describe(images))
  end
  return ipairs(images)
end

--- The second moment of the kh x kw patches (stride 1, no padding) of images (N, C, H, W), of a list of
-- such batches or of a loader's batches: E[p p^T] over every patch p, its entries ordered (channel, row,
-- column) as a convolution weight's; not centred, as airbench computes it. A (C kh kw) x (C kh kw)
-- float32 tensor, summed in double precision.
function init.patch_covariance(images, kh, kw)
  return init._patch_covariance("nn.init.patch_covariance", images, kh, kw)
end

-- The largest float32.
local FLOAT_MAX = 3.4028234663852886e38

-- patch_covariance for fname (whitening_ reports its own name): non-finite images are refused by batch,
-- and second moments beyond float32 are named as what they are (the values too large), not left for
-- L.eigh to find in a matrix the caller never passed.
function init._patch_covariance(fname, images, kh, kw)
  local c, conv, k
  local largest = 0
  local sums, count = {}, 0
  for bi, x in each_batch(fname, images) do
    if not L.is_tensor(x) or x:dim() ~= 4 then
      options.fail(fname, "batch %d must be an (N, C, H, W) tensor, got %s", bi,
        L.is_tensor(x) and tostring(x:size()) or options.describe(x))
    end
    if c == nil then
      c, k = x:size(2), x:size(2) * kh * kw
      -- the patches as a convolution's output: one 0/1 filter per patch entry (exact in float32)
      conv = Conv2d(c, k, {kh, kw}, {bias = false})
      conv.needs_input_grad = false
      conv.weight:zero()
      for i = 1, k do
        local ci, r = (i - 1) // (kh * kw), (i - 1) % (kh * kw)
        conv.weight[i][ci + 1][r // kw + 1][r % kw + 1] = 1
      end
      for i = 1, k * k do sums[i] = 0 end
    elseif x:size(2) ~= c then
      options.fail(fname, "batch %d has %d channels, the first had %d", bi, x:size(2), c)
    end
    local bad = metrics.count_nonfinite(x)
    if bad > 0 then
      options.fail(fname, "batch %d of the images holds %d NaN or infinite value%s: the images must be finite", bi, bad,
        bad == 1 and "" or "s")
    end
    if x:numel() > 0 then largest = math.max(largest, -(x:min()), (x:max())) end   -- (abs() works in place)
    -- (k, patches), contiguous whatever layout the convolution wrote (its sums below then round alike)
    local p = conv:forward(x):transpose(1, 2):reshape(k, -1):contiguous()
    local m = p:size(2)
    for first = 1, m, BLOCK do
      local part = p:narrow(2, first, math.min(BLOCK, m - first + 1))
      local prod = L.mm(part, part:t()):view(k * k):totable()
      for i = 1, k * k do sums[i] = sums[i] + prod[i] end
    end
    count = count + m
  end
  if count == 0 then options.fail(fname, "the loader gave no images") end
  for i = 1, #sums do
    sums[i] = sums[i] / count
    if not (math.abs(sums[i]) <= FLOAT_MAX) then
      options.fail(fname, "the patches' second moments overflow float32 (the images' values reach %g): scale the "
        .. "images down first (normalise them, as airbench does)", largest)
    end
  end
  return L.tensor(sums):view(k, k)
end

--- airbench's whitening initialisation of a kh x kw convolution with 2 C kh kw filters: the first
-- C kh kw are the eigenvectors of the patches' covariance (init.patch_covariance), by decreasing
-- eigenvalue, each scaled by 1 / sqrt(eigenvalue + eps), and the rest their negatives. An
-- eigenvector's sign is arbitrary (L.eigh fixes one); with both w and -w among the filters the layer is
-- the same up to the order of its filters whichever sign is chosen. images: (N, C, H, W), or a list of
-- such batches, or a loader of them (airbench: the first 5000 training images, normalised, without
-- augmentation).
function init.whitening_(w, images, opts)
  local fname = "nn.init.whitening_"
  check_weight(fname, w)
  local o = options.check(fname, opts, {eps = {kind = "number", min = 0, default = 5e-4}})
  local c, kh, kw = w:size(2), w:size(3), w:size(4)
  local k = c * kh * kw
  if w:size(1) ~= 2 * k then
    options.fail(fname, "a %dx%d whitening of %d channels has 2 x %d = %d filters, the weight has %d", kh, kw, c, k,
      2 * k, w:size(1))
  end
  local cov = init._patch_covariance(fname, images, kh, kw)
  if cov:size(1) ~= k then
    options.fail(fname, "the images have %d channels, the weight takes %d", cov:size(1) // (kh * kw), c)
  end
  local values, vectors = L.eigh(cov)
  local vt = vectors:t():contiguous():totable()   -- rows: eigenvectors, by increasing eigenvalue
  local vals = values:totable()
  local data = {}
  for f = 1, k do
    local row, scale = vt[k - f + 1], 1 / math.sqrt(vals[k - f + 1] + o.eps)
    for i = 1, k do
      data[(f - 1) * k + i] = row[i] * scale
      data[(f + k - 1) * k + i] = -row[i] * scale
    end
  end
  w:copy(L.tensor(data):view(2 * k, c, kh, kw))
  return w
end

-- Initialisation changes parameters in place and is never recorded for autograd (torch.nn.init runs
-- under no_grad too).
for name, fn in pairs(init) do
  init[name] = function(...) return grad_mode.with_grad_enabled(false, fn, ...) end
end

return init
