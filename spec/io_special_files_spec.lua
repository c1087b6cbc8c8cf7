-- Every reader refuses a path that is not a regular file (a FIFO, a device, a folder) with a clear error,
-- before anything could block: opening a FIFO for reading waits for a writer, reading /dev/zero never
-- ends. Each case runs in a child process under `timeout`, so that a reader that blocks fails the spec
-- instead of hanging the suite.
local H = require "helpers"
local D = require "data_helpers"

local dir, fifo

-- Runs code (with L = require "lightning" and the paths below) in a child lua5.4; returns its output.
local function child(code)
  local script = dir .. "/child.lua"
  H.write_file(script, ("local L = require 'lightning'\nlocal dir, fifo = %q, %q\n%s\n"):format(dir, fifo, code))
  local cmd = ("LUA_PATH=%q LUA_CPATH=%q timeout 30 lua5.4 %q 2>&1; echo \"exit $?\""):format(package.path, package.cpath, script)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

-- The error message of the expression `call` in a child process (which must fail, and not time out).
local function error_of(call)
  local out = child(("local ok, err = pcall(function() return %s end)\nprint(ok and 'succeeded' or tostring(err))"):format(call))
  assert.is_falsy(out:find("exit 124", 1, true), "the call blocked (killed by timeout): " .. call)
  assert.is_truthy(out:find("exit 0", 1, true), "the child failed: " .. out)
  assert.is_falsy(out:find("succeeded", 1, true), call .. " succeeded on a special file")
  return out
end

local function refuses(call, pattern)
  local msg = error_of(call)
  assert.is_truthy(msg:find(pattern), ("%s: %q does not mention %q"):format(call, msg, pattern))
end

describe("readers refuse what is not a regular file", function()
  before_each(function()
    dir = H.tmpdir()
    fifo = dir .. "/pipe"
    assert(os.execute("mkfifo '" .. fifo .. "'"))
    assert(os.execute("mkdir '" .. dir .. "/folder'"))
  end)
  after_each(function() H.rmdir(dir) end)

  it("load_safetensors: a FIFO, /dev/zero and a folder", function()
    refuses("L.load_safetensors(fifo)", "lightning.load_safetensors: cannot read .*/pipe: it is a FIFO %(named pipe%), not a regular file")
    refuses("L.load_safetensors('/dev/zero')", "cannot read /dev/zero: it is a device, not a regular file")
    refuses("L.load_safetensors(dir .. '/folder')", "cannot read .*/folder: it is a folder, not a regular file")
  end)

  it("load_weights", function()
    refuses("L.load_weights(L.nn.Linear(2, 2), fifo)", "lightning.load_weights: cannot read .*/pipe: it is a FIFO")
  end)

  it("read_png and md5_file", function()
    refuses("L.data.read_png(fifo)", "lightning.data.read_png: cannot read .*/pipe: it is a FIFO")
    refuses("L.data.read_png('/dev/zero')", "it is a device, not a regular file")
    refuses("require('lightning.core').data.md5_file(fifo)", "md5_file: cannot read .*/pipe: it is a FIFO")
  end)

  it("CIFAR10: a batch or the class list that is a FIFO", function()
    D.make_cifar(dir .. "/cifar", 2)
    os.remove(dir .. "/cifar/data_batch_3.bin")
    assert(os.execute("mkfifo '" .. dir .. "/cifar/data_batch_3.bin'"))
    refuses("L.data.CIFAR10{root = dir .. '/cifar', records_per_file = 2}", "data_batch_3.bin is a FIFO %(named pipe%), expected a file")
    D.make_cifar(dir .. "/cifar2", 2)
    os.remove(dir .. "/cifar2/batches.meta.txt")
    assert(os.execute("mkfifo '" .. dir .. "/cifar2/batches.meta.txt'"))
    refuses("L.data.CIFAR10{root = dir .. '/cifar2', records_per_file = 2}", "batches.meta.txt: it is a FIFO")
  end)

  it("FashionMNIST: an IDX file that is a FIFO", function()
    D.make_idx_set(dir .. "/mnist", 4, 2, 3, 3, true)
    os.remove(dir .. "/mnist/train-images-idx3-ubyte")
    assert(os.execute("mkfifo '" .. dir .. "/mnist/train-images-idx3-ubyte'"))
    refuses("L.data.FashionMNIST{root = dir .. '/mnist'}", "train%-images%-idx3%-ubyte: it is a FIFO")
  end)

  it("ImageFolder: a FIFO among the images, and a root that is a FIFO", function()
    assert(os.execute("mkdir -p '" .. dir .. "/images/cat' '" .. dir .. "/images/dog'"))
    local png = H.read_file("spec/fixtures/data/png/0_cat.png")
    H.write_file(dir .. "/images/cat/1.png", png)
    H.write_file(dir .. "/images/dog/1.png", png)
    assert(os.execute("mkfifo '" .. dir .. "/images/dog/2.png'"))
    refuses("L.data.ImageFolder{root = dir .. '/images'}", "dog/2.png: it is a FIFO")
    local out = child("local ds, report = L.data.ImageFolder{root = dir .. '/images', skip_bad = true}\n" ..
                      "print(#ds, report and report.skipped)")
    assert.is_falsy(out:find("exit 124", 1, true), "ImageFolder{skip_bad = true} blocked")
    refuses("L.data.ImageFolder{root = fifo}", "is not a folder")
  end)

  it("tfevents.read", function()
    refuses("require('lightning.loggers.tfevents').read(fifo)", "tfevents.read: .*/pipe is not a regular file %(it is a fifo%)")
    refuses("require('lightning.loggers.tfevents').read('/dev/zero')", "it is a device")
  end)
end)
