-- Fashion-MNIST and MNIST: IDX files, gzip-compressed or not (made here), and every kind of bad file.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"

describe("data: FashionMNIST and MNIST", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("reads gzip-compressed IDX files", function()
    D.make_idx_set(dir, 12, 5, 4, 3)
    local ds = L.data.FashionMNIST{root = dir}
    assert.equal(12, #ds)
    assert.equal("Ankle boot", ds.classes[10])
    assert.equal(10, ds.num_classes)
    local s = ds[3]
    assert.equal("1x4x3", tostring(s.input:size()))
    assert.equal(3, s.target)                        -- label (3 - 1) % 10 = 2, 1-based 3
    assert.near(((2 * 12 + 5) * 5 % 256) / 255, s.input[1][2][3], 1e-7)  -- flat index 2*12 + 1*3 + 2
    local test = L.data.FashionMNIST{root = dir, train = false}
    assert.equal(5, #test)
    assert.equal(2, test[1].target)
    assert.near(255 / 255, test[1].input[1][1][1], 1e-7)
  end)

  it("reads plain IDX files, and torchvision's <Name>/raw/ layout", function()
    D.make_idx_set(dir .. "/MNIST/raw", 7, 2, 2, 2, true)
    local ds = L.data.MNIST{root = dir}
    assert.equal(7, #ds)
    assert.equal("7 - seven", ds.classes[8])
    assert.equal(1, ds[1].target)
  end)

  it("reads the real Fashion-MNIST from its default root when it is installed", function()
    local f = io.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    if not f then return end
    f:close()
    local ds = L.data.FashionMNIST{train = false}
    assert.equal(10000, #ds)
    assert.equal("1x28x28", tostring(ds[1].input:size()))
    assert.equal(10, ds[1].target)  -- the first test image is an ankle boot
  end)

  local function expect(fragments, make)
    D.make_idx_set(dir, 4, 2, 3, 3, true)
    make(dir .. "/train-images-idx3-ubyte", dir .. "/train-labels-idx1-ubyte")
    return D.fails_with(fragments, L.data.MNIST, {root = dir})
  end

  it("rejects wrong magic numbers and unsupported types", function()
    expect({"lightning.data.MNIST: ", "train-images-idx3-ubyte is not an IDX file: wrong magic number 50 4b 03 04"},
      function(images) H.write_file(images, "PK\3\4 a zip file") end)
    expect({"holds IDX type 0x0D (float); only 0x08 (unsigned byte) is supported"},
      function(images) H.write_file(images, D.idx_bytes({4, 3, 3}, function() return 0 end, 0x0D)) end)
    expect({"has 0 dimensions in its IDX header, expected 1 to 4"},
      function(images) H.write_file(images, string.char(0, 0, 8, 0)) end)
  end)

  it("rejects truncated, oversized and 0-byte files", function()
    local full = D.idx_bytes({4, 3, 3}, function(i) return i end)
    expect({"train-images-idx3-ubyte is truncated: its header declares 4x3x3 = 36 values, the file holds 30"},
      function(images) H.write_file(images, full:sub(1, #full - 6)) end)
    expect({"is truncated inside its IDX header"}, function(images) H.write_file(images, full:sub(1, 9)) end)
    expect({"is longer than its header declares: 4x3x3 = 36 values, the file holds 37"},
      function(images) H.write_file(images, full .. "x") end)
    expect({"train-labels-idx1-ubyte is empty (0 bytes), expected an IDX file"},
      function(_, labels) H.write_file(labels, "") end)
    expect({"is too short for an IDX file (2 bytes"}, function(_, labels) H.write_file(labels, "\0\0") end)
  end)

  it("rejects corrupt and truncated gzip data", function()
    local function gz_of(path, bytes)
      H.write_file(path, bytes)
      return H.read_file(D.gzip(path))
    end
    expect({"train-images-idx3-ubyte is truncated: the gzip stream ends early"}, function(images)
      local gz = gz_of(dir .. "/tmp", D.idx_bytes({4, 3, 3}, function(i) return i end))
      H.write_file(images, gz:sub(1, #gz - 12))
    end)
    expect({"is corrupt gzip data (zlib: "}, function(images)
      local gz = gz_of(dir .. "/tmp", D.idx_bytes({4, 3, 3}, function(i) return i * 7 end))
      H.write_file(images, gz:sub(1, 12) .. ("\255"):rep(8) .. gz:sub(21))
    end)
    expect({"bytes of trailing data after the gzip stream"}, function(images)
      local gz = gz_of(dir .. "/tmp", D.idx_bytes({4, 3, 3}, function(i) return i end))
      H.write_file(images, gz .. "junk")
    end)
  end)

  it("checks that images and labels agree", function()
    expect({"holds 4 images but", "holds 3 labels"}, function(_, labels)
      H.write_file(labels, D.idx_bytes({3}, function() return 1 end))
    end)
    expect({"train-labels-idx1-ubyte: label 2 is 10, expected 0 to 9"}, function(_, labels)
      H.write_file(labels, D.idx_bytes({4}, function(i) return i * 10 end))
    end)
    expect({"train-images-idx3-ubyte has 2 dimensions, expected 3 (images x rows x columns)"}, function(images)
      H.write_file(images, D.idx_bytes({4, 9}, function() return 0 end))
    end)
    expect({"train-labels-idx1-ubyte has 2 dimensions, expected 1"}, function(_, labels)
      H.write_file(labels, D.idx_bytes({4, 1}, function() return 0 end))
    end)
  end)

  it("says which files it looked for when they are missing", function()
    D.fails_with({"lightning.data.FashionMNIST: train-images-idx3-ubyte is missing: looked for " .. dir .. "/train-images-idx3-ubyte",
      dir .. "/FashionMNIST/raw/train-images-idx3-ubyte.gz", "apt-get install dataset-fashion-mnist"},
      L.data.FashionMNIST, {root = dir})
    D.fails_with("lightning.data.MNIST: root must be a folder path, got nil", L.data.MNIST, {})
    D.fails_with("lightning.data.FashionMNIST: unknown option 'download'", L.data.FashionMNIST, {download = true})
  end)

  it("reports an unreadable file", function()
    D.make_idx_set(dir, 4, 2, 3, 3, true)
    os.remove(dir .. "/train-labels-idx1-ubyte")
    os.execute("mkdir '" .. dir .. "/train-labels-idx1-ubyte'")  -- a folder where the file should be
    D.fails_with({"cannot read", "train-labels-idx1-ubyte", "a folder"}, L.data.MNIST, {root = dir})
  end)
end)
