-- Shared by the data specs: tiny CIFAR-10 and IDX files made on the spot, and PNG folders.
local L = require "lightning"
local H = require "helpers"
local D = {}

D.CLASSES = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

-- The pixel byte of record r (0-based, counting through all files of a set), position i (0..3071).
function D.cifar_byte(r, i) return (r * 31 + i * 7) % 256 end
function D.cifar_label(r) return (r * 3) % 10 end

-- One batch file of n records starting at record `first`.
function D.cifar_batch(n, first)
  local parts = {}
  for r = first, first + n - 1 do
    local rec = {string.char(D.cifar_label(r))}
    local bytes = {}
    for i = 0, 3071 do bytes[i + 1] = D.cifar_byte(r, i) end
    for k = 1, 3072, 1024 do rec[#rec + 1] = string.char(table.unpack(bytes, k, k + 1023)) end
    parts[#parts + 1] = table.concat(rec)
  end
  return table.concat(parts)
end

-- A CIFAR-10 folder with `per_file` records in each of the six batches; returns its path.
function D.make_cifar(dir, per_file)
  os.execute("mkdir -p '" .. dir .. "'")
  for b = 1, 5 do H.write_file(dir .. "/data_batch_" .. b .. ".bin", D.cifar_batch(per_file, (b - 1) * per_file)) end
  H.write_file(dir .. "/test_batch.bin", D.cifar_batch(per_file, 1000))
  H.write_file(dir .. "/batches.meta.txt", table.concat(D.CLASSES, "\n") .. "\n\n")
  return dir
end

-- IDX bytes: type 0x08, the given dimensions, values (a function of the flat 0-based index).
function D.idx_bytes(dims, value, magic_type)
  local header = {string.char(0, 0, magic_type or 8, #dims)}
  local count = 1
  for _, d in ipairs(dims) do
    header[#header + 1] = string.pack(">I4", d)
    count = count * d
  end
  local body = {}
  for i = 0, count - 1 do body[#body + 1] = string.char(value(i) % 256) end
  return table.concat(header) .. table.concat(body)
end

function D.gzip(path)
  assert(os.execute("gzip -f '" .. path .. "'"))
  return path .. ".gz"
end

-- An MNIST-style folder: n train and m test images of h x w, labels i % 10, gzip-compressed unless plain.
function D.make_idx_set(dir, n, m, h, w, plain)
  os.execute("mkdir -p '" .. dir .. "'")
  local function write(name, bytes)
    H.write_file(dir .. "/" .. name, bytes)
    if not plain then D.gzip(dir .. "/" .. name) end
  end
  write("train-images-idx3-ubyte", D.idx_bytes({n, h, w}, function(i) return i * 5 end))
  write("train-labels-idx1-ubyte", D.idx_bytes({n}, function(i) return i % 10 end))
  write("t10k-images-idx3-ubyte", D.idx_bytes({m, h, w}, function(i) return 255 - i end))
  write("t10k-labels-idx1-ubyte", D.idx_bytes({m}, function(i) return (i + 1) % 10 end))
  return dir
end

-- An image folder: classes {name = count}, each image h x w RGB with a value telling class and index.
function D.make_folder(dir, classes, h, w)
  for name, count in pairs(classes) do
    os.execute("mkdir -p '" .. dir .. "/" .. name .. "'")
    for i = 1, count do
      local img = L.full({3, h or 8, w or 8}, (i % 7) / 10)
      img[1]:fill(#name / 20)
      L.data.write_png(("%s/%s/img%02d.png"):format(dir, name, i), img)
    end
  end
  return dir
end

-- Fails unless f(...) raises an error containing every plain-text fragment given.
function D.fails_with(fragments, f, ...)
  local msg = H.error_of(f, ...)
  if type(fragments) == "string" then fragments = {fragments} end
  for _, frag in ipairs(fragments) do
    assert(msg:find(frag, 1, true), ("error %q does not mention %q"):format(msg, frag))
  end
  return msg
end

-- The number of threads of this process.
function D.thread_count()
  local p = io.popen("ls /proc/" .. (io.open("/proc/self/stat"):read("n")) .. "/task | wc -l")
  local n = tonumber(p:read("a"))
  p:close()
  return n
end

return D
