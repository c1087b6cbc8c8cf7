-- ImageFolder: classes from sub-folders, torchvision's file order, channel conversion and resizing, and
-- bad folders and files (errors, or warnings with skip_bad).
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"

describe("data: ImageFolder", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("finds classes in sorted order and files in torchvision's order", function()
    D.make_folder(dir, {dog = 2, cat = 3, ["bird"] = 1})
    os.execute("mkdir -p '" .. dir .. "/cat/sub' '" .. dir .. "/.hidden'")
    L.data.write_png(dir .. "/cat/sub/a.png", L.zeros(3, 8, 8))
    L.data.write_png(dir .. "/cat/zz.PNG", L.ones(3, 8, 8))
    H.write_file(dir .. "/cat/readme.txt", "not an image")
    local ds = L.data.ImageFolder{root = dir}
    assert.same({"bird", "cat", "dog"}, ds.classes)
    assert.equal(3, ds.num_classes)
    assert.equal(8, #ds)
    assert.equal(1, ds.ignored_files)
    assert.same({1, 2, 2, 2, 2, 2, 3, 3}, ds:targets())
    -- cat/: img01..03 and zz.PNG, then cat/sub/a.png (folders by path, then their files by name)
    H.assert_close(ds[5].input, L.ones(3, 8, 8), 0)
    H.assert_close(ds[6].input, L.zeros(3, 8, 8), 0)
    assert.equal("3x8x8", tostring(ds[1].input:size()))
  end)

  it("decodes real PNGs and converts channels", function()
    os.execute("mkdir -p '" .. dir .. "/a' '" .. dir .. "/b'")
    os.execute("cp spec/fixtures/data/png/0_cat.png spec/fixtures/data/png/1002_ship.png '" .. dir .. "/a/'")
    os.execute("cp spec/fixtures/data/png/1009_frog.png '" .. dir .. "/b/'")
    local rgb = L.data.ImageFolder{root = dir}
    H.assert_close(rgb[1].input, L.data.read_png("spec/fixtures/data/png/0_cat.png"), 0)
    local gray = L.data.ImageFolder{root = dir, channels = 1}
    H.assert_close(gray[3].input, L.data.read_png("spec/fixtures/data/png/1009_frog.png", {channels = 1}), 0)
    assert.equal(2, gray[3].target)
    local rgba = L.data.ImageFolder{root = dir, channels = 4}
    assert.equal(1024, rgba[2].input[4]:sum())
  end)

  it("resizes every image to image_size, bilinear with antialiasing", function()
    os.execute("mkdir -p '" .. dir .. "/x'")
    local big = L.rand(3, 20, 30)
    L.data.write_png(dir .. "/x/big.png", big)
    L.data.write_png(dir .. "/x/small.png", L.rand(1, 5, 4))
    local ds = L.data.ImageFolder{root = dir, image_size = 10}
    assert.equal("3x10x10", tostring(ds[1].input:size()))
    assert.equal("3x10x10", tostring(ds[2].input:size()))
    local want = L.data.transforms.Resize({10, 10})(L.data.read_png(dir .. "/x/big.png"))
    H.assert_close(ds[1].input, want, 1e-6)
    local rect = L.data.ImageFolder{root = dir, image_size = {6, 9}}
    assert.equal("3x6x9", tostring(rect[1].input:size()))
  end)

  it("requires one size, or image_size, when images differ", function()
    os.execute("mkdir -p '" .. dir .. "/x'")
    L.data.write_png(dir .. "/x/a.png", L.rand(3, 8, 8))
    L.data.write_png(dir .. "/x/b.png", L.rand(3, 6, 8))
    D.fails_with({"lightning.data.ImageFolder: ", "b.png is 6x8 pixels but", "a.png is 8x8: give image_size"},
      L.data.ImageFolder, {root = dir})
  end)

  it("rejects a root with no class folders, an empty class folder, and a missing root", function()
    D.fails_with({"lightning.data.ImageFolder: ", dir .. " has no class folders (expected one sub-folder per class"},
      L.data.ImageFolder, {root = dir})
    D.make_folder(dir, {a = 1})
    os.execute("mkdir '" .. dir .. "/empty'")
    D.fails_with({"class folder " .. dir .. "/empty has no .png files (it is empty)"}, L.data.ImageFolder, {root = dir})
    H.write_file(dir .. "/empty/photo.jpg", "jpeg")
    D.fails_with({"empty has no .png files (only files of other types, which are not read)"}, L.data.ImageFolder, {root = dir})
    D.fails_with({"cannot open folder " .. dir .. "/nope", "No such file"}, L.data.ImageFolder, {root = dir .. "/nope"})
    H.write_file(dir .. "/file", "x")
    D.fails_with({dir .. "/file is not a folder"}, L.data.ImageFolder, {root = dir .. "/file"})
  end)

  local function with_bad_files()
    D.make_folder(dir, {a = 2, b = 2})
    H.write_file(dir .. "/a/notes.png", "this is a text file\n")
    H.write_file(dir .. "/b/empty.png", "")
    local good = H.read_file(dir .. "/a/img01.png")
    H.write_file(dir .. "/b/cut.png", good:sub(1, 40))
    os.execute("ln -s '" .. dir .. "/gone.png' '" .. dir .. "/b/dangling.png'")
  end

  it("names a bad file in its error", function()
    with_bad_files()
    D.fails_with({"lightning.data.ImageFolder: ", dir .. "/a/notes.png is not a PNG file"}, L.data.ImageFolder, {root = dir})
  end)

  it("leaves bad files out with skip_bad, with a warning, and counts them", function()
    with_bad_files()
    local warnings = {}
    local ds = L.data.ImageFolder{root = dir, skip_bad = true, warn = function(m) warnings[#warnings + 1] = m end}
    assert.equal(4, #ds)
    assert.equal(4, ds.skipped)
    assert.equal(1, #warnings)
    assert.truthy(warnings[1]:find("warning: left out 4 unreadable files of " .. dir, 1, true))
    local all = table.concat(ds.skipped_files, "\n")
    for _, frag in ipairs{"notes.png is not a PNG file", "empty.png is empty (0 bytes)", "cut.png is a corrupt",
      "dangling.png: No such file"} do
      assert.truthy(all:find(frag, 1, true), frag .. " in " .. all)
    end
    assert.same({1, 1, 2, 2}, ds:targets())
  end)

  it("reports a file that breaks after the data set was built, from ds[i] and from the loader's workers", function()
    D.make_folder(dir, {a = 3})
    local ds = L.data.ImageFolder{root = dir}
    H.write_file(dir .. "/a/img02.png", H.read_file(dir .. "/a/img02.png"):sub(1, 60))
    D.fails_with({"img02.png is a corrupt or truncated PNG file"}, function() return ds[2] end)
    local loader = L.data.DataLoader(ds, {batch_size = 2, num_workers = 2})
    D.fails_with({"DataLoader:iter: sample 2: ", "img02.png is a corrupt or truncated PNG file"}, function()
      for _ in loader:iter() do end
    end)
    os.remove(dir .. "/a/img03.png")
    D.fails_with({"sample 3: cannot open", "img03.png"}, function() return ds[3] end)
  end)

  it("rejects bad options", function()
    D.fails_with("lightning.data.ImageFolder: channels must be 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), got 5",
      L.data.ImageFolder, {root = dir, channels = 5})
    D.fails_with("lightning.data.ImageFolder: image_size must be positive, got 0", L.data.ImageFolder,
      {root = dir, image_size = 0})
    D.fails_with("lightning.data.ImageFolder: unknown option 'size'", L.data.ImageFolder, {root = dir, size = 3})
    D.fails_with("lightning.data.ImageFolder: root must be a folder path, got 5", L.data.ImageFolder, {root = 5})
  end)
end)
