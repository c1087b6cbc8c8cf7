-- safetensors: the reader against files written by Python's safetensors (../shared/fixtures, copied
-- into spec/fixtures/io) and by tools/safetensors_tool.py, the writer by byte-level checks and round
-- trips, and every malformed file we could think of.
local L = require "lightning"
local H = require "helpers"
local cjson = require "cjson"

local FIX = "spec/fixtures/io/"

-- A safetensors file from a header string and data bytes.
local function blob(header, data)
  return string.pack("<I8", #header) .. header .. (data or "")
end

local function f32(...)
  local s = {}
  for i, v in ipairs({...}) do s[i] = string.pack("<f", v) end
  return table.concat(s)
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function same_values(a, b)
  local fa, fb = H.flatten(a), H.flatten(b)
  assert(#fa == #fb, ("element counts differ: %d and %d"):format(#fa, #fb))
  for i = 1, #fa do
    local x, y = fa[i], fb[i]
    if not (x == y or (x ~= x and y ~= y)) then return false, ("element %d: %s vs %s"):format(i, x, y) end
  end
  return true
end

describe("safetensors reader", function()
  it("reads the seed model's weights written by Python's safetensors", function()
    local t, meta = L.load_safetensors(FIX .. "seed_model_weights.safetensors")
    local expected = cjson.decode(H.read_file(FIX .. "seed_model_weights.json"))
    assert.are.same({format = "pt", model = "BasicImageClassifier"}, meta)
    assert.are.equal(44, count(t))
    for name, e in pairs(expected) do
      if name ~= "__metadata__" then
        local x = t[name]
        assert.is_true(L.is_tensor(x), name)
        if #e.shape == 0 then
          assert.is_true(x.scalar, name)
          assert.are.equal(1, x:dim(), name)
          assert.are.equal(1, x:size(1), name)
        else
          assert.is_nil(x.scalar, name)
          for d = 1, #e.shape do assert.are.equal(e.shape[d], x:size(d), name) end
          assert.are.equal(#e.shape, x:dim(), name)
        end
        assert.are.equal(e.dtype ~= "F32" and e.dtype or nil, x.dtype, name)
        local flat = x:contiguous():view(-1)
        assert.are.equal(e.first, flat[1], name)
        assert.are.equal(e.last, flat[flat:numel()], name)
        H.assert_close(flat:sum(), e.sum, 1e-4, name .. " sum")
      end
    end
    -- BatchNorm's counter: int64 scalar 3 in the file, a 1-element tensor here
    local nbt = t["bn1.num_batches_tracked"]
    assert.are.equal("I64", nbt.dtype)
    assert.is_true(nbt.scalar)
    assert.are.equal(3, nbt[1])
  end)

  it("reads the seed model's input and outputs, with an empty metadata table", function()
    local t, meta = L.load_safetensors(FIX .. "seed_model_io.safetensors")
    assert.are.same({}, meta)
    assert.are.equal("4x3x32x32", tostring(t.input:size()))
    assert.are.equal("4x10", tostring(t.logits:size()))
    H.assert_close(t.probs:sum(2), {1, 1, 1, 1}, 1e-5, "softmax rows")
    assert.is_nil(t.input.dtype)
  end)

  it("converts every dtype to float32 as PyTorch and numpy do", function()
    local t, meta = L.load_safetensors(FIX .. "dtypes.safetensors")
    assert.are.equal("tools/safetensors_tool.py", meta.written_by)
    for _, d in ipairs({"F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"}) do
      assert.are.equal(d, t[d].dtype)
      assert.is_nil(t[d .. ".expected"].dtype)
      assert.are.same(t[d .. ".expected"]:size(), t[d]:size())
      local ok, why = same_values(t[d], t[d .. ".expected"])
      assert(ok, d .. ": " .. tostring(why))
    end
    assert.is_true(t.scalar.scalar)
    assert.are.equal(2.5, t.scalar[1])
    assert.are.equal("0x3", tostring(t.empty:size()))
  end)
end)

describe("safetensors writer", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("writes the header byte for byte: sorted names, metadata first, padded to 8 bytes", function()
    local path = dir .. "/a.safetensors"
    local b = L.tensor{{1, 2, 3}, {4, 5, 6}}
    local a = L.tensor{7}
    a.dtype, a.scalar = "I64", true
    L.save_safetensors(path, {b = b, a = a}, {format = "pt"})
    local bytes = H.read_file(path)
    local n = string.unpack("<I8", bytes)
    local header = bytes:sub(9, 8 + n)
    local expected = '{"__metadata__":{"format":"pt"},' ..
      '"a":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' ..
      '"b":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}}'
    assert.are.equal(expected, header:gsub(" +$", ""))
    assert.are.equal(0, (8 + n) % 8)
    assert.truthy(header:match("^[^ ]+ *$"))
    assert.are.equal(string.pack("<i8", 7) .. f32(1, 2, 3, 4, 5, 6), bytes:sub(9 + n))
  end)

  it("omits __metadata__ when there is none and escapes names as JSON", function()
    local path = dir .. "/b.safetensors"
    L.save_safetensors(path, {['we"ird\\name\n'] = L.zeros(1)})
    local bytes = H.read_file(path)
    local header = bytes:sub(9, 8 + string.unpack("<I8", bytes))
    assert.are.equal('{"we\\"ird\\\\name\\u000a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
      (header:gsub(" +$", "")))
    local t = L.load_safetensors(path)
    assert.is_true(L.is_tensor(t['we"ird\\name\n']))
  end)

  it("round-trips values, dtypes, scalars, views and empty tensors", function()
    local path = dir .. "/c.safetensors"
    L.manual_seed(1)
    local w = L.randn(5, 7)
    local wt = w:t()                       -- not contiguous: saved in its logical order
    local counter = L.tensor{12}
    counter.dtype, counter.scalar = "I64", true
    local half = L.tensor{1, 0.5, -2}
    half.dtype = "F16"
    local flags = L.tensor{1, 0, 1}
    flags.dtype = "BOOL"
    local big = L.arange(300000):view(3, 100000)  -- 2.4 MB as I64: read through more than one conversion chunk
    big.dtype = "I64"
    local tensors = {w = w, wt = wt, counter = counter, half = half, flags = flags, empty = L.zeros(0, 4), big = big}
    L.save_safetensors(path, tensors, {epoch = "3", note = "ünïcode ✓"})
    local t, meta = L.load_safetensors(path)
    assert.are.same({epoch = "3", note = "ünïcode ✓"}, meta)
    assert.are.equal(count(tensors), count(t))
    for name, x in pairs(tensors) do
      assert.are.same(x:size(), t[name]:size(), name)
      assert(same_values(x, t[name]), name)
      assert.are.equal(x.dtype, t[name].dtype, name)
      assert.are.equal(x.scalar, t[name].scalar, name)
    end
    assert.are.equal("7x5", tostring(t.wt:size()))
  end)

  it("writes an empty file for no tensors, which reads back empty", function()
    local path = dir .. "/empty.safetensors"
    L.save_safetensors(path, {})
    assert.are.equal(blob("{}      "), H.read_file(path))
    local t, meta = L.load_safetensors(path)
    assert.are.same({}, t)
    assert.are.same({}, meta)
  end)

  it("rounds float32 to F16 and BF16 to nearest even, as PyTorch does", function()
    local fx = L.load_safetensors(FIX .. "dtypes.safetensors")
    local path = dir .. "/conv.safetensors"
    local a, b = fx["convert.src"]:clone(), fx["convert.src"]:clone()
    a.dtype, b.dtype = "F16", "BF16"
    L.save_safetensors(path, {F16 = a, BF16 = b})
    local t = L.load_safetensors(path)
    for _, d in ipairs({"F16", "BF16"}) do
      local ok, why = same_values(t[d], fx["convert." .. d])
      assert(ok, d .. ": " .. tostring(why))
    end
  end)

  it("writes the seed weights back so that they hold the same tensors", function()
    local path = dir .. "/seed.safetensors"
    local t, meta = L.load_safetensors(FIX .. "seed_model_weights.safetensors")
    L.save_safetensors(path, t, meta)
    local t2, meta2 = L.load_safetensors(path)
    assert.are.same(meta, meta2)
    for name, x in pairs(t) do
      assert(same_values(x, t2[name]), name)
      assert.are.equal(x.dtype, t2[name].dtype)
      assert.are.equal(x.scalar, t2[name].scalar)
    end
    -- the data section is the original's, tensor for tensor (F32 and I64 are stored exactly)
    assert.are.equal(#H.read_file(FIX .. "seed_model_weights.safetensors") - 3352 - 8,
      #H.read_file(path) - 8 - string.unpack("<I8", H.read_file(path)))
  end)
end)

describe("safetensors errors", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function load_error(bytes)
    local path = dir .. "/bad.safetensors"
    H.write_file(path, bytes)
    local msg = H.error_of(L.load_safetensors, path)
    assert.truthy(msg:find("lightning.load_safetensors: " .. path .. ": ", 1, true), msg)
    return msg
  end

  local function entry(name, dtype, shape, b, e)
    return ('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'):format(name, dtype, shape, b, e)
  end

  it("names a missing file or a folder", function()
    local msg = H.error_of(L.load_safetensors, dir .. "/nope.safetensors")
    assert.truthy(msg:find("lightning.load_safetensors: cannot open " .. dir .. "/nope.safetensors: No such file", 1, true), msg)
    msg = H.error_of(L.load_safetensors, dir)
    assert.truthy(msg:find("it is a folder, not a regular file", 1, true), msg)
  end)

  it("rejects files too short, header lengths out of range and truncated headers", function()
    assert.truthy(load_error("abc"):find("3 bytes are too few for a safetensors file", 1, true))
    assert.truthy(load_error(string.pack("<I8", 100000001) .. "{}"):find(
      "the header length 100000001 exceeds the limit of 100000000 bytes", 1, true))
    assert.truthy(load_error(string.pack("<I8", 50) .. '{"a":1}'):find(
      "the header (50 bytes) runs past the end of the file (15 bytes): the file is truncated", 1, true))
    assert.truthy(load_error(string.pack("<I8", -1)):find("exceeds the limit", 1, true))
  end)

  it("rejects a truncated copy of a real file", function()
    local good = H.read_file(FIX .. "seed_model_io.safetensors")
    local msg = load_error(good:sub(1, #good - 100))
    assert.truthy(msg:find('tensor "probs": data_offsets [49312, 49472] run past the end of the data (49372 bytes): the file is truncated', 1, true), msg)
    msg = load_error(good:sub(1, 100))
    assert.truthy(msg:find("runs past the end of the file (100 bytes)", 1, true), msg)
  end)

  it("rejects JSON syntax errors with the byte offset", function()
    assert.truthy(load_error(blob("[]")):find("invalid header: it must start with '{'", 1, true))
    assert.truthy(load_error(blob(" {}")):find("must start with '{'", 1, true))
    assert.truthy(load_error(blob('{"a":{},}')):find("invalid header: JSON syntax error at byte 8: expected a string key, got '}'", 1, true))
    assert.truthy(load_error(blob('{"a" 1}')):find("expected ':' after an object key, got '1'", 1, true))
    assert.truthy(load_error(blob('{"a":[1,2}')):find("expected ',' or ']' after an array element, got '}'", 1, true))
    assert.truthy(load_error(blob('{"a":tru}')):find("expected a JSON value, got 't'", 1, true))
    assert.truthy(load_error(blob('{"a":01}')):find("expected ',' or '}' after an object member, got '1'", 1, true))
    assert.truthy(load_error(blob('{"a":1.}')):find("expected a digit after the decimal point", 1, true))
    assert.truthy(load_error(blob('{"a":"x')):find("unterminated string", 1, true))
    assert.truthy(load_error(blob('{"a\1":1}')):find("control character 0x01 in a string", 1, true))
    assert.truthy(load_error(blob('{"a\255":1}')):find("invalid UTF-8 in a string", 1, true))
    assert.truthy(load_error(blob('{"\\ud800":1}')):find("high surrogate without a low surrogate", 1, true))
    assert.truthy(load_error(blob('{"\\q":1}')):find("expected an escape character", 1, true))
    assert.truthy(load_error(blob('{"a":1} x')):find("expected the end of the input after the JSON value, got 'x'", 1, true))
    assert.truthy(load_error(blob('{"a":{"b":1}')):find("the object opened at byte 0 is not closed", 1, true))
    assert.truthy(load_error(blob('{"a":' .. ("["):rep(100) .. ("]"):rep(100) .. "}")):find("nested more than 64 levels deep", 1, true))
    assert.truthy(load_error(blob('{"a":1,"a":2}')):find('duplicate key "a"', 1, true))
    assert.truthy(load_error(blob('{"__metadata__":{},"__metadata__":{}}')):find('duplicate key "__metadata__"', 1, true))
  end)

  it("rejects malformed entries, naming the tensor", function()
    local d8 = f32(1, 2)
    local cases = {
      {'{"w":1}', 'tensor "w": expected an object {dtype, shape, data_offsets}, got a number'},
      {'{"w":{"dtype":"F32","shape":[2]}}', 'tensor "w": missing field "data_offsets"'},
      {'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}', 'tensor "w": unknown field "x"'},
      {'{' .. entry("w", "F8_E4M3", "2", 0, 8) .. '}', 'tensor "w": unsupported dtype "F8_E4M3"'},
      {'{"w":{"dtype":5,"shape":[2],"data_offsets":[0,8]}}', 'tensor "w": dtype must be a string, got a number'},
      {'{"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}', 'tensor "w": shape must be an array, got a number'},
      {'{' .. entry("w", "F32", "-2", 0, 8) .. '}', 'tensor "w": shape sizes must be non-negative integers'},
      {'{' .. entry("w", "F32", "2.0", 0, 8) .. '}', 'tensor "w": shape sizes must be non-negative integers'},
      {'{' .. entry("w", "F32", "1,1,1,1,1,1,1,1,2", 0, 8) .. '}', 'tensor "w": 9 dimensions; at most 8 are supported'},
      {'{' .. entry("w", "F32", "4294967296,4294967296", 0, 8) .. '}', 'tensor "w": the shape is too large'},
      {'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', 'tensor "w": data_offsets must be an array [begin, end]'},
      {'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}}', 'tensor "w": data_offsets must be non-negative integers'},
      {'{' .. entry("w", "F32", "2", 8, 0) .. '}', 'tensor "w": data_offsets [8, 0] end before they begin'},
      {'{' .. entry("w", "F32", "2", 0, 16) .. '}', 'tensor "w": data_offsets [0, 16] run past the end of the data (8 bytes)'},
      {'{' .. entry("w", "F32", "3", 0, 8) .. '}', 'tensor "w": data_offsets [0, 8] hold 8 bytes, but F32 shape of 3 elements needs 12'},
      {'{' .. entry("w", "F32", "2", 0, 8) .. ',' .. entry("v", "F32", "1", 4, 8) .. '}', 'tensor "v" (bytes 4..8) overlaps tensor "w"'},
      {'{' .. entry("w", "F32", "1", 4, 8) .. '}', 'bytes 0..4 of the data belong to no tensor (a hole before tensor "w")'},
      {'{' .. entry("w", "F32", "1", 0, 4) .. '}', '4 bytes after the last tensor belong to no tensor'},
      {'{}', '8 bytes after the last tensor belong to no tensor'},
      {'{"__metadata__":{"epoch":3}}', '"__metadata__" value of "epoch" must be a string, got a number'},
      {'{"__metadata__":[]}', '"__metadata__" must be an object of strings, got an array'},
    }
    for _, c in ipairs(cases) do
      local msg = load_error(blob(c[1], d8))
      assert(msg:find(c[2], 1, true), ("header %s\n  expected: %s\n  got: %s"):format(c[1], c[2], msg))
    end
  end)

  it("survives thousands of corrupted headers without crashing", function()
    local good = H.read_file(FIX .. "seed_model_io.safetensors")
    local n = string.unpack("<I8", good)
    local seed = 12345
    local function rand(k)  -- a small LCG, so the cases are the same on every run
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % k
    end
    local alphabet = '{}[]",:0123456789-.e \\u'
    local loaded = 0
    for _ = 1, 3000 do
      local bytes = {good:byte(1, 8 + n)}
      for _ = 1, 1 + rand(3) do
        local at = 9 + rand(n)
        local r = rand(3)
        if r == 0 then bytes[at] = rand(256)
        elseif r == 1 then bytes[at] = alphabet:byte(1 + rand(#alphabet))
        else table.remove(bytes, at); table.insert(bytes, 9, 32) end
      end
      local chars = {}
      for i, b in ipairs(bytes) do chars[i] = string.char(b) end
      local path = dir .. "/fuzz.safetensors"
      H.write_file(path, table.concat(chars) .. good:sub(9 + n))
      local ok, err = pcall(L.load_safetensors, path)
      if ok then loaded = loaded + 1 else assert.truthy(tostring(err):find("lightning.load_safetensors: ", 1, true)) end
    end
    assert.is_true(loaded < 3000)
  end)

  it("checks the arguments of save_safetensors", function()
    local p = dir .. "/x.safetensors"
    local x = L.zeros(2)
    assert.are.equal("lightning.save_safetensors: argument 1 must be a string, got nil",
      H.error_of(L.save_safetensors, nil, {x = x}):match("lightning.*"))
    assert.truthy(H.error_of(L.save_safetensors, p, x):find("argument 2 must be a table, got tensor", 1, true))
    assert.truthy(H.error_of(L.save_safetensors, p, {x}):find(
      "argument 2 must map names (strings) to tensors, got a key of type number", 1, true))
    assert.truthy(H.error_of(L.save_safetensors, p, {x = 1}):find('argument 2: "x" must be a tensor, got number', 1, true))
    assert.truthy(H.error_of(L.save_safetensors, p, {x = x}, "pt"):find("argument 3 must be a table, got string", 1, true))
    assert.truthy(H.error_of(L.save_safetensors, p, {x = x}, {epoch = 3}):find(
      'argument 3 (metadata): the value of "epoch" must be a string, got number', 1, true))
    assert.truthy(H.error_of(L.save_safetensors, p, {x = x}, {"pt"}):find(
      "argument 3 (metadata) must map strings to strings, got a key of type number", 1, true))
    local y = L.zeros(2)
    y.dtype = "F8"
    assert.truthy(H.error_of(L.save_safetensors, p, {y = y}):find('tensor "y" has dtype "F8"; expected one of F64, F32', 1, true))
    y.dtype = 32
    assert.truthy(H.error_of(L.save_safetensors, p, {y = y}):find('tensor "y" has dtype a number; expected', 1, true))
    y.dtype, y.scalar = nil, "yes"
    assert.truthy(H.error_of(L.save_safetensors, p, {y = y}):find('tensor "y" has field scalar = string; expected true, false or nil', 1, true))
    y.scalar = true
    assert.truthy(H.error_of(L.save_safetensors, p, {y = y}):find('tensor "y" is marked scalar but holds 2 elements', 1, true))
    assert.truthy(H.error_of(L.save_safetensors, p, {__metadata__ = x}):find('"__metadata__" is reserved and cannot name a tensor', 1, true))
    assert.truthy(H.error_of(L.save_safetensors, p, {["\255"] = x}):find("is not valid UTF-8", 1, true))
    assert.truthy(H.error_of(L.save_safetensors, p, {x = x}, {k = "\255"}):find('metadata value of "k" is not valid UTF-8', 1, true))
    local closed = L.zeros(2)
    closed:free()
    assert.truthy(H.error_of(L.save_safetensors, p, {c = closed}):find("closed tensor", 1, true))
    assert.truthy(H.error_of(L.save_safetensors, dir .. "/no/such/dir/x.safetensors", {x = x}):find(
      "cannot create a temporary file next to " .. dir .. "/no/such/dir/x.safetensors", 1, true))
    assert.are.equal("lightning.load_safetensors: argument 1 must be a string, got number",
      H.error_of(L.load_safetensors, 5):match("lightning.*"))
  end)

  it("refuses values an integer dtype cannot hold, and leaves the old file intact", function()
    local p = dir .. "/keep.safetensors"
    L.save_safetensors(p, {a = L.tensor{1, 2}})
    local before = H.read_file(p)
    local cases = {{"I64", 0.5, "holds 0.5, which dtype I64 cannot represent"},
                   {"U8", 256, "holds 256, which dtype U8 cannot represent"},
                   {"I8", -129, "holds -129, which dtype I8 cannot represent"},
                   {"U32", -1, "holds -1, which dtype U32 cannot represent"},
                   {"BOOL", 2, "holds 2, which dtype BOOL cannot represent"},
                   {"I32", 0 / 0, "holds NaN, which dtype I32 cannot represent"},
                   {"I64", math.huge, "holds inf, which dtype I64 cannot represent"}}
    for _, c in ipairs(cases) do
      local x = L.tensor{0, c[2]}
      x.dtype = c[1]
      local msg = H.error_of(L.save_safetensors, p, {z = L.zeros(3), x = x})
      assert.truthy(msg:find("lightning.save_safetensors: cannot write " .. p .. ': tensor "x" ' .. c[3], 1, true), msg)
    end
    assert.are.equal(before, H.read_file(p))
    assert.are.same({"keep.safetensors"}, L.core.io.listdir(dir))  -- no temporary files left behind
  end)
end)
