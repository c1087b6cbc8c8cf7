-- Transforms: the deterministic ones against torchvision 0.14 (spec/fixtures/data/transforms.lua, from
-- tools/make_transform_fixtures.py), the random ones against their definitions, and bad arguments.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"

local T = L.data.transforms
local F = T.functional
local fixture = dofile("spec/fixtures/data/transforms.lua")

local function tensor_of(f)
  return L.tensor(f.data):view(f.shape)
end

local inputs = {}
for name, f in pairs(fixture.inputs) do inputs[name] = tensor_of(f) end
local rgb, gray, big = inputs.rgb, inputs.gray, inputs.big
local fill = {0.5, 0.2, 0.9}

local cases = {
  resize_up = function() return F.resize(rgb, {11, 13}, {antialias = false}) end,
  resize_up_aa = function() return F.resize(rgb, {11, 13}) end,
  resize_down = function() return F.resize(big, {5, 7}, {antialias = false}) end,
  resize_down_aa = function() return F.resize(big, {5, 7}, {antialias = true}) end,
  resize_short_edge = function() return F.resize(rgb, 5) end,
  resize_gray = function() return F.resize(gray, {3, 8}) end,
  normalize = function() return F.normalize(rgb, {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}) end,
  normalize_gray = function() return F.normalize(gray, 0.5, 0.25) end,
  hflip = function() return F.hflip(rgb) end,
  vflip = function() return F.vflip(rgb) end,
  rotate_30 = function() return F.rotate(rgb, 30) end,
  rotate_m45_fill = function() return F.rotate(rgb, -45, fill) end,
  rotate_90_fill0 = function() return T.RandomRotation({90, 90})(rgb) end,
  rotate_gray_17 = function() return F.rotate(gray, 17) end,
  brightness = function() return F.adjust_brightness(rgb, 1.5) end,
  contrast = function() return F.adjust_contrast(rgb, 0.6) end,
  contrast_gray = function() return F.adjust_contrast(gray, 1.3) end,
  saturation = function() return F.adjust_saturation(rgb, 1.7) end,
  hue = function() return F.adjust_hue(rgb, 0.2) end,
  hue_negative = function() return F.adjust_hue(rgb, -0.35) end,
  color_jitter_fixed = function() return T.ColorJitter{brightness = {0.7, 0.7}}(rgb) end,
  center_crop_5 = function() return T.CenterCrop(5)(rgb) end,
  center_crop_4x8 = function() return F.center_crop(rgb, {4, 8}) end,
  center_crop_pad = function() return F.center_crop(rgb, {10, 12}) end,
  pad_constant = function() return F.pad(rgb, {1, 2, 3, 1}, {fill = 0.5}) end,
  pad_edge = function() return F.pad(rgb, {2, 1}, {padding_mode = "edge"}) end,
  pad_reflect = function() return T.Pad(2, {padding_mode = "reflect"})(rgb) end,
  pad_symmetric = function() return F.pad(rgb, {3, 1}, {padding_mode = "symmetric"}) end,
  crop_outside = function() return F.crop(rgb, 0, 3, 5, 9) end,  -- 1-based top/left: torchvision's (-1, 2)
  erase = function() return F.erase(rgb, 2, 3, 3, 4, fill) end,
  grayscale = function() return F.rgb_to_grayscale(rgb) end,
  grayscale3 = function() return T.Grayscale(3)(rgb) end,
  compose = function()
    return T.Compose{T.Resize(6), T.CenterCrop(5), T.Normalize({0.5, 0.4, 0.3}, {0.2, 0.3, 0.4})}(rgb)
  end,
}

describe("data: transforms against torchvision", function()
  for name in pairs(fixture.outputs) do
    it(name, function()
      assert.is_function(cases[name], "no Lua case for fixture " .. name)
      local want = tensor_of(fixture.outputs[name])
      local got = cases[name]()
      assert.equal(tostring(want:size()), tostring(got:size()))
      H.assert_close(got, want, 2e-5, name)
    end)
  end

  it("to_tensor turns (H, W, C) 0..255 pixels into a (C, H, W) image in [0, 1]; ToTensor passes images through", function()
    local hwc = L.tensor{{{255, 0, 51}, {0, 255, 102}}}  -- 1x2x3
    local chw = F.to_tensor(hwc)
    assert.equal("3x1x2", tostring(chw:size()))
    H.assert_close(chw, {{{1, 0}}, {{0, 1}}, {{0.2, 0.4}}}, 1e-6)
    H.assert_close(T.ToTensor()(rgb), rgb, 0)
    D.fails_with("functional.to_tensor: expected an (H, W, C) tensor of 0..255 values, got 2x2", F.to_tensor, L.zeros(2, 2))
  end)

  it("leaves its input alone", function()
    local copy = rgb:clone()
    F.hflip(rgb); F.adjust_hue(rgb, 0.3); T.RandomErasing{p = 1}(rgb)
    H.assert_close(rgb, copy, 0)
  end)
end)

describe("data: random transforms", function()
  local img = L.arange(3 * 6 * 8):view(3, 6, 8):div(3 * 6 * 8)

  -- The window of a 3x6x8 image padded by 2 that a crop of 6x8 took: finds (dy, dx) by matching.
  local function crop_offset(out)
    for dy = -2, 2 do
      for dx = -2, 2 do
        local want = F.crop(img, 1 + dy, 1 + dx, 6, 8)
        if H.max_rel_diff(out, want) == 0 then return dy, dx end
      end
    end
  end

  it("RandomCrop with padding takes every position of the padded image, uniformly", function()
    L.manual_seed(5)
    local t = T.RandomCrop({6, 8}, {padding = 2})
    local seen, n = {}, 0
    for _ = 1, 500 do
      local dy, dx = crop_offset(t(img))
      assert.is_not_nil(dy, "the crop is a window of the zero-padded image")
      local key = dy .. "," .. dx
      if not seen[key] then seen[key] = 0; n = n + 1 end
      seen[key] = seen[key] + 1
    end
    assert.equal(25, n)
    for _, count in pairs(seen) do assert.is_true(count > 5 and count < 45, "positions are about uniform") end
  end)

  it("RandomCrop's padding modes and pad_if_needed", function()
    local small = L.rand(3, 4, 4)
    local out = T.RandomCrop(6, {pad_if_needed = true, padding_mode = "edge"})(small)
    assert.equal("3x6x6", tostring(out:size()))
    local reflect = T.RandomCrop({4, 4}, {padding = {1, 1}, padding_mode = "reflect"})(small)
    assert.equal("3x4x4", tostring(reflect:size()))
    -- a crop as large as the padded image is the padded image
    H.assert_close(T.RandomCrop(8, {padding = 2, padding_mode = "symmetric"})(small),
      F.pad(small, 2, {padding_mode = "symmetric"}), 0)
  end)

  it("flips with probability p", function()
    L.manual_seed(1)
    local flip = T.RandomHorizontalFlip(0.3)
    local flipped = 0
    for _ = 1, 1000 do
      if H.max_rel_diff(flip(img), img) > 0 then flipped = flipped + 1 end
    end
    assert.is_true(flipped > 250 and flipped < 350, "flipped " .. flipped .. " of 1000")
    H.assert_close(T.RandomVerticalFlip(1)(img), F.vflip(img), 0)
    H.assert_close(T.RandomHorizontalFlip(0)(img), img, 0)
  end)

  it("RandomRotation draws its angle from the range", function()
    L.manual_seed(2)
    local out = T.RandomRotation({30, 30}, {fill = fill})(rgb)
    H.assert_close(out, F.rotate(rgb, 30, fill), 1e-6)
    local r = T.RandomRotation(10)(rgb)
    assert.equal("3x7x9", tostring(r:size()))
  end)

  it("ColorJitter stays within its ranges and keeps values in [0, 1]", function()
    L.manual_seed(4)
    local jitter = T.ColorJitter{brightness = 0.5, contrast = 0.5, saturation = 0.5, hue = 0.2}
    for _ = 1, 50 do
      local out = jitter(rgb)
      assert.is_true(out:min() >= 0 and out:max() <= 1)
    end
    -- brightness alone: the output is the input times a factor in [0.5, 1.5] (before clamping)
    local b = T.ColorJitter{brightness = 0.5}
    for _ = 1, 20 do
      local out = b(gray)
      local factor = out:sum() / gray:sum()
      assert.is_true(factor >= 0.5 - 1e-5 and factor <= 1.5 + 1e-5)
    end
  end)

  it("RandomErasing erases one rectangle of the requested area, or nothing", function()
    L.manual_seed(6)
    local ones = L.ones(3, 20, 20)
    local erased_any = false
    for _ = 1, 100 do
      local out = T.RandomErasing{p = 1, value = 0}(ones)
      local area = 400 - out[1]:sum()
      if area > 0 then erased_any = true end
      assert.is_true(area <= 0.33 * 400 * 1.3 + 5, "area " .. area)
      assert.equal(out[1]:sum(), out[3]:sum())
    end
    assert.is_true(erased_any)
    H.assert_close(T.RandomErasing{p = 0}(ones), ones, 0)
    local noisy = T.RandomErasing{p = 1, value = "random", scale = {0.3, 0.3}, ratio = {1, 1}}(L.zeros(1, 10, 10))
    assert.is_true(noisy:abs():sum() > 0)
  end)

  it("draws the same numbers for the same seed", function()
    local t = T.Compose{T.RandomCrop(7, {padding = 2}), T.RandomHorizontalFlip(), T.ColorJitter{brightness = 0.3, hue = 0.1},
      T.RandomRotation(15), T.RandomErasing{}}
    L.manual_seed(9)
    local a = t(rgb)
    L.manual_seed(9)
    H.assert_close(t(rgb), a, 0)
  end)
end)

describe("data: Compose", function()
  it("runs C transforms and Lua functions in order", function()
    local t = T.Compose{T.CenterCrop(5), function(x) return x * 2 end, T.Normalize(0.5, 0.5)}
    assert.is_nil(t:c_pipeline())
    local want = (F.center_crop(rgb, 5) * 2 - 0.5) / 0.5
    H.assert_close(t(rgb), want, 1e-6)
    local nested = T.Compose{T.Compose{T.CenterCrop(5)}, T.Normalize(0.5, 0.5), T.ToTensor()}
    assert.is_not_nil(nested:c_pipeline())
    H.assert_close(nested(rgb), (F.center_crop(rgb, 5) - 0.5) / 0.5, 1e-6)
    assert.equal(5, select(3, nested:out_shape(3, 7, 9)))
  end)

  it("prints like torchvision", function()
    local s = tostring(T.Compose{T.RandomCrop(32, {padding = 4}), T.RandomHorizontalFlip()})
    assert.truthy(s:find("Compose(", 1, true) and s:find("RandomCrop(size={32, 32}, padding={4, 4, 4, 4})", 1, true))
  end)

  it("reports a transform that cannot take the image", function()
    D.fails_with("step 1 (RandomCrop): crop 40x40 is larger than the input image 7x9", T.RandomCrop(40), rgb)
    D.fails_with("step 2 (Normalize): mean and std have 3 values, the image has 1 channels",
      T.Compose{T.CenterCrop(3), T.Normalize({0.1, 0.2, 0.3}, {1, 1, 1})}, gray)
    D.fails_with("expected an image with 1 or 3 channels, got 2", T.ColorJitter{hue = 0.1}, L.zeros(2, 3, 3))
    D.fails_with("expected an image tensor (C, H, W), got a tensor of size 7x9", T.CenterCrop(3), L.zeros(7, 9))
    D.fails_with('expected an image tensor (C, H, W), got "img"', T.CenterCrop(3), "img")
  end)

  it("predicts the failure of a padding too large to mirror, as running it does", function()
    -- in a mirroring mode RandomCrop pads twice (its padding, then pad_if_needed's); the first image is
    -- 2000x60001, over the pixel limit, though the crop is small (found by fuzz/transform_fuzz.c)
    local t = T.RandomCrop({4000, 8}, {padding = {30000, 0}, pad_if_needed = true, padding_mode = "reflect"})
    local want = "step 1 (RandomCrop): the padded image 2000x60001 is too large"
    D.fails_with(want, t.out_shape, t, 1, 2000, 1)
    D.fails_with(want, t, L.zeros(1, 2000, 1))
    local constant = T.RandomCrop({4000, 8}, {padding = {30000, 0}, pad_if_needed = true})
    assert.same({1, 4000, 8}, {constant:out_shape(1, 2000, 1)})
  end)

  it("predicts the failure of a resize whose intermediate image is too large", function()
    -- rows are resized first: 65536x1 to 1x65536 passes through 65536x65536
    local t = T.Resize({1, 65536})
    D.fails_with("step 1 (Resize): resizing 65536x1 to 1x65536 passes through 65536x65536, too large", t.out_shape, t, 1, 65536, 1)
    assert.same({1, 1, 65536}, {T.Resize({1, 65536}):out_shape(1, 1, 1)})
  end)
end)

describe("data: transforms reject bad arguments", function()
  local P = "lightning.data.transforms."
  it("with the function's name and what was expected", function()
    D.fails_with(P .. "Normalize: mean has 3 values and std 2", T.Normalize, {1, 2, 3}, {1, 2})
    D.fails_with(P .. "Normalize: std[2] is 0", T.Normalize, {1, 2}, {1, 0})
    D.fails_with(P .. "Normalize: mean must be a number or a list of 1 to 4 numbers, got \"x\"", T.Normalize, "x", 1)
    D.fails_with(P .. "Resize: size must be positive, got 0", T.Resize, 0)
    D.fails_with(P .. "Resize: unknown option 'interpolation' (known: antialias)", T.Resize, 5, {interpolation = "nearest"})
    D.fails_with(P .. "CenterCrop: size must be a positive integer or {height, width}", T.CenterCrop, {1, 2, 3})
    D.fails_with(P .. "RandomCrop: padding must be a number or a list of 1, 2 or 4 numbers, got table", T.RandomCrop, 4, {padding = {1, 2, 3}})
    D.fails_with(P .. "RandomCrop: padding must be a non-negative integer, got -1", T.RandomCrop, 4, {padding = -1})
    D.fails_with(P .. "RandomCrop: padding_mode must be constant, edge, reflect or symmetric, got \"wrap\"", T.RandomCrop, 4, {padding_mode = "wrap"})
    D.fails_with(P .. "RandomHorizontalFlip: p must be in [0, 1], got 1.5", T.RandomHorizontalFlip, 1.5)
    D.fails_with(P .. "RandomRotation: degrees must be non-negative when it is a single number, got -5", T.RandomRotation, -5)
    D.fails_with(P .. "RandomRotation: degrees must be a number or {min, max} with min <= max", T.RandomRotation, {10, -10})
    D.fails_with(P .. "ColorJitter: brightness must be non-negative when it is a single number", T.ColorJitter, {brightness = -1})
    D.fails_with(P .. "ColorJitter: hue must satisfy -0.5 <= min <= max <= 0.5", T.ColorJitter, {hue = {-0.6, 0.1}})
    D.fails_with(P .. "ColorJitter: unknown option 'brightnes'", T.ColorJitter, {brightnes = 0.2, contrast = 0.1})
    D.fails_with(P .. "Grayscale: num_output_channels must be 1 or 3, got 2", T.Grayscale, 2)
    D.fails_with(P .. "RandomErasing: scale must be {min, max} within [0, 1]", T.RandomErasing, {scale = {0.5, 2}})
    D.fails_with(P .. "RandomErasing: ratio must be {min, max} with 0 < min <= max", T.RandomErasing, {ratio = {0, 1}})
    D.fails_with(P .. "Compose: item 2 must be a transform or a function, got 5", T.Compose, {T.ToTensor(), 5})
    D.fails_with(P .. "Compose: expected a list of transforms, got \"x\"", T.Compose, "x")
    D.fails_with(P .. "Lambda: expected a function, got 1", T.Lambda, 1)
    D.fails_with(P .. "functional.adjust_hue: hue must be in [-0.5, 0.5], got 0.7", F.adjust_hue, rgb, 0.7)
    D.fails_with(P .. "functional.rotate: angle must be a finite number, got nan", F.rotate, rgb, 0 / 0)
  end)
end)
