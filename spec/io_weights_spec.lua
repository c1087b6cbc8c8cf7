-- L.save_weights / L.load_weights: state dicts to and from safetensors under PyTorch's names. The
-- models here are built from nn.Module directly, with the seed model's names and shapes, so that the
-- spec does not depend on the layers. tools/safetensors_tool.py check FILE --model loads a file written
-- by save_weights into the PyTorch model with load_state_dict(strict=True).
local L = require "lightning"
local H = require "helpers"
local Module = require "lightning.nn.module"

local FIX = "spec/fixtures/io/"

-- A leaf module with parameters and buffers {name, sizes...}; BatchNorm-like modules get the int64
-- scalar counter PyTorch has.
local function leaf(params, buffers, counter)
  local m = Module()
  for _, p in ipairs(params) do m:register_parameter(p[1], L.zeros(table.unpack(p, 2))) end
  for _, b in ipairs(buffers or {}) do m:register_buffer(b[1], L.zeros(table.unpack(b, 2))) end
  if counter then
    local n = L.zeros(1)
    n.dtype, n.scalar = "I64", true
    m:register_buffer("num_batches_tracked", n)
  end
  return m
end

local function conv(o, i) return leaf({{"weight", o, i, 3, 3}, {"bias", o}}) end
local function linear(o, i) return leaf({{"weight", o, i}, {"bias", o}}) end
local function bn(c) return leaf({{"weight", c}, {"bias", c}}, {{"running_mean", c}, {"running_var", c}}, true) end

-- The seed model's state_dict layout (BasicImageClassifier in ../shared/fixtures).
local function seed_like()
  local m = Module()
  local channels = {3, 32, 64, 128, 256}
  for i = 1, 4 do
    m:add_module("conv" .. i, conv(channels[i + 1], channels[i]))
    m:add_module("bn" .. i, bn(channels[i + 1]))
  end
  m:add_module("fc1", linear(512, 1024))
  m:add_module("bn_fc1", bn(512))
  m:add_module("fc2", linear(256, 512))
  m:add_module("bn_fc2", bn(256))
  m:add_module("fc3", linear(10, 256))
  return m
end

describe("weights", function()
  -- the checks compare parameters as numbers ((a - b):abs():max()): outside autograd, as PyTorch's
  -- torch.no_grad() (with grad mode on, a reduction of a parameter is a recorded one-element tensor)
  local grad_before
  setup(function() grad_before = L.set_grad_enabled(false) end)
  teardown(function() L.set_grad_enabled(grad_before) end)
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("loads the seed model's PyTorch weights into a model with the same names", function()
    local model = seed_like()
    local result = L.load_weights(model, FIX .. "seed_model_weights.safetensors")
    assert.are.same({}, result.missing_keys)
    assert.are.same({}, result.unexpected_keys)
    assert.are.equal("BasicImageClassifier", result.metadata.model)
    local file = L.load_safetensors(FIX .. "seed_model_weights.safetensors")
    for name, t in pairs(model:state_dict()) do
      assert.are.equal(0, (t - file[name]:view(t:size())):abs():max(), name)
    end
    assert.are.equal(3, model.bn1.num_batches_tracked[1])
    assert.are.equal("I64", model.bn1.num_batches_tracked.dtype)  -- the model's own fields stay
  end)

  it("writes PyTorch's layout: names, I64 scalars for num_batches_tracked, format = pt", function()
    local model = seed_like()
    L.load_weights(model, FIX .. "seed_model_weights.safetensors")
    local path = dir .. "/w.safetensors"
    L.save_weights(model, path, {epoch = "7"})
    local t, meta = L.load_safetensors(path)
    assert.are.same({format = "pt", epoch = "7"}, meta)
    local n = 0
    for _, name in ipairs(model:state_dict_keys()) do
      n = n + 1
      assert.is_true(L.is_tensor(t[name]), name)
    end
    assert.are.equal(44, n)
    local bytes = H.read_file(path)
    local header = bytes:sub(9, 8 + string.unpack("<I8", bytes))
    for _, b in ipairs({"bn1", "bn2", "bn3", "bn4", "bn_fc1", "bn_fc2"}) do
      assert.truthy(header:find('"' .. b .. '.num_batches_tracked":{"dtype":"I64","shape":[],', 1, true), b)
    end
    assert.truthy(header:find('"conv1.weight":{"dtype":"F32","shape":[32,3,3,3],', 1, true))
    -- and the values are PyTorch's, bit for bit
    local original = L.load_safetensors(FIX .. "seed_model_weights.safetensors")
    for name, x in pairs(original) do
      assert.are.equal(0, (x - t[name]):abs():max(), name)
    end
  end)

  it("lets metadata override format, and round-trips a small model", function()
    local a, b = seed_like(), seed_like()
    L.manual_seed(3)
    for _, p in ipairs(a:parameters()) do p:normal(0, 1) end
    a.bn2.num_batches_tracked[1] = 41
    local path = dir .. "/small.safetensors"
    L.save_weights(a, path, {format = "lightning"})
    local result = L.load_weights(b, path)
    assert.are.equal("lightning", result.metadata.format)
    for name, x in pairs(a:state_dict()) do assert.are.equal(0, (x - b:state_dict()[name]):abs():max(), name) end
    assert.are.equal(41, b.bn2.num_batches_tracked[1])
  end)

  it("reports missing and unexpected keys; strict = false loads what matches", function()
    local path = dir .. "/part.safetensors"
    local part = Module()
    part:add_module("fc3", linear(10, 256))
    part:add_module("extra", linear(2, 2))
    L.manual_seed(5)
    part.fc3.weight:normal(0, 1)
    L.save_weights(part, path)
    local model = seed_like()
    local msg = H.error_of(L.load_weights, model, path)
    assert.truthy(msg:find("lightning.load_weights: " .. path .. ": load_state_dict: missing keys: conv1.weight, conv1.bias", 1, true), msg)
    assert.truthy(msg:find("unexpected keys: extra.bias, extra.weight", 1, true), msg)
    local result = L.load_weights(model, path, {strict = false})
    assert.are.same({"extra.bias", "extra.weight"}, result.unexpected_keys)
    assert.are.equal(43 - 1, #result.missing_keys)
    assert.are.equal(0, (model.fc3.weight - part.fc3.weight):abs():max())
  end)

  it("reports shape mismatches and bad files with the path", function()
    local path = dir .. "/wrong.safetensors"
    local other = Module()
    other:add_module("fc3", linear(5, 256))
    L.save_weights(other, path)
    local model = Module()
    model:add_module("fc3", linear(10, 256))
    local msg = H.error_of(L.load_weights, model, path)
    assert.truthy(msg:find("lightning.load_weights: " .. path .. ": load_state_dict: size mismatch for fc3.weight", 1, true), msg)
    H.write_file(path, "garbage!")
    msg = H.error_of(L.load_weights, model, path)
    assert.truthy(msg:find("^lightning.load_weights: " .. path:gsub("%p", "%%%0") .. ": the header length %d+ exceeds"), msg)
    msg = H.error_of(L.load_weights, model, dir .. "/none.safetensors")
    assert.truthy(msg:find("^lightning.load_weights: cannot open"), msg)
  end)

  it("checks its arguments", function()
    local model = Module()
    assert.truthy(H.error_of(L.save_weights, {}, "x"):find("lightning.save_weights: argument 1 must be a module (with state_dict), got table", 1, true))
    assert.truthy(H.error_of(L.save_weights, L.zeros(1), "x"):find("argument 1 must be a module (with state_dict), got tensor", 1, true))
    assert.truthy(H.error_of(L.save_weights, dir .. "/w.safetensors", model):find(
      "argument 1 must be a module (with state_dict), got string (the model comes first: lightning.save_weights(model, path))", 1, true))
    assert.truthy(H.error_of(L.save_weights, model, 3):find("lightning.save_weights: argument 2 must be a path (a string), got number", 1, true))
    assert.truthy(H.error_of(L.save_weights, model, dir .. "/x", "pt"):find("argument 3 (metadata) must be a table of strings, got string", 1, true))
    assert.truthy(H.error_of(L.save_weights, model, dir .. "/x", {epoch = 1}):find(
      'lightning.save_weights: argument 3 (metadata): the value of "epoch" must be a string', 1, true))
    assert.truthy(H.error_of(L.load_weights, nil, "x"):find("lightning.load_weights: argument 1 must be a module (with state_dict), got nil", 1, true))
    assert.truthy(H.error_of(L.load_weights, model, "x", true):find("argument 3 must be a table of options ({strict = true}), got boolean", 1, true))
  end)
end)
