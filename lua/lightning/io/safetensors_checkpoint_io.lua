--- SafetensorsCheckpointIO: the checkpoint file format, one safetensors file (the default
-- strategy.checkpoint_io; lightning.trainer.checkpoint decides what goes into the table).
-- Tensors: the model's state_dict under its own (PyTorch) names; tensors found in the optimizer,
-- scheduler and callback states under "optimizer.<path>", "lr_schedulers.<path>", "callbacks.<path>".
-- Metadata (strings): format, format_version, epoch, global_step, rng_state, cuda_rng_state (a GPU run's),
-- and JSON for hparams,
-- optimizer_states, lr_schedulers, callbacks, loops and any extra keys that on_save_checkpoint hooks add.
-- In the JSON a tensor is {"__tensor__": "<name>"}, a NaN or infinite number {"__number__": "inf"},
-- and a table with keys other than strings or 1..n {"__pairs__": [[key, value], ...]}.
-- L.save_safetensors writes to a temporary file, flushes and renames it.
-- The functions read, write, read_metadata and why need no instance (load_weights and
-- load_from_checkpoint call them on the class).
local L = require "lightning"
local cjson = require "lightning.util.json"
local class = require "lightning.class"
local CheckpointIO = require "lightning.io.checkpoint_io"

local SafetensorsCheckpointIO = class("SafetensorsCheckpointIO", CheckpointIO)

SafetensorsCheckpointIO.FORMAT = "lightning.checkpoint"
SafetensorsCheckpointIO.VERSION = 1
SafetensorsCheckpointIO.EXTENSION = ".safetensors"

-- Sections of the checkpoint kept as JSON; their tensors are stored beside the weights.
local TENSOR_PREFIX = {optimizer_states = "optimizer", lr_schedulers = "lr_schedulers", callbacks = "callbacks",
  loops = "loops", hparams = "hparams"}
local PLAIN = {format = true, format_version = true, epoch = true, global_step = true, rng_state = true,
  cuda_rng_state = true,
  saved_at = true, state_dict = true}

local function is_sequence(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do if t[i] == nil then return false end end
  return n > 0
end

local function all_string_keys(t)
  for k in pairs(t) do if type(k) ~= "string" then return false end end
  return true
end

-- A JSON-ready copy of value; tensors go into `tensors` under prefix.path.
local function encode(value, path, tensors, seen)
  local kind = type(value)
  if kind == "number" then
    if value ~= value then return {__number__ = "nan"} end
    if value == math.huge then return {__number__ = "inf"} end
    if value == -math.huge then return {__number__ = "-inf"} end
    return value
  elseif kind == "string" or kind == "boolean" then
    return value
  elseif L.is_tensor(value) then
    if tensors[path] then error(("checkpoint: two tensors would be saved as %s"):format(path), 0) end
    tensors[path] = value
    return {__tensor__ = path}
  elseif kind == "table" then
    if seen[value] then error(("checkpoint: the state at %s refers to itself"):format(path), 0) end
    seen[value] = true
    local out
    if is_sequence(value) then
      out = {}
      for i, v in ipairs(value) do out[i] = encode(v, path .. "." .. i, tensors, seen) end
    elseif all_string_keys(value) then
      out = {}
      for k, v in pairs(value) do out[k] = encode(v, path .. "." .. k, tensors, seen) end
    else
      local pairs_list = {}
      for k, v in pairs(value) do
        if type(k) ~= "string" and type(k) ~= "number" then
          error(("checkpoint: the state at %s has a key of type %s"):format(path, type(k)), 0)
        end
        pairs_list[#pairs_list + 1] = {k, encode(v, path .. "." .. tostring(k), tensors, seen)}
      end
      table.sort(pairs_list, function(a, b) return tostring(a[1]) < tostring(b[1]) end)
      out = {__pairs__ = pairs_list}
    end
    seen[value] = nil
    return out
  elseif kind == "nil" then
    return cjson.null
  end
  error(("checkpoint: cannot save a %s (at %s)"):format(kind, path), 0)
end

local function decode(value, tensors, path)
  if type(value) == "number" then
    local i = math.tointeger(value)
    if i and math.abs(value) < 2 ^ 53 then return i end
    return value
  end
  if value == cjson.null then return nil end
  if type(value) ~= "table" then return value end
  if value.__tensor__ then
    local t = tensors[value.__tensor__]
    if not t then error(("checkpoint %s: tensor %s is missing from the file"):format(path, value.__tensor__), 0) end
    return t
  end
  if value.__number__ then
    return ({nan = 0 / 0, inf = math.huge, ["-inf"] = -math.huge})[value.__number__]
  end
  local out = {}
  if value.__pairs__ then
    for _, kv in ipairs(value.__pairs__) do out[decode(kv[1], tensors, path)] = decode(kv[2], tensors, path) end
    return out
  end
  for k, v in pairs(value) do out[k] = decode(v, tensors, path) end
  return out
end

--- tensors (name -> tensor) with every tensor that is not on the host replaced by a copy on it: the
-- file holds host float32 whatever the device, so that a GPU-trained checkpoint resumes on the CPU and
-- PyTorch reads it. How the tensor asks to be written (t.dtype, t.scalar) goes with the copy.
function SafetensorsCheckpointIO.on_host(tensors)
  for name, t in pairs(tensors) do
    if t:device() ~= "cpu" then
      local host = t:cpu()
      host.dtype, host.scalar = t.dtype, t.scalar
      tensors[name] = host
    end
  end
  return tensors
end

--- Writes a checkpoint table to path (atomically).
function SafetensorsCheckpointIO.write(ckpt, path)
  local tensors, meta = {}, {}
  for name, t in pairs(ckpt.state_dict) do tensors[name] = t end
  local extra = {}
  for key, value in pairs(ckpt) do
    if PLAIN[key] then
      if key ~= "state_dict" then meta[key] = tostring(value) end
    elseif TENSOR_PREFIX[key] then
      meta[key] = cjson.encode(encode(value, TENSOR_PREFIX[key], tensors, {}))
    else
      extra[key] = value
    end
  end
  for name in pairs(tensors) do
    for prefix in pairs({optimizer = true, lr_schedulers = true, callbacks = true, loops = true, hparams = true}) do
      if name:sub(1, #prefix + 1) == prefix .. "." and ckpt.state_dict[name] then
        error(("checkpoint: the model's parameter %s collides with the %s state"):format(name, prefix), 0)
      end
    end
  end
  if next(extra) then meta.extra = cjson.encode(encode(extra, "extra", tensors, {})) end
  L.save_safetensors(path, SafetensorsCheckpointIO.on_host(tensors), meta)
end

--- The metadata of a checkpoint file without reading its tensors, or nil and a message. The file is
-- opened as L.load_safetensors opens it (a FIFO, a device or a folder is refused before anything could
-- block, the whole header is checked): every path that opens a checkpoint goes through that one open.
function SafetensorsCheckpointIO.read_metadata(path)
  local ok, meta = pcall(L.core.io.safetensors_metadata, path)
  if not ok then return nil, SafetensorsCheckpointIO.why(path, meta) end
  return meta
end

--- What the reader said about path, without its function's name and the path again ("it is a FIFO
-- (named pipe), not a regular file", "0 bytes are too few for a safetensors file ...").
function SafetensorsCheckpointIO.why(path, err)
  local quoted = path:gsub("%p", "%%%0")
  return (tostring(err):gsub("^[^:\n]*:%d+: ", ""):gsub("^lightning[%.%w_]*: ", ""):gsub("^cannot read " .. quoted .. ": ", "")
    :gsub("^" .. quoted .. ": ", ""))
end

local function fail(path, fmt, ...)
  error(("checkpoint %s: " .. fmt):format(path, ...), 0)
end

local function shown(v)
  return type(v) == "string" and ("%q"):format(v) or tostring(v)
end

-- Counts in the metadata (epoch, global_step): decimal digits of an integer below 2^53.
local function count_field(meta, path, field)
  local text = meta[field]
  if type(text) ~= "string" or not text:match("^%d+$") then
    fail(path, "field %s must be an integer >= 0, got %s", field, text == nil and "nothing" or shown(text))
  end
  local v = math.tointeger(tonumber(text))
  if not v or v >= 2 ^ 53 then fail(path, "field %s = %s is too large (at most 2^53)", field, text) end
  return v
end

-- The JSON sections and the shape each must have: an object, or a list (an array; {} when empty).
local SHAPES = {hparams = "object", optimizer_states = "list", lr_schedulers = "list", callbacks = "object",
  loops = "object", extra = "object"}

local function json_field(meta, path, field, tensors)
  local text = meta[field]
  if text == nil then return {} end
  local ok, value = pcall(cjson.decode, text)
  if not ok then fail(path, "field %s is not valid JSON (%s)", field, tostring(value):gsub("^.-: ", "")) end
  local opening = text:match("^%s*(%S)")
  local is_object, is_empty = opening == "{", text:match("^%s*{%s*}%s*$") ~= nil
  if SHAPES[field] == "object" and not is_object then
    fail(path, "field %s must be a JSON object, got %s", field, text:sub(1, 40))
  elseif SHAPES[field] == "list" and opening ~= "[" and not is_empty then
    fail(path, "field %s must be a JSON list, got %s", field, text:sub(1, 40))
  end
  value = decode(value, tensors, path)
  if SHAPES[field] == "list" then
    for i, item in ipairs(value) do
      if type(item) ~= "table" then fail(path, "field %s[%d] must be a table, got %s", field, i, shown(item)) end
    end
  end
  return value
end

--- Reads a checkpoint file back into the table that write() was given. Metadata that is malformed or of
-- the wrong type is an error naming the file and the field (never a silent fresh start).
function SafetensorsCheckpointIO.read(path)
  local ok, tensors, meta = pcall(L.load_safetensors, path)
  if not ok then
    error(("cannot read checkpoint %s: %s"):format(path, SafetensorsCheckpointIO.why(path, tensors)), 0)
  end
  meta = meta or {}
  if meta.format ~= SafetensorsCheckpointIO.FORMAT then
    error(("%s is not a lightning checkpoint (its metadata has no format = %q); load weights alone with L.load_weights")
      :format(path, SafetensorsCheckpointIO.FORMAT), 0)
  end
  local version = tonumber(meta.format_version)
  if not version or version > SafetensorsCheckpointIO.VERSION then
    error(("%s has checkpoint format version %s; this library reads up to %d"):format(path,
      tostring(meta.format_version), SafetensorsCheckpointIO.VERSION), 0)
  end
  local ckpt = {format = meta.format, format_version = version, epoch = count_field(meta, path, "epoch"),
    global_step = count_field(meta, path, "global_step"), rng_state = meta.rng_state,
    cuda_rng_state = meta.cuda_rng_state, state_dict = {}}
  for key in pairs(TENSOR_PREFIX) do ckpt[key] = json_field(meta, path, key, tensors) end
  for k, v in pairs(json_field(meta, path, "extra", tensors)) do ckpt[k] = v end
  local sections = {}
  for _, prefix in pairs(TENSOR_PREFIX) do sections[prefix] = true end
  sections.extra = true
  for name, t in pairs(tensors) do
    local head = name:match("^([^.]+)%.")
    if not (head and sections[head]) then ckpt.state_dict[name] = t end
  end
  return ckpt
end

function SafetensorsCheckpointIO:save_checkpoint(ckpt, path)
  SafetensorsCheckpointIO.write(ckpt, path)
end

function SafetensorsCheckpointIO:load_checkpoint(path)
  return SafetensorsCheckpointIO.read(path)
end

return SafetensorsCheckpointIO
