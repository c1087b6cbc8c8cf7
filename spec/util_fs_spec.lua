-- lightning.util.fs: folders made by the io binding (core.io.mkdirs, mkdir(2) for each missing
-- component; no shell), the write probe.
local L = require "lightning"
local H = require "helpers"
local fs = require "lightning.util.fs"

describe("lightning.util.fs.mkdirs", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("creates every missing component through lightning.core.io.mkdirs, never a shell", function()
    local execute = os.execute
    os.execute = function() error("fs.mkdirs ran a shell command") end   -- luacheck: ignore
    local ok, err = pcall(fs.mkdirs, dir .. "/a/b/c d/e")
    os.execute = execute                                                -- luacheck: ignore
    assert.is_true(ok, err)
    assert.equal("directory", L.core.io.file_type(dir .. "/a/b/c d/e"))
    assert.is_true(fs.mkdirs(dir .. "/a/b"))            -- existing folders are fine
    assert.is_true(fs.mkdirs(dir .. "/a/b/"))           -- and a trailing slash
  end)

  it("names the component that is in the way", function()
    H.write_file(dir .. "/file", "x")
    local ok, err = fs.mkdirs(dir .. "/file/sub/deeper")
    assert.is_nil(ok)
    assert.equal("cannot create folder " .. dir .. "/file: a file of that name is in the way", err)
    assert.matches("^lightning%.core%.io%.mkdirs: cannot create folder",
      H.error_of(L.core.io.mkdirs, dir .. "/file/sub"))
    assert.matches("^lightning%.core%.io%.mkdirs: argument 1 must be a string", H.error_of(L.core.io.mkdirs, 3))
    assert.matches("cannot create a folder with an empty name", H.error_of(L.core.io.mkdirs, ""))
  end)

  it("reports a folder it may not write in", function()
    local ok, err = fs.mkdirs("/proc/lightning-not-here/sub")
    assert.is_nil(ok)
    assert.matches("^cannot create folder /proc/lightning%-not%-here: ", err)
  end)
end)
