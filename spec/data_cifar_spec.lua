-- CIFAR-10: the binary batches (tiny ones made here), the root as the folder or its parent, checks of
-- every file, and the download path (a file:// URL to a tarball made here, its MD5, no network).
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"

local PER_FILE = 3

describe("data: CIFAR10", function()
  local dir, folder
  before_each(function()
    dir = H.tmpdir()
    folder = D.make_cifar(dir .. "/cifar-10-batches-bin", PER_FILE)
  end)
  after_each(function() H.rmdir(dir) end)

  local function open(opts)
    opts.records_per_file = opts.records_per_file or PER_FILE
    return L.data.CIFAR10(opts)
  end

  it("reads the training and test batches, labels 1-based, pixels (C, H, W) in [0, 1]", function()
    local train = open{root = folder}
    assert.equal(5 * PER_FILE, #train)
    assert.same(D.CLASSES, train.classes)
    assert.equal(10, train.num_classes)
    for _, r in ipairs{0, 4, 14} do
      local s = train[r + 1]
      assert.equal(D.cifar_label(r) + 1, s.target)
      assert.equal("3x32x32", tostring(s.input:size()))
      assert.near(D.cifar_byte(r, 0) / 255, s.input[1][1][1], 1e-7)
      assert.near(D.cifar_byte(r, 1024 + 33) / 255, s.input[2][2][2], 1e-7)   -- green plane, row 2, column 2
      assert.near(D.cifar_byte(r, 3071) / 255, s.input[3][32][32], 1e-7)
    end
    local test = open{root = folder, train = false}
    assert.equal(PER_FILE, #test)
    assert.equal(D.cifar_label(1000) + 1, test[1].target)
    assert.same({D.cifar_label(0) + 1, D.cifar_label(1) + 1}, {train:targets()[1], train:targets()[2]})
  end)

  it("takes the folder's parent as root, as torchvision does", function()
    local ds = open{root = dir, train = false}
    assert.equal(folder, ds.root)
    assert.equal(PER_FILE, #ds)
  end)

  it("applies its transform in ds[i]", function()
    local T = L.data.transforms
    local ds = open{root = folder, transform = T.Compose{T.CenterCrop(8), T.Normalize(0.5, 0.5)}}
    local x = ds[1].input
    assert.equal("3x8x8", tostring(x:size()))
    assert.near((D.cifar_byte(0, 12 * 32 + 12) / 255 - 0.5) / 0.5, x[1][1][1], 1e-6)
  end)

  it("takes a subset that shares the data", function()
    local ds = open{root = folder}
    local sub = ds:subset({3, 1})
    assert.equal(2, #sub)
    assert.equal(ds[3].target, sub[1].target)
    H.assert_close(sub[2].input, ds[1].input, 0)
    D.fails_with("Dataset:subset: index 16 (position 1) is out of range for a data set of 15 samples", ds.subset, ds, {16})
    D.fails_with("lightning.data.CIFAR10: index 0 out of range (1..15)", function() return ds[0] end)
    D.fails_with("lightning.data.CIFAR10: index must be an integer, got 1.5", function() return ds[1.5] end)
    D.fails_with('lightning.data.CIFAR10: index must be an integer, got "x"', ds.get, ds, "x")
  end)

  it("checks each file: missing, short, oversized, bad label, bad class list", function()
    os.remove(folder .. "/data_batch_3.bin")
    D.fails_with({"lightning.data.CIFAR10: ", folder .. "/data_batch_3.bin is missing", "9219 bytes each"}, open, {root = folder})
    H.write_file(folder .. "/data_batch_3.bin", D.cifar_batch(PER_FILE, 0):sub(1, 9000))
    D.fails_with({"data_batch_3.bin is 9000 bytes, expected 9219 (3 records of 3073 bytes): the file is truncated"}, open, {root = folder})
    H.write_file(folder .. "/data_batch_3.bin", D.cifar_batch(PER_FILE, 0) .. "x")
    D.fails_with({"data_batch_3.bin is 9220 bytes, expected 9219", "longer than a CIFAR-10 batch"}, open, {root = folder})
    H.write_file(folder .. "/data_batch_3.bin", "")
    D.fails_with({"data_batch_3.bin is 0 bytes, expected 9219"}, open, {root = folder})
    local bad = D.cifar_batch(PER_FILE, 0)
    bad = bad:sub(1, 3073) .. string.char(12) .. bad:sub(3075)
    H.write_file(folder .. "/data_batch_3.bin", bad)
    D.fails_with({"data_batch_3.bin: record 2 has label 12, expected 0 to 9", "corrupt"}, open, {root = folder})
    -- the official files hold 10,000 records each
    D.fails_with({"test_batch.bin is 9219 bytes, expected 30730000 (10000 records of 3073 bytes)"}, L.data.CIFAR10,
      {root = folder, train = false})
    H.write_file(folder .. "/batches.meta.txt", "airplane\nautomobile\n")
    D.fails_with({"batches.meta.txt lists 2 class names, expected 10"}, open, {root = folder, train = false})
    os.remove(folder .. "/batches.meta.txt")
    D.fails_with({"batches.meta.txt", "No such file"}, open, {root = folder, train = false})
  end)

  it("says where the files should be when there are none", function()
    D.fails_with({"lightning.data.CIFAR10: no CIFAR-10 files in " .. dir .. "/empty", "download = true",
      "cifar-10-binary.tar.gz"}, open, {root = dir .. "/empty"})
  end)

  it("rejects bad options", function()
    D.fails_with("lightning.data.CIFAR10: root must be a folder path, got nil", L.data.CIFAR10, {})
    D.fails_with("lightning.data.CIFAR10: unknown option 'rooot'", L.data.CIFAR10, {rooot = "x"})
    D.fails_with("lightning.data.CIFAR10: expected an options table", L.data.CIFAR10, "data")
    D.fails_with('lightning.data.CIFAR10: train must be a boolean, got "yes"', L.data.CIFAR10, {root = folder, train = "yes"})
    D.fails_with("transform must be a transform, a list of transforms or a function, got 3", open, {root = folder, transform = 3})
  end)
end)

describe("data: CIFAR10 download", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  -- A cifar-10-binary.tar.gz of a tiny data set; returns its path and MD5.
  local function make_tarball()
    local src = dir .. "/src"
    D.make_cifar(src .. "/cifar-10-batches-bin", PER_FILE)
    local tarball = dir .. "/cifar-10-binary.tar.gz"
    assert(os.execute(("tar czf '%s' -C '%s' cifar-10-batches-bin"):format(tarball, src)))
    return tarball, L.data.md5_file(tarball)
  end

  it("fetches the archive, checks its MD5, unpacks it and reads it", function()
    local tarball, md5 = make_tarball()
    local root = dir .. "/data"
    local ds = L.data.CIFAR10{root = root, download = true, url = "file://" .. tarball, md5 = md5, records_per_file = PER_FILE}
    assert.equal(5 * PER_FILE, #ds)
    assert.is_true(H.read_file(root .. "/cifar-10-batches-bin/batches.meta.txt"):find("airplane", 1, true) ~= nil)
    -- the files are there now: no second download (a bad URL would fail)
    local again = L.data.CIFAR10{root = root, download = true, url = "file:///nonexistent", records_per_file = PER_FILE}
    assert.equal(5 * PER_FILE, #again)
  end)

  it("rejects an archive whose MD5 is not the expected one, and removes it", function()
    local tarball = make_tarball()
    local root = dir .. "/data"
    D.fails_with({"has MD5 ", "expected c32a1d4ab5d03f1284b67883e8d87530", "corrupt, truncated or not the CIFAR-10 archive"},
      L.data.CIFAR10, {root = root, download = true, url = "file://" .. tarball})
    assert.is_nil(io.open(root .. "/cifar-10-binary.tar.gz.part"))
    assert.is_nil(io.open(root .. "/cifar-10-binary.tar.gz"))
  end)

  it("takes the URL from LIGHTNING_CIFAR10_URL", function()
    local tarball, md5 = make_tarball()
    local script = ("package.path = %q; package.cpath = %q; local L = require 'lightning'; "
      .. "print(#L.data.CIFAR10{root = %q, download = true, md5 = %q, records_per_file = %d})")
      :format(package.path, package.cpath, dir .. "/data", md5, PER_FILE)
    local p = io.popen(("LIGHTNING_CIFAR10_URL='file://%s' lua5.4 -e %q 2>&1"):format(tarball, script))
    local out = p:read("a")
    p:close()
    assert.matches("^Downloading file://" .. tarball:gsub("%p", "%%%0") .. " to ", out)
    assert.equal(tostring(5 * PER_FILE), out:match("([^\n]*)%s*$"))
  end)

  it("fails within seconds without a network, saying where to put the files", function()
    local t0 = L.now()
    -- nothing listens on port 9 of this machine: the connection is refused at once, as with no network
    local msg = D.fails_with({"lightning.data.CIFAR10: could not download http://127.0.0.1:9/cifar-10-binary.tar.gz",
      "unpack it in " .. dir .. "/data", "data_batch_1.bin exists"},
      L.data.CIFAR10, {root = dir .. "/data", download = true, url = "http://127.0.0.1:9/cifar-10-binary.tar.gz"})
    assert.is_true(L.now() - t0 < 15, msg)
    assert.is_nil(io.open(dir .. "/data/cifar-10-binary.tar.gz.part"))
  end)

  it("reports an archive that is not CIFAR-10", function()
    H.write_file(dir .. "/other.txt", "x")
    assert(os.execute(("tar czf '%s/other.tar.gz' -C '%s' other.txt"):format(dir, dir)))
    D.fails_with({"batches.meta.txt is missing: it is not the CIFAR-10 binary archive"}, L.data.CIFAR10,
      {root = dir .. "/data", download = true, url = "file://" .. dir .. "/other.tar.gz", md5 = false})
  end)
end)

describe("data: MD5", function()
  it("matches the known digests (RFC 1321's test suite)", function()
    local md5 = L.data.md5
    assert.equal("d41d8cd98f00b204e9800998ecf8427e", md5(""))
    assert.equal("0cc175b9c0f1b6a831c399e269772661", md5("a"))
    assert.equal("900150983cd24fb0d6963f7d28e17f72", md5("abc"))
    assert.equal("f96b697d7cb7938d525a2f31aaf161d0", md5("message digest"))
    assert.equal("c3fcd3d76192e4007dfb496cca67e13b", md5("abcdefghijklmnopqrstuvwxyz"))
    assert.equal("d174ab98d277d9f5a5611c2c9f419d9f", md5("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
    assert.equal("57edf4a22be3c955ac49da2e2107b67a", md5(("1234567890"):rep(8)))
  end)

  it("of files, streamed in blocks, as md5sum says", function()
    local dir = H.tmpdir()
    local data = {}
    for i = 1, 200000 do data[i] = string.char(i * 7 % 256) end
    H.write_file(dir .. "/f", table.concat(data))
    local p = io.popen("md5sum '" .. dir .. "/f'")
    local want = p:read("a"):match("^(%x+)")
    p:close()
    assert.equal(want, L.data.md5_file(dir .. "/f"))
    assert.equal(want, L.data.md5(table.concat(data)))
    D.fails_with({"lightning.data.md5_file: cannot open", "nothere"}, L.data.md5_file, dir .. "/nothere")
    H.rmdir(dir)
  end)
end)
