-- Downloading CIFAR-10 as torchvision's download=True does, against a real HTTP server on 127.0.0.1
-- (spec/http_server.py): the archive fetched, its MD5 checked, unpacked; a truncated, a corrupt and a
-- cut-short transfer refused; no server (connection refused) read as no network, with the manual steps;
-- and train.lua --cifar10 fetching the data it lacks (with a progress bar on a terminal), or not with
-- --no_download.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"

local X = require "script_helpers"
local ROOT = X.ROOT
local PER_FILE = 3
local HAVE_PYTHON = os.execute("command -v python3 >/dev/null 2>&1") == true

local function sh(cmd) assert(os.execute(cmd), cmd) end

-- A cifar-10-binary.tar.gz made here with per_file records in each batch file; returns its bytes.
local function make_archive(dir, per_file)
  local src = dir .. "/src"
  if per_file then
    D.make_cifar(src .. "/cifar-10-batches-bin", per_file)
  else -- full-size files of zeros (10,000 records each, as the real archive), which compress to little
    sh(("mkdir -p %q"):format(src .. "/cifar-10-batches-bin"))
    for _, name in ipairs {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"} do
      sh(("head -c %d /dev/zero > %q"):format(10000 * 3073, src .. "/cifar-10-batches-bin/" .. name .. ".bin"))
    end
    H.write_file(src .. "/cifar-10-batches-bin/batches.meta.txt", table.concat(D.CLASSES, "\n") .. "\n\n")
  end
  sh(("tar czf %q -C %q cifar-10-batches-bin"):format(dir .. "/archive.tar.gz", src))
  H.rmdir(src)
  local bytes = H.read_file(dir .. "/archive.tar.gz")
  os.remove(dir .. "/archive.tar.gz")
  return bytes
end

-- Starts the server on folder; returns its base URL and a function that stops it.
local function start_server(folder)
  local port_file = folder .. "/../port"
  local pid = io.popen(("python3 %q %q %q >/dev/null 2>&1 & echo $!"):format(ROOT .. "/spec/http_server.py", folder,
    port_file)):read("l")
  local port
  for _ = 1, 100 do
    local f = io.open(port_file)
    if f then port = f:read("l") f:close() end
    if port then break end
    os.execute("sleep 0.05")
  end
  assert(port, "the HTTP server did not start")
  return "http://127.0.0.1:" .. port, function() os.execute("kill " .. pid .. " 2>/dev/null") end
end

local function train(dir, args, env, pty) return X.run("train.lua", args, {cwd = dir, env = env, pty = pty}) end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

describe("data: download over HTTP", function()
  if not HAVE_PYTHON then
    pending("python3 is not installed (the specs' HTTP server needs it)")
    return
  end

  local dir, served, base, stop, small, md5
  setup(function()
    dir = H.tmpdir()
    served = dir .. "/served"
    sh(("mkdir -p %q"):format(served))
    small = make_archive(dir, PER_FILE)
    md5 = L.data.md5(small)
    H.write_file(served .. "/cifar-10-binary.tar.gz", small)
    H.write_file(served .. "/truncated.tar.gz", small:sub(1, #small // 2))
    local corrupt = small:sub(1, 100) .. string.char((small:byte(101) + 1) % 256) .. small:sub(102)
    H.write_file(served .. "/corrupt.tar.gz", corrupt)
    base, stop = start_server(served)
  end)
  teardown(function()
    stop()
    H.rmdir(dir)
  end)

  local root
  before_each(function()
    root = dir .. "/data" .. math.random(1, 1e9)
  end)
  after_each(function() H.rmdir(root) end)

  -- ImageDataModule{download = true}:prepare_data() from url; returns the module and what it printed.
  local function prepare(url, opts)
    local lines = {}
    local o = {dataset = "cifar10", data_root = root, download = true, url = url, md5 = md5,
      records_per_file = PER_FILE, output = function(line) lines[#lines + 1] = line end}
    for k, v in pairs(opts or {}) do o[k] = v end
    local dm = L.data.ImageDataModule(o)
    local ok, err = pcall(dm.prepare_data, dm)
    return ok, ok and dm or err, table.concat(lines, "\n")
  end

  it("fetches the archive, checks its MD5, unpacks it, and the data module reads it", function()
    local ok, dm, said = prepare(base .. "/cifar-10-binary.tar.gz")
    assert.is_true(ok, tostring(dm))
    assert.matches("Downloading " .. base:gsub("%p", "%%%0") .. "/cifar%-10%-binary%.tar%.gz to " .. root:gsub("%p", "%%%0")
      .. "/cifar%-10%-binary%.tar%.gz", said)
    assert.matches("Downloaded " .. #small .. " bytes in [%d.]+ s, MD5 verified", said)
    assert.matches("Extracting ", said)
    assert.is_true(exists(root .. "/cifar-10-batches-bin/data_batch_1.bin"))
    assert.is_false(exists(root .. "/cifar-10-binary.tar.gz.part"))
    dm:setup("fit")
    assert.equal(5 * PER_FILE, #dm.train_set + #dm.val_set)
  end)

  it("refuses a truncated archive (its MD5 differs) and removes it", function()
    local ok, err = prepare(base .. "/truncated.tar.gz")
    assert.is_false(ok)
    assert.matches("the file downloaded from " .. base:gsub("%p", "%%%0") .. "/truncated%.tar%.gz %(" .. #small // 2
      .. " bytes%) has MD5 %x+, expected " .. md5 .. ": it is corrupt, truncated or not the CIFAR%-10 archive", err)
    assert.matches("To install CIFAR%-10 by hand", err)
    assert.is_false(exists(root .. "/cifar-10-binary.tar.gz.part"))
    assert.is_false(exists(root .. "/cifar-10-binary.tar.gz"))
  end)

  it("refuses a corrupt archive of the right size", function()
    local ok, err = prepare(base .. "/corrupt.tar.gz")
    assert.is_false(ok)
    assert.matches("%(" .. #small .. " bytes%) has MD5 %x+, expected " .. md5, err)
    assert.is_false(exists(root .. "/cifar-10-binary.tar.gz"))
  end)

  it("reports a transfer cut short as a network failure, with the manual steps", function()
    local ok, err = prepare(base .. "/cut/cifar-10-binary.tar.gz")
    assert.is_false(ok)
    assert.matches("could not download " .. base:gsub("%p", "%%%0") .. "/cut/cifar%-10%-binary%.tar%.gz: curl: %(18%)", err)
    assert.matches("%(is there a network connection%?%)\nTo install CIFAR%-10 by hand:\n  1%. on a machine with a "
      .. "network, download https://www%.cs%.toronto%.edu/~kriz/cifar%-10%-binary%.tar%.gz %(about 170 MB, MD5 "
      .. "c32a1d4ab5d03f1284b67883e8d87530%)\n  2%. put it in " .. root:gsub("%p", "%%%0") .. "/\n  3%. run again", err)
    assert.is_false(exists(root .. "/cifar-10-binary.tar.gz.part"))
  end)

  it("reports no server (connection refused) within seconds as no network, with the manual steps", function()
    local t0 = L.now()
    local ok, err = prepare("http://127.0.0.1:9/cifar-10-binary.tar.gz")
    assert.is_false(ok)
    assert.is_true(L.now() - t0 < 15)
    assert.matches("could not download http://127%.0%.0%.1:9/cifar%-10%-binary%.tar%.gz: curl: %(7%) Failed to connect", err)
    assert.matches("is there a network connection%?", err)
    assert.matches("so that " .. root:gsub("%p", "%%%0") .. "/cifar%-10%-batches%-bin/data_batch_1%.bin exists", err)
  end)

  it("leaves no folder behind when the download fails (a typo in the folder's name)", function()
    local ok, err = prepare("http://127.0.0.1:9/cifar-10-binary.tar.gz", {data_root = root .. "/typo/dataa"})
    assert.is_false(ok)
    assert.matches("could not download", err)
    assert.is_nil(L.core.io.file_type(root), "left behind: " .. root)
    -- a folder that was there stays, with what it held
    sh(("mkdir -p %q"):format(root .. "/mine"))
    ok = prepare("http://127.0.0.1:9/cifar-10-binary.tar.gz", {data_root = root .. "/mine/new"})
    assert.is_false(ok)
    assert.equal("directory", L.core.io.file_type(root .. "/mine"))
    assert.is_nil(L.core.io.file_type(root .. "/mine/new"))
  end)

  it("unpacks an archive already in the folder (a manual download) without fetching", function()
    sh(("mkdir -p %q"):format(root))
    H.write_file(root .. "/cifar-10-binary.tar.gz", small)
    local ok, dm, said = prepare("http://127.0.0.1:9/nothing-listens-here")
    assert.is_true(ok, tostring(dm))
    assert.is_nil(said:find("Downloading", 1, true))
    assert.matches("Extracting ", said)
  end)

  describe("train.lua --cifar10", function()
    local full_md5
    setup(function()
      local full = make_archive(dir)   -- 10,000 records per file, as train.lua reads them
      full_md5 = L.data.md5(full)
      H.write_file(served .. "/full.tar.gz", full)
    end)

    local function env(name) return ("LIGHTNING_CIFAR10_URL=%s/%s LIGHTNING_CIFAR10_MD5=%s"):format(base, name, full_md5) end
    local QUICK = "--fast_dev_run --batch_size 4 --num_workers 0 --quiet --output_dir out"

    it("fetches the data into --data_root with a progress bar on a terminal, then trains", function()
      local code, text = train(dir, ("--cifar10 --data_root %s %s"):format(root, QUICK), env("full.tar.gz"), true)
      assert.equal(0, code, text)
      assert.matches("Downloading " .. base:gsub("%p", "%%%0") .. "/full%.tar%.gz to " .. root:gsub("%p", "%%%0"), text)
      assert.matches("#+%s*100%.0%%", text)                       -- curl's progress bar
      assert.matches("MD5 verified", text)
      assert.matches("Training finished after 1 epoch ", text)
      assert.is_true(exists(root .. "/cifar-10-batches-bin/test_batch.bin"))
      -- the second run finds the files
      code, text = train(dir, ("--cifar10 --data_root %s %s"):format(root, QUICK), env("nothing-there"))
      assert.equal(0, code, text)
      assert.is_nil(text:find("Downloading", 1, true))
    end)

    it("draws no bar in a log file, and says what failed and what to do without a network", function()
      local code, text = train(dir, ("--cifar10 --data_root %s %s"):format(root, QUICK), env("full.tar.gz"))
      assert.equal(0, code, text)
      assert.is_nil(text:find("100.0%", 1, true))
      H.rmdir(root)
      code, text = train(dir, ("--cifar10 --data_root %s %s"):format(root, QUICK),
        "LIGHTNING_CIFAR10_URL=http://127.0.0.1:9/cifar-10-binary.tar.gz")
      assert.equal(1, code)
      assert.matches("Training failed: lightning%.data%.ImageDataModule: could not download", text)
      assert.matches("To install CIFAR%-10 by hand:", text)
    end)

    it("--no_download fails with the manual steps, in the command line's words", function()
      local code, text = train(dir, ("--cifar10 --data_root %s %s --no_download"):format(root, QUICK), env("full.tar.gz"))
      assert.equal(1, code)
      assert.matches("no CIFAR%-10 files in " .. root:gsub("%p", "%%%0") .. ".*leave out %-%-no_download to fetch them", text)
      assert.is_nil(text:find("download = true", 1, true))
      assert.is_nil(text:find("Downloading", 1, true))
      assert.matches("To install CIFAR%-10 by hand:", text)
    end)
  end)
end)
