--- L.plot.make_grid(images[, opts]) --> a (3, H', W') tensor: torchvision.utils.make_grid (0.14), value
-- for value (checked against it in spec/plot_grid_spec.lua).
--   L.data.write_png("grid.png", L.plot.make_grid(batch.input, {nrow = 8, normalize = true}))
-- images: (B, C, H, W) with C = 1 or 3 (gray is repeated to RGB), or one image (C, H, W).
-- opts: nrow (images per row, 8), padding (2), pad_value (0), normalize (false: rescale to [0, 1] from
-- value_range {lo, hi} or the data's min..max, clamping first), scale_each (normalize each image by
-- its own range). As torchvision, a batch of one image comes back as that image, without padding.
local L = require "lightning"
local U = require "lightning.util.checks"

local function check_images(fname, images)
  if not L.is_tensor(images) then U.fail(fname, "images must be a (B, C, H, W) tensor, got %s", U.describe(images)) end
  if images:dim() == 3 then images = images:view(1, images:size(1), images:size(2), images:size(3)) end
  if images:dim() ~= 4 or (images:size(2) ~= 1 and images:size(2) ~= 3) then
    U.fail(fname, "images must be a (B, C, H, W) tensor with C = 1 or 3, got a tensor of size %s", tostring(images:size()))
  end
  if images:numel() == 0 then U.fail(fname, "images is empty (%s)", tostring(images:size())) end
  return images
end

-- torchvision's norm_ip: clamp to [lo, hi], then map it to [0, 1].
local function normalize_into(t, lo, hi)
  t:clamp(lo, hi):add(-lo):div(math.max(hi - lo, 1e-5))
end

local function make_grid(images, opts)
  local fname = "lightning.plot.make_grid"
  images = check_images(fname, images)
  opts = U.check_options(fname, opts, {"nrow", "padding", "pad_value", "normalize", "value_range", "scale_each"})
  local nrow = opts.nrow == nil and 8 or U.positive_int(fname, "nrow", opts.nrow)
  local padding = opts.padding == nil and 2 or U.nonneg_int(fname, "padding", opts.padding)
  local pad_value = opts.pad_value == nil and 0 or U.number(fname, "pad_value", opts.pad_value)
  local normalize = U.boolean(fname, "normalize", opts.normalize, false)
  local scale_each = U.boolean(fname, "scale_each", opts.scale_each, false)
  local range = opts.value_range
  if range ~= nil and (type(range) ~= "table" or type(range[1]) ~= "number" or type(range[2]) ~= "number") then
    U.fail(fname, "value_range must be {lo, hi}, got %s", U.describe(range))
  end

  local b, h, w = images:size(1), images:size(3), images:size(4)
  local x = images:expand(b, 3, h, w):clone()  -- a copy: normalizing must not change the caller's
  if normalize then
    local parts = scale_each and {} or {x}
    if scale_each then for i = 1, b do parts[i] = x[i] end end
    for _, t in ipairs(parts) do
      if range then normalize_into(t, range[1], range[2]) else normalize_into(t, t:min(), t:max()) end
    end
  end
  if b == 1 then return x[1]:clone() end

  local cols = math.min(nrow, b)
  local rows = (b + cols - 1) // cols
  local cell_h, cell_w = h + padding, w + padding
  local grid = L.full({3, cell_h * rows + padding, cell_w * cols + padding}, pad_value)
  for k = 1, b do
    local row, col = (k - 1) // cols, (k - 1) % cols
    grid:narrow(2, row * cell_h + padding + 1, h):narrow(3, col * cell_w + padding + 1, w):copy(x[k])
  end
  return grid
end

return make_grid
