--- L.plot.samples(images, labels, class_names, path[, opts]): a grid of images with their class names
-- under them, as torchvision's make_grid with captions.
--   L.plot.samples(batch.input, batch.target, dm.classes, "samples.png",
--     {mean = {0.4914, 0.4822, 0.4465}, std = {0.2470, 0.2435, 0.2616}})
-- images: a (B, C, H, W) tensor, C = 1 or 3. labels: B class indices 1..K (a tensor or a list), or nil
-- for no captions. class_names: the K names (nil: captions are the indices).
-- opts: nrow (images per row, 8, as make_grid's), padding (pixels between tiles, 8), mean and std (a
-- number or one per channel: the Normalize transform to undo, x * std + mean), scale (whole-number
-- zoom; default brings the longer side to about 128 pixels: CIFAR-10's 32 x 4), title, max_images (64).
-- Without mean/std, values outside [0, 1] are rescaled from the batch's own min..max (make_grid's
-- normalize=True); values inside are shown as they are. Returns the canvas; path may be nil.
local L = require "lightning"
local U = require "lightning.util.checks"
local Canvas = require "lightning.plot.canvas"
local save = require "lightning.plot.save"

local STYLE = {pad = 12, caption_gap = 4, text = "#202020"}

-- (C, 1, 1) tensor of the per-channel values v (a number or C numbers).
local function per_channel(fname, what, v, c)
  local list = U.numbers(fname, what, v, c)
  if #list == 1 then for i = 2, c do list[i] = list[1] end end
  if #list ~= c then U.fail(fname, "%s must have 1 or %d values (one per channel), got %d", what, c, #list) end
  local t = L.empty(c, 1, 1)
  for i = 1, c do t[i][1][1] = list[i] end
  return t
end

local function check_labels(fname, labels, b, names)
  if labels == nil then return nil end
  if L.is_tensor(labels) then
    if labels:dim() ~= 1 then U.fail(fname, "labels must be a 1-D tensor or a list of %d class indices, got a tensor of size %s", b, tostring(labels:size())) end
    labels = labels:totable()
  end
  if type(labels) ~= "table" then U.fail(fname, "labels must be a list or a 1-D tensor of %d class indices, got %s", b, U.describe(labels)) end
  if #labels ~= b then U.fail(fname, "labels has %d entries but there are %d images", #labels, b) end
  local out = {}
  for i = 1, b do
    local v = labels[i]
    if type(v) ~= "number" or v ~= math.floor(v) or v < 1 or (names and v > #names) then
      U.fail(fname, "labels[%d] must be a class index in 1..%s, got %s", i, names and tostring(#names) or "K", U.describe(v))
    end
    out[i] = math.tointeger(v)
  end
  return out
end

local function check_names(fname, names)
  if names == nil then return nil end
  if type(names) ~= "table" then U.fail(fname, "class_names must be a list of names, got %s", U.describe(names)) end
  for i = 1, #names do
    if type(names[i]) ~= "string" and type(names[i]) ~= "number" then
      U.fail(fname, "class_names[%d] must be a string, got %s", i, U.describe(names[i]))
    end
  end
  return names
end

local function samples(images, labels, class_names, path, opts)
  local fname = "lightning.plot.samples"
  if not L.is_tensor(images) or images:dim() ~= 4 or (images:size(2) ~= 1 and images:size(2) ~= 3) then
    U.fail(fname, "images must be a (B, C, H, W) tensor with C = 1 or 3, got %s",
      L.is_tensor(images) and ("a tensor of size " .. tostring(images:size())) or U.describe(images))
  end
  local b, c, h, w = images:size(1), images:size(2), images:size(3), images:size(4)
  if b == 0 or h == 0 or w == 0 then U.fail(fname, "images is empty (%s)", tostring(images:size())) end
  local names = check_names(fname, class_names)
  local targets = check_labels(fname, labels, b, names)
  if path ~= nil and type(path) ~= "string" then U.fail(fname, "path must be a string, got %s", U.describe(path)) end
  opts = U.check_options(fname, opts, {"nrow", "padding", "mean", "std", "scale", "title", "max_images"})
  local nrow = opts.nrow == nil and 8 or U.positive_int(fname, "nrow", opts.nrow)
  local padding = opts.padding == nil and 8 or U.nonneg_int(fname, "padding", opts.padding)
  local max_images = opts.max_images == nil and 64 or U.positive_int(fname, "max_images", opts.max_images)
  local zoom = opts.scale == nil and math.max(1, 128 // math.max(h, w)) or U.positive_int(fname, "scale", opts.scale)
  if (opts.mean == nil) ~= (opts.std == nil) then U.fail(fname, "mean and std go together: give both or neither") end
  if opts.title ~= nil and type(opts.title) ~= "string" then U.fail(fname, "title must be a string, got %s", U.describe(opts.title)) end

  local n = math.min(b, max_images)
  local x = images:narrow(1, 1, n)
  if opts.mean ~= nil then
    local std = per_channel(fname, "std", opts.std, c)
    local mean = per_channel(fname, "mean", opts.mean, c)
    x = x * std + mean
  else
    local lo, hi = x:min(), x:max()
    if lo < 0 or hi > 1 then x = (x - lo) / math.max(hi - lo, 1e-12) end
  end

  -- captions: one text scale for all, 2 when every name fits under its tile
  local tile_w, tile_h = w * zoom, h * zoom
  local captions, caption_scale = {}, 2
  if targets then
    for i = 1, n do
      local label = targets[i]
      captions[i] = names and tostring(names[label]) or tostring(label)
      if (#captions[i] * Canvas.font.advance - 1) * 2 > tile_w then caption_scale = 1 end
    end
  end
  local caption_h = targets and Canvas.font.height * caption_scale + STYLE.caption_gap or 0
  local title_h = opts.title and Canvas.font.height * 3 + 2 * STYLE.pad or STYLE.pad

  local cols = math.min(nrow, n)
  local rows = (n + cols - 1) // cols
  local width = 2 * STYLE.pad + cols * tile_w + (cols - 1) * padding
  local height = title_h + rows * (tile_h + caption_h) + (rows - 1) * padding + STYLE.pad
  if width > Canvas.MAX_SIZE or height > Canvas.MAX_SIZE then
    U.fail(fname, "a grid of %d x %d tiles of %dx%d pixels is too large; lower scale or max_images", rows, cols, tile_w, tile_h)
  end
  local canvas = Canvas(width, height)
  if opts.title then
    local title, scale = canvas:fit_text(opts.title, 3, width - 2 * STYLE.pad, 2)
    canvas:text(width / 2, STYLE.pad, title, {scale = scale, align = "center", color = STYLE.text})
  end
  for i = 1, n do
    local col, row = (i - 1) % cols, (i - 1) // cols
    local tx = 1 + STYLE.pad + col * (tile_w + padding)
    local ty = 1 + title_h + row * (tile_h + caption_h + padding)
    canvas:image(x[i], tx, ty, tile_w, tile_h)
    if targets then
      canvas:text(tx + tile_w / 2, ty + tile_h + STYLE.caption_gap, (canvas:fit_text(captions[i], caption_scale, tile_w, caption_scale)),
        {scale = caption_scale, align = "center", color = STYLE.text})
    end
  end
  if path then save(canvas, path, fname) end
  return canvas
end

return samples
