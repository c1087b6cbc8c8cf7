--- lightning.data.transforms: torchvision's transforms, run by C kernels.
-- Each transform is a Lua object carrying a C description (an op table); Compose of such transforms
-- becomes one C pipeline, which data sets run in ds[i] and the loader runs in its worker threads. A plain
-- Lua function (or T.Lambda) may sit in a Compose too, but then that data set loads on the Lua thread.
-- Images are float tensors (C, H, W) with values in [0, 1], as data sets hand them out.
local L = require "lightning"
local U = require "lightning.util.checks"

local core = L.core.data
local T = {}

local PREFIX = "lightning.data.transforms."

-- ---- the transform object ----

local Transform = {}
Transform.__index = Transform
Transform.__name = "Transform"

--- Applies the transform to an image tensor (C, H, W); random choices come from the global generator.
function Transform:__call(x)
  return self:_apply(x, nil, 0)
end

function Transform:__tostring() return self._repr end

local function check_image(fname, x)
  if not L.is_tensor(x) then U.fail(fname, "expected an image tensor (C, H, W), got %s", U.describe(x)) end
  if x:dim() ~= 3 then U.fail(fname, "expected an image tensor (C, H, W), got a tensor of size %s", tostring(x:size())) end
end

-- Steps: a list of {ops = {...}, pipeline = <C pipeline>} (a run of C transforms) or {fn = f} (Lua).
local function pipeline_of(step)
  if not step.pipeline then step.pipeline = core.pipeline(step.ops) end
  return step.pipeline
end

--- x through every step. seed nil: drawn from the global generator; stream: the sample's index (0-based);
-- epoch: the epoch (0 when nil; the alternating flip turns over in odd ones).
function Transform:_apply(x, seed, stream, epoch)
  for n, step in ipairs(self._steps) do
    if step.fn then
      x = step.fn(x)
    else
      check_image(PREFIX .. self._name, x)
      -- each C run of a mixed pipeline gets its own seed, so two runs do not repeat the same draws
      local s = seed and (seed + n * 0x9E3779B97F4A7C15) or nil
      x = pipeline_of(step):apply(x, s, stream, epoch)
    end
  end
  return x
end

--- The C pipeline that does the whole transform, or nil when a Lua function is part of it.
function Transform:c_pipeline()
  if #self._steps == 0 then return core.pipeline({}) end
  if #self._steps == 1 and self._steps[1].ops then return pipeline_of(self._steps[1]) end
  return nil
end

--- The shape an image (c, h, w) comes out as (only for C transforms).
function Transform:out_shape(c, h, w)
  local p = self:c_pipeline()
  if not p then return nil end
  return p:out_shape(c, h, w)
end

local function new_transform(name, repr, op)
  return setmetatable({_name = name, _repr = repr, _steps = {{ops = {op}}}}, Transform)
end

function T.is_transform(v) return getmetatable(v) == Transform end

-- ---- argument helpers ----

local function fmt_list(t)
  local parts = {}
  for i, v in ipairs(t) do parts[i] = tostring(v) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- torchvision's padding: n, {n}, {left/right, top/bottom} or {left, top, right, bottom} -> {l, t, r, b}
local function padding4(fname, v)
  if type(v) == "number" then v = {v} end
  if type(v) ~= "table" or not (#v == 1 or #v == 2 or #v == 4) then
    U.fail(fname, "padding must be a number or a list of 1, 2 or 4 numbers, got %s", U.describe(v))
  end
  local p = {}
  for i = 1, #v do p[i] = U.nonneg_int(fname, "padding", v[i]) end
  if #p == 1 then return {p[1], p[1], p[1], p[1]} end
  if #p == 2 then return {p[1], p[2], p[1], p[2]} end
  return p
end

local padding_modes = {constant = true, edge = true, reflect = true, symmetric = true}
local function padding_mode(fname, v)
  v = v or "constant"
  if not padding_modes[v] then
    U.fail(fname, "padding_mode must be constant, edge, reflect or symmetric, got %s", U.describe(v))
  end
  return v
end

local function probability(fname, p, default)
  if p == nil then return default end
  U.number(fname, "p", p)
  if p < 0 or p > 1 then U.fail(fname, "p must be in [0, 1], got %s", tostring(p)) end
  return p
end

-- ---- the transforms ----

--- ToTensor(): data sets already hand out float (C, H, W) images in [0, 1], which is what ToTensor makes
-- of a PIL image in torchvision; here it is a no-op kept so that pipelines read the same. For 8-bit pixels
-- from elsewhere, (H, W, C) with values 0..255, use T.functional.to_tensor.
function T.ToTensor()
  return new_transform("ToTensor", "ToTensor()", {op = "to_tensor"})
end

--- Normalize(mean, std): (x - mean[c]) / std[c] per channel (one value applies to every channel).
function T.Normalize(mean, std)
  local fname = PREFIX .. "Normalize"
  mean = U.numbers(fname, "mean", mean, 4)
  std = U.numbers(fname, "std", std, 4)
  if #mean ~= #std then U.fail(fname, "mean has %d values and std %d", #mean, #std) end
  for i, s in ipairs(std) do
    if s == 0 then U.fail(fname, "std[%d] is 0", i) end
  end
  return new_transform("Normalize", ("Normalize(mean=%s, std=%s)"):format(fmt_list(mean), fmt_list(std)),
    {op = "normalize", values = mean, stds = std})
end

--- Resize(size, {antialias = true}): bilinear. size n resizes the smaller edge to n (keeping the aspect
-- ratio), {h, w} resizes to exactly that. antialias = true (PIL's behaviour, the default here) filters when
-- shrinking; false is torchvision 0.14's default for tensors.
function T.Resize(size, opts)
  local fname = PREFIX .. "Resize"
  opts = U.check_options(fname, opts, {"antialias"})
  local op = {op = "resize", antialias = U.boolean(fname, "antialias", opts.antialias, true)}
  if type(size) == "number" or (type(size) == "table" and #size == 1) then
    op.size = {U.positive_int(fname, "size", type(size) == "table" and size[1] or size)}
  else
    op.size = U.size2(fname, "size", size)
  end
  return new_transform("Resize", ("Resize(size=%s)"):format(fmt_list(op.size)), op)
end

--- CenterCrop(size): the central window; an image smaller than size is padded with zeros first.
function T.CenterCrop(size)
  local fname = PREFIX .. "CenterCrop"
  local s = U.size2(fname, "size", size)
  return new_transform("CenterCrop", ("CenterCrop(size=%s)"):format(fmt_list(s)), {op = "center_crop", size = s})
end

--- Pad(padding, {fill = 0, padding_mode = "constant"})
function T.Pad(padding, opts)
  local fname = PREFIX .. "Pad"
  opts = U.check_options(fname, opts, {"fill", "padding_mode"})
  local op = {op = "pad", pad = padding4(fname, padding), padding_mode = padding_mode(fname, opts.padding_mode)}
  if opts.fill ~= nil then op.values = U.numbers(fname, "fill", opts.fill, 4) end
  return new_transform("Pad", ("Pad(padding=%s, padding_mode=%s)"):format(fmt_list(op.pad), op.padding_mode), op)
end

--- RandomCrop(size, {padding, pad_if_needed = false, fill = 0, padding_mode = "constant"}): pads, then
-- crops a window at a uniformly random position.
function T.RandomCrop(size, opts)
  local fname = PREFIX .. "RandomCrop"
  opts = U.check_options(fname, opts, {"padding", "pad_if_needed", "fill", "padding_mode"})
  local op = {op = "random_crop", size = U.size2(fname, "size", size),
    pad = opts.padding ~= nil and padding4(fname, opts.padding) or {0, 0, 0, 0},
    pad_if_needed = U.boolean(fname, "pad_if_needed", opts.pad_if_needed, false),
    padding_mode = padding_mode(fname, opts.padding_mode)}
  if opts.fill ~= nil then op.values = U.numbers(fname, "fill", opts.fill, 4) end
  return new_transform("RandomCrop", ("RandomCrop(size=%s, padding=%s)"):format(fmt_list(op.size), fmt_list(op.pad)), op)
end

--- RandomHorizontalFlip(p = 0.5)
function T.RandomHorizontalFlip(p)
  p = probability(PREFIX .. "RandomHorizontalFlip", p, 0.5)
  return new_transform("RandomHorizontalFlip", ("RandomHorizontalFlip(p=%s)"):format(p), {op = "hflip", p = p})
end

--- AlternatingHorizontalFlip({seed}): airbench's flip (Keller Jordan, arXiv 2404.00498): each sample is
-- flipped or not by a coin of its own, drawn from `seed` and the sample's index (the same coin in every
-- epoch), and the other way in odd epochs (epochs from 0), so that every image is seen both ways in any
-- two consecutive epochs. seed defaults to a draw of the global generator when the transform is made
-- (L.manual_seed fixes it). The DataLoader passes the epoch and the index; called on an image alone, the
-- transform sees sample 0 of epoch 0.
function T.AlternatingHorizontalFlip(opts)
  local fname = PREFIX .. "AlternatingHorizontalFlip"
  opts = U.check_options(fname, opts, {"seed"})
  local seed = opts.seed
  if seed == nil then seed = core.random_seed() end
  if math.type(seed) ~= "integer" then U.fail(fname, "seed must be an integer, got %s", U.describe(seed)) end
  return new_transform("AlternatingHorizontalFlip", ("AlternatingHorizontalFlip(seed=%d)"):format(seed),
    {op = "alternating_hflip", seed = seed})
end

--- RandomVerticalFlip(p = 0.5)
function T.RandomVerticalFlip(p)
  p = probability(PREFIX .. "RandomVerticalFlip", p, 0.5)
  return new_transform("RandomVerticalFlip", ("RandomVerticalFlip(p=%s)"):format(p), {op = "vflip", p = p})
end

--- RandomRotation(degrees, {fill = 0}): by an angle uniform in [-degrees, degrees] (or {lo, hi}),
-- counter-clockwise, bilinear, about the centre; uncovered pixels get fill (torchvision's blending rule).
function T.RandomRotation(degrees, opts)
  local fname = PREFIX .. "RandomRotation"
  opts = U.check_options(fname, opts, {"fill"})
  local range
  if type(degrees) == "number" then
    U.number(fname, "degrees", degrees)
    if degrees < 0 then U.fail(fname, "degrees must be non-negative when it is a single number, got %s", degrees) end
    range = {-degrees, degrees}
  else
    range = U.numbers(fname, "degrees", degrees, 2)
    if #range ~= 2 or range[1] > range[2] then U.fail(fname, "degrees must be a number or {min, max} with min <= max") end
  end
  local fill = U.numbers(fname, "fill", opts.fill == nil and 0 or opts.fill, 4)
  return new_transform("RandomRotation", ("RandomRotation(degrees=%s)"):format(fmt_list(range)),
    {op = "rotation", range = range, values = fill})
end

-- torchvision's ColorJitter._check_input: x -> [max(0, center - x), center + x], or a {min, max} range
local function jitter_range(fname, name, v, center, lo_bound, hi_bound, clip)
  if v == nil then return nil end
  local r
  if type(v) == "number" then
    U.number(fname, name, v)
    if v < 0 then U.fail(fname, "%s must be non-negative when it is a single number, got %s", name, v) end
    r = {center - v, center + v}
    if clip then r[1] = math.max(r[1], 0) end
  elseif type(v) == "table" and #v == 2 then
    r = {U.number(fname, name, v[1]), U.number(fname, name, v[2])}
    if not (lo_bound <= r[1] and r[1] <= r[2] and r[2] <= hi_bound) then
      U.fail(fname, "%s must satisfy %s <= min <= max <= %s, got {%s, %s}", name, lo_bound, hi_bound, r[1], r[2])
    end
  else
    U.fail(fname, "%s must be a number or {min, max}, got %s", name, U.describe(v))
  end
  if r[1] == center and r[2] == center then return nil end
  return r
end

--- ColorJitter{brightness, contrast, saturation, hue} (or positional): each adjustment with a factor
-- drawn uniformly from its range, in a random order, as torchvision.
function T.ColorJitter(brightness, contrast, saturation, hue)
  local fname = PREFIX .. "ColorJitter"
  if type(brightness) == "table" and (brightness.brightness or brightness.contrast or brightness.saturation
      or brightness.hue or next(brightness) == nil) then
    local opts = U.check_options(fname, brightness, {"brightness", "contrast", "saturation", "hue"})
    brightness, contrast, saturation, hue = opts.brightness, opts.contrast, opts.saturation, opts.hue
  end
  local op = {op = "color_jitter",
    brightness = jitter_range(fname, "brightness", brightness, 1, 0, math.huge, true),
    contrast = jitter_range(fname, "contrast", contrast, 1, 0, math.huge, true),
    saturation = jitter_range(fname, "saturation", saturation, 1, 0, math.huge, true),
    hue = jitter_range(fname, "hue", hue, 0, -0.5, 0.5, false)}
  if op.hue and (op.hue[1] < -0.5 or op.hue[2] > 0.5) then U.fail(fname, "hue must lie in [-0.5, 0.5]") end
  local parts = {}
  for _, k in ipairs{"brightness", "contrast", "saturation", "hue"} do
    if op[k] then parts[#parts + 1] = k .. "=" .. fmt_list(op[k]) end
  end
  return new_transform("ColorJitter", "ColorJitter(" .. table.concat(parts, ", ") .. ")", op)
end

--- Grayscale(num_output_channels = 1): 0.2989 R + 0.587 G + 0.114 B.
function T.Grayscale(num_output_channels)
  local fname = PREFIX .. "Grayscale"
  local n = num_output_channels == nil and 1 or U.positive_int(fname, "num_output_channels", num_output_channels)
  if n ~= 1 and n ~= 3 then U.fail(fname, "num_output_channels must be 1 or 3, got %d", n) end
  return new_transform("Grayscale", ("Grayscale(num_output_channels=%d)"):format(n), {op = "grayscale", out_channels = n})
end

--- RandomErasing{p = 0.5, scale = {0.02, 0.33}, ratio = {0.3, 3.3}, value = 0}: value a number, one per
-- channel, or "random" (standard normal noise).
function T.RandomErasing(opts)
  local fname = PREFIX .. "RandomErasing"
  opts = U.check_options(fname, opts, {"p", "scale", "ratio", "value"})
  local scale = opts.scale and U.numbers(fname, "scale", opts.scale, 2) or {0.02, 0.33}
  local ratio = opts.ratio and U.numbers(fname, "ratio", opts.ratio, 2) or {0.3, 3.3}
  if #scale ~= 2 or scale[1] < 0 or scale[2] > 1 or scale[1] > scale[2] then
    U.fail(fname, "scale must be {min, max} within [0, 1], got %s", fmt_list(scale))
  end
  if #ratio ~= 2 or ratio[1] <= 0 or ratio[1] > ratio[2] then
    U.fail(fname, "ratio must be {min, max} with 0 < min <= max, got %s", fmt_list(ratio))
  end
  local op = {op = "random_erasing", p = probability(fname, opts.p, 0.5), range = scale, ratio = ratio}
  if opts.value ~= "random" then op.values = U.numbers(fname, "value", opts.value == nil and 0 or opts.value, 4) end
  return new_transform("RandomErasing", ("RandomErasing(p=%s, scale=%s, ratio=%s)"):format(op.p, fmt_list(scale),
    fmt_list(ratio)), op)
end

--- Lambda(fn): a Lua function as a transform (it makes the data set load on the Lua thread).
function T.Lambda(fn)
  if type(fn) ~= "function" then U.fail(PREFIX .. "Lambda", "expected a function, got %s", U.describe(fn)) end
  return setmetatable({_name = "Lambda", _repr = "Lambda()", _steps = {{fn = fn}}}, Transform)
end

--- Compose{t1, t2, ...}: transforms, Compose objects, or plain Lua functions, applied in order.
function T.Compose(list)
  local fname = PREFIX .. "Compose"
  if type(list) ~= "table" or getmetatable(list) == Transform then
    U.fail(fname, "expected a list of transforms, got %s", U.describe(list))
  end
  local steps, reprs = {}, {}
  local function add_ops(ops)
    local last = steps[#steps]
    if last and last.ops then
      for _, op in ipairs(ops) do last.ops[#last.ops + 1] = op end
    else
      local copy = {}
      for i, op in ipairs(ops) do copy[i] = op end
      steps[#steps + 1] = {ops = copy}
    end
  end
  for i = 1, #list do
    local t = list[i]
    if getmetatable(t) == Transform then
      for _, step in ipairs(t._steps) do
        if step.fn then steps[#steps + 1] = {fn = step.fn} else add_ops(step.ops) end
      end
      reprs[#reprs + 1] = "  " .. t._repr:gsub("\n", "\n  ")
    elseif type(t) == "function" or (type(t) == "table" and getmetatable(t) and getmetatable(t).__call) then
      steps[#steps + 1] = {fn = t}
      reprs[#reprs + 1] = "  <Lua function>"
    else
      U.fail(fname, "item %d must be a transform or a function, got %s", i, U.describe(t))
    end
  end
  if #list == 0 then steps = {} end
  local self = setmetatable({_name = "Compose", _repr = "Compose(\n" .. table.concat(reprs, "\n") .. "\n)", _steps = steps},
    Transform)
  if #steps == 1 and steps[1].ops and #steps[1].ops > 32 then
    U.fail(fname, "at most 32 C transforms in one Compose, got %d", #steps[1].ops)
  end
  if self:c_pipeline() then self:c_pipeline() end  -- builds it now, so that bad parameters fail here
  return self
end

--- Turns what a data set was given as its transform into a Transform (or nil).
function T.as_transform(fname, t)
  if t == nil then return nil end
  if getmetatable(t) == Transform then return t end
  if type(t) == "function" then return T.Lambda(t) end
  if type(t) == "table" and getmetatable(t) == nil then return T.Compose(t) end
  U.fail(fname, "transform must be a transform, a list of transforms or a function, got %s", U.describe(t))
end

-- ---- functional forms (torchvision.transforms.functional) ----

local F = {}
T.functional = F

local function run(name, x, op)
  local t = new_transform(name, name, op)
  check_image(PREFIX .. "functional." .. name, x)
  return t:_apply(x, 0, 0)
end

--- to_tensor(x): an (H, W, C) image of 0..255 values (how 8-bit pixels arrive from elsewhere) as the
-- (C, H, W) image in [0, 1] that the transforms take: what torchvision's ToTensor does to a uint8 image.
function F.to_tensor(x)
  local fname = PREFIX .. "functional.to_tensor"
  if not L.is_tensor(x) or x:dim() ~= 3 then
    U.fail(fname, "expected an (H, W, C) tensor of 0..255 values, got %s", L.is_tensor(x) and tostring(x:size()) or U.describe(x))
  end
  return x:permute(3, 1, 2):contiguous():div(255)
end

function F.resize(x, size, opts) return T.Resize(size, opts)(x) end
function F.normalize(x, mean, std) return T.Normalize(mean, std)(x) end
function F.center_crop(x, size) return T.CenterCrop(size)(x) end
function F.pad(x, padding, opts) return T.Pad(padding, opts)(x) end
-- A result for x: a new empty tensor on x's device (the host when x is no tensor: the binding says so).
local function result_for(x)
  local out = L.empty(0)
  if L.is_tensor(x) and x:device() ~= "cpu" then out = out:to(x:device()) end
  return out
end

--- hflip(x[, out]): x mirrored left to right; x an image (C, H, W) or a batch of them (N, C, H, W), on the
-- host or a GPU (then out is there too). out, if given, receives the result (resized; reused, so that a
-- loop allocates nothing) and must not share x's storage.
function F.hflip(x, out) return core.images_hflip(out or result_for(x), x) end

local shift_modes = {constant = true, edge = true, reflect = true, symmetric = true}

--- shift(x, dy, dx[, {padding_mode = "constant", out}]): x's content moved down by dy rows and right by dx
-- columns (negative: up, left), for an image (C, H, W) or a batch (N, C, H, W); the pixels that come in
-- from outside are padding_mode's (constant: 0, edge, reflect, symmetric). shift(x, 1, 1, {padding_mode =
-- "reflect"}) is the top-left crop of x padded by 1 pixel with reflection (airbench's test-time
-- translation; shift(x, -1, -1, ...) the bottom-right one). Devices and out as for hflip.
function F.shift(x, dy, dx, opts)
  local fname = PREFIX .. "functional.shift"
  opts = U.check_options(fname, opts, {"padding_mode", "out"})
  local mode = opts.padding_mode or "constant"
  if not shift_modes[mode] then
    U.fail(fname, "padding_mode must be constant, edge, reflect or symmetric, got %s", U.describe(mode))
  end
  return core.images_shift(opts.out or result_for(x), x, dy, dx, mode)
end
function F.vflip(x) return run("vflip", x, {op = "vflip", p = 1}) end
function F.rgb_to_grayscale(x, n) return T.Grayscale(n)(x) end

--- crop(x, top, left, height, width): top and left 1-based; outside the image is 0, as torchvision.
function F.crop(x, top, left, height, width)
  local fname = PREFIX .. "functional.crop"
  return run("crop", x, {op = "crop", offset = {U.number(fname, "top", top) - 1, U.number(fname, "left", left) - 1},
    size = {U.positive_int(fname, "height", height), U.positive_int(fname, "width", width)}})
end

--- rotate(x, angle[, fill]): counter-clockwise by angle degrees; without fill the outside is 0 (F.rotate
-- with fill = None), with fill torchvision's blending (what RandomRotation does).
function F.rotate(x, angle, fill)
  local fname = PREFIX .. "functional.rotate"
  U.number(fname, "angle", angle)
  local op = {op = "rotation", range = {angle, angle}}
  if fill ~= nil then op.values = U.numbers(fname, "fill", fill, 4) end
  return run("rotate", x, op)
end

local function adjust(name, key, lo, hi)
  F[name] = function(x, factor)
    local fname = PREFIX .. "functional." .. name
    U.number(fname, key, factor)
    if factor < lo or factor > hi then U.fail(fname, "%s must be in [%s, %s], got %s", key, lo, hi, factor) end
    return run(name, x, {op = "color_jitter", [key] = {factor, factor}})
  end
end
adjust("adjust_brightness", "brightness", 0, math.huge)
adjust("adjust_contrast", "contrast", 0, math.huge)
adjust("adjust_saturation", "saturation", 0, math.huge)
adjust("adjust_hue", "hue", -0.5, 0.5)

--- erase(x, top, left, height, width, value): top and left 1-based; value a number or one per channel.
function F.erase(x, top, left, height, width, value)
  local fname = PREFIX .. "functional.erase"
  return run("erase", x, {op = "erase", offset = {U.number(fname, "top", top) - 1, U.number(fname, "left", left) - 1},
    size = {U.positive_int(fname, "height", height), U.positive_int(fname, "width", width)},
    values = U.numbers(fname, "value", value, 4)})
end

return T
