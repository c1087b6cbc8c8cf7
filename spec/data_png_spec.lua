-- PNG decoding and encoding through libpng's simplified API: real CIFAR-10 PNGs and PIL-written files
-- against PIL's pixels, every colour type written by write_png and read back, and bad files.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"

local FIX = "spec/fixtures/data/png/"
local expected = dofile("spec/fixtures/data/png_expected.lua")

-- The bytes of an expected image as (C, H, W) values /255.
local function expected_tensor(e)
  local bytes = e.hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
  local t = L.empty(e.channels, e.height, e.width)
  for y = 0, e.height - 1 do
    for x = 0, e.width - 1 do
      for c = 0, e.channels - 1 do
        t:set(c + 1, y + 1, x + 1, bytes:byte((y * e.width + x) * e.channels + c + 1) / 255)
      end
    end
  end
  return t
end

describe("data: PNG decoding", function()
  it("reads the real CIFAR-10 PNGs as PIL does", function()
    for _, name in ipairs{"0_cat.png", "1001_airplane.png", "1002_ship.png", "1009_frog.png"} do
      local x = L.data.read_png(FIX .. name)
      assert.equal("3x32x32", tostring(x:size()))
      H.assert_close(x, expected_tensor(expected[name]), 1e-6, name)
    end
  end)

  it("reads PNGs of other colour types written by PIL: 16-bit gray, palette with transparency, gray+alpha, RGBA", function()
    local cases = {pil_gray16 = 1, pil_palette_trns = 4, pil_gray_alpha = 2, pil_rgba = 4}
    for name, channels in pairs(cases) do
      local e = expected[name .. ".png"]
      local x = L.data.read_png(FIX .. name .. ".png")
      assert.equal(channels, x:size(1), name)
      -- 16-bit samples are scaled to 8 bits (libpng may round the last bit either way)
      H.assert_close(x, expected_tensor(e), name == "pil_gray16" and 1.01 / 255 or 1e-6, name)
    end
  end)

  it("converts channels on request as PIL's convert() does", function()
    local rgb = L.data.read_png(FIX .. "0_cat.png")
    local gray = L.data.read_png(FIX .. "0_cat.png", {channels = 1})
    local want = rgb[1] * 0.299 + rgb[2] * 0.587 + rgb[3] * 0.114
    H.assert_close(gray[1], want, 1e-5, "gray")
    local rgba = L.data.read_png(FIX .. "0_cat.png", {channels = 4})
    H.assert_close(rgba:narrow(1, 1, 3), rgb, 1e-7, "colour kept")
    assert.equal(32 * 32, rgba[4]:sum())
    local ga = L.data.read_png(FIX .. "pil_rgba.png", {channels = 2})
    H.assert_close(ga[2], L.data.read_png(FIX .. "pil_rgba.png")[4], 1e-7, "alpha kept")
    local from_gray = L.data.read_png(FIX .. "pil_gray_alpha.png", {channels = 3})
    H.assert_close(from_gray[1], from_gray[3], 0, "gray replicated")
  end)

  it("decodes from a string", function()
    local x = L.data.decode_png(H.read_file(FIX .. "1002_ship.png"))
    H.assert_close(x, L.data.read_png(FIX .. "1002_ship.png"), 0)
  end)
end)

describe("data: PNG writing", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("round-trips every colour type at 8 bits: gray, gray+alpha, RGB, RGBA, and (H, W) tensors", function()
    L.manual_seed(3)
    for c = 1, 4 do
      local img = L.rand(c, 5, 7)
      local path = dir .. "/c" .. c .. ".png"
      L.data.write_png(path, img)
      local back = L.data.read_png(path)
      assert.equal(c, back:size(1))
      H.assert_close(back, img, 0.5 / 255 + 1e-6, "channels " .. c)
    end
    local plane = L.rand(4, 6)
    L.data.write_png(dir .. "/hw.png", plane)
    H.assert_close(L.data.read_png(dir .. "/hw.png")[1], plane, 0.5 / 255 + 1e-6, "(H, W)")
  end)

  it("clamps values outside [0, 1]", function()
    L.data.write_png(dir .. "/clamp.png", L.tensor{{{-1, 0.5, 2}}})
    H.assert_close(L.data.read_png(dir .. "/clamp.png"), {{{0, 128 / 255, 1}}}, 1e-6)
  end)

  it("writes palette PNGs (at most 256 colours) that decode to the same pixels", function()
    local img = L.zeros(3, 4, 4)
    img[1]:narrow(1, 1, 2):fill(1)
    img[3]:narrow(2, 3, 2):fill(0.5)
    local path = dir .. "/pal.png"
    L.data.write_png(path, img, {palette = true})
    assert.equal(3, H.read_file(path):byte(26))  -- IHDR colour type 3: indexed
    H.assert_close(L.data.read_png(path), img, 0.5 / 255 + 1e-6)
    local rgba = L.rand(4, 3, 3)
    L.data.write_png(dir .. "/pal4.png", rgba, {palette = true})
    H.assert_close(L.data.read_png(dir .. "/pal4.png"), rgba, 0.5 / 255 + 1e-6, "palette with alpha")
    D.fails_with("at most 256 colours", L.data.write_png, dir .. "/many.png", L.rand(3, 20, 20), {palette = true})
  end)

  it("writes 16-bit linear PNGs, which read back gamma-encoded at 8 bits", function()
    local img = L.tensor{{{0, 0.001, 0.05, 0.214, 0.5, 1}}}
    local path = dir .. "/g16.png"
    L.data.write_png(path, img, {bit_depth = 16})
    local bytes = H.read_file(path)
    assert.equal(16, bytes:byte(25))  -- IHDR bit depth
    -- libpng gamma-encodes the linear samples for 8-bit output with its sRGB approximation, v^(1/2.2)
    local encoded = {}
    for i, v in ipairs(img:view(-1):totable()) do encoded[i] = v ^ (1 / 2.2) end
    H.assert_close(L.data.read_png(path):view(-1), encoded, 1.5 / 255)
    -- RGBA at 16 bits: colour is stored premultiplied, and comes back unpremultiplied
    local rgba = L.tensor{{{0.5}}, {{0.25}}, {{1}}, {{1}}}
    L.data.write_png(dir .. "/rgba16.png", rgba, {bit_depth = 16})
    assert.equal(4, L.data.read_png(dir .. "/rgba16.png"):size(1))
  end)

  it("replaces a file atomically and leaves no temporary file behind", function()
    local path = dir .. "/a.png"
    L.data.write_png(path, L.zeros(1, 2, 2))
    L.data.write_png(path, L.ones(1, 2, 2))
    assert.equal(4, L.data.read_png(path):sum())
    local p = io.popen("ls -a '" .. dir .. "'")
    local listing = p:read("a")
    p:close()
    assert.equal(".\n..\na.png\n", listing)
    -- a failed write leaves the old file as it was
    D.fails_with("at most 256 colours", L.data.write_png, path, L.rand(3, 20, 20), {palette = true})
    assert.equal(4, L.data.read_png(path):sum())
    D.fails_with("lightning.data.write_png", L.data.write_png, dir .. "/no/such/folder/x.png", L.zeros(1, 2, 2))
  end)

  it("rejects bad arguments with clear errors", function()
    local w = L.data.write_png
    D.fails_with("lightning.data.write_png: argument 2 must be a tensor, got number", w, dir .. "/x.png", 3)
    D.fails_with("expected a (C, H, W) tensor with C = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), or an (H, W) tensor, got 5x2x2",
      w, dir .. "/x.png", L.zeros(5, 2, 2))
    D.fails_with("got 4", w, dir .. "/x.png", L.zeros(4))
    D.fails_with("bit_depth must be 8 or 16, got 12", w, dir .. "/x.png", L.zeros(1, 2, 2), {bit_depth = 12})
    D.fails_with("unknown option 'depth'", w, dir .. "/x.png", L.zeros(1, 2, 2), {depth = 8})
    D.fails_with("a palette PNG must have bit_depth 8", w, dir .. "/x.png", L.zeros(1, 2, 2), {bit_depth = 16, palette = true})
    D.fails_with("image size 0x2 is out of range", w, dir .. "/x.png", L.zeros(1, 0, 2))
    D.fails_with("channels must be 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), got 5", L.data.read_png, FIX .. "0_cat.png", {channels = 5})
  end)
end)

describe("data: bad PNG files", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("a 0-byte file", function()
    H.write_file(dir .. "/empty.png", "")
    D.fails_with({"lightning.data.read_png: ", "empty.png is empty (0 bytes), expected a PNG image"}, L.data.read_png, dir .. "/empty.png")
  end)

  it("a text file named .png", function()
    H.write_file(dir .. "/notes.png", "hello, this is text\n")
    D.fails_with({"notes.png is not a PNG file", 'starts with "hello, t"'}, L.data.read_png, dir .. "/notes.png")
  end)

  it("a truncated file", function()
    local bytes = H.read_file(FIX .. "0_cat.png")
    for _, keep in ipairs{10, 40, #bytes // 2, #bytes - 13} do
      H.write_file(dir .. "/cut.png", bytes:sub(1, keep))
      D.fails_with({"cut.png is a corrupt", "PNG file (libpng: "}, L.data.read_png, dir .. "/cut.png")
    end
  end)

  it("a corrupt file (a flipped byte in the image data)", function()
    local bytes = H.read_file(FIX .. "0_cat.png")
    local at = #bytes // 2
    H.write_file(dir .. "/bad.png", bytes:sub(1, at - 1) .. string.char((bytes:byte(at) + 1) % 256) .. bytes:sub(at + 1))
    D.fails_with({"bad.png is a corrupt", "libpng"}, L.data.read_png, dir .. "/bad.png")
  end)

  it("a missing file, a folder, and an unreadable file", function()
    D.fails_with({"cannot open", "nothere.png", "No such file"}, L.data.read_png, dir .. "/nothere.png")
    os.execute("mkdir '" .. dir .. "/folder.png'")
    D.fails_with({"folder.png", "a folder"}, L.data.read_png, dir .. "/folder.png")
    os.execute("ln -s '" .. dir .. "/gone' '" .. dir .. "/dangling.png'")
    D.fails_with({"cannot open", "dangling.png"}, L.data.read_png, dir .. "/dangling.png")
    -- without read permission (root reads everything, so only for other users)
    local p = io.popen("id -u")
    local uid = tonumber(p:read("a"))
    p:close()
    if uid ~= 0 then
      os.execute("cp " .. FIX .. "0_cat.png '" .. dir .. "/locked.png' && chmod 000 '" .. dir .. "/locked.png'")
      D.fails_with({"cannot open", "locked.png", "Permission denied"}, L.data.read_png, dir .. "/locked.png")
    end
  end)

  it("bytes that are not a PNG, given to decode_png", function()
    D.fails_with("lightning.data.decode_png: the data is not a PNG file", L.data.decode_png, "GIF89a....")
    D.fails_with("argument 1 must be a string, got number", L.data.decode_png, 5)
  end)
end)
