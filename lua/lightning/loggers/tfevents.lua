--- Reading TensorBoard event files in plain Lua: the record framing with both masked CRC-32Cs, and the
-- protobuf messages TensorBoard's scalars and hparams use. Written independently of the C writer
-- (csrc/core/formats/tfevents.c) so that each checks the other, and both are checked against a file
-- written by TensorBoard's own writer (spec/fixtures/io/reference.tfevents).
--   local tfevents = require "lightning.loggers.tfevents"
--   for _, e in ipairs(tfevents.read(path)) do print(e.step, e.summary and e.summary.value[1].tag) end
--   tfevents.scalars(path) --> {train_loss = {{step = 0, value = 2.0, wall_time = ...}, ...}, ...}
local core = require "lightning.core"

local M = {}

-- ---- CRC-32C (Castagnoli, reflected) ----
local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1 == 1) and (0x82f63b78 ~ (c >> 1)) or (c >> 1) end
  crc_table[i] = c
end

--- CRC-32C of s:sub(i, j).
function M.crc32c(s, i, j)
  local crc = 0xffffffff
  for k = i or 1, j or #s do crc = crc_table[(crc ~ s:byte(k)) & 0xff] ~ (crc >> 8) end
  return crc ~ 0xffffffff
end

--- TFRecord's masked CRC: rotate right by 15 bits, add a constant.
function M.masked_crc32c(s, i, j)
  local crc = M.crc32c(s, i, j)
  return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff
end

--- The payloads of the records in data (a string), after checking each length and both CRCs. An error
-- names the record and its byte offset.
function M.records(data)
  local out, pos = {}, 1
  while pos <= #data do
    local n, at = #out + 1, pos - 1
    if #data - pos + 1 < 12 then error(("record %d at byte %d: truncated length header"):format(n, at), 2) end
    local len, len_crc = string.unpack("<i8I4", data, pos)
    if M.masked_crc32c(data, pos, pos + 7) ~= len_crc then
      error(("record %d at byte %d: the length's CRC does not match"):format(n, at), 2)
    end
    if len < 0 or len > #data - pos + 1 - 16 then
      error(("record %d at byte %d: truncated (%d bytes of data announced)"):format(n, at, len), 2)
    end
    local payload = data:sub(pos + 12, pos + 11 + len)
    if M.masked_crc32c(payload) ~= string.unpack("<I4", data, pos + 12 + len) then
      error(("record %d at byte %d: the data's CRC does not match"):format(n, at), 2)
    end
    out[n] = payload
    pos = pos + 16 + len
  end
  return out
end

-- ---- protobuf wire format ----
local function varint(s, pos)
  local v, shift = 0, 0
  repeat
    local b = s:byte(pos)
    if not b then error("truncated varint", 0) end
    if shift > 63 then error("varint longer than 10 bytes", 0) end
    v = v | ((b & 0x7f) << shift)
    shift, pos = shift + 7, pos + 1
  until b < 0x80
  return v, pos
end

--- The fields of one message: a list of {field = n, wire = w, value = v} with v an integer (wire 0), or
-- the raw bytes (wire 1: 8 bytes, wire 2: the payload, wire 5: 4 bytes).
function M.decode_fields(s)
  local fields, pos = {}, 1
  while pos <= #s do
    local key
    key, pos = varint(s, pos)
    local field, wire, value = key >> 3, key & 7, nil
    if wire == 0 then
      value, pos = varint(s, pos)
    else
      local n
      if wire == 1 then n = 8
      elseif wire == 5 then n = 4
      elseif wire == 2 then n, pos = varint(s, pos)
      else error(("field %d: unsupported wire type %d"):format(field, wire), 0) end
      if n < 0 or pos + n - 1 > #s then error(("field %d: truncated"):format(field), 0) end
      value = s:sub(pos, pos + n - 1)
      pos = pos + n
    end
    fields[#fields + 1] = {field = field, wire = wire, value = value}
  end
  return fields
end

-- Schemas: field number -> {name, type[, repeated]}; a type is a scalar kind or another schema.
local S = {}
M.schemas = S
S.PluginData = {{"plugin_name", "string"}, {"content", "bytes"}}
S.SummaryMetadata = {{"plugin_data", S.PluginData}, {"display_name", "string"}, {"summary_description", "string"},
  {"data_class", "enum"}}
S.Value = {{"tag", "string"}, {"simple_value", "float"}, [7] = {"node_name", "string"}, [8] = {"tensor", "bytes"},
  [9] = {"metadata", S.SummaryMetadata}}
S.Summary = {{"value", S.Value, true}}
S.SourceMetadata = {{"writer", "string"}}
S.Event = {{"wall_time", "double"}, {"step", "int64"}, {"file_version", "string"}, {"graph_def", "bytes"},
  {"summary", S.Summary}, [10] = {"source_metadata", S.SourceMetadata}}
-- TensorBoard's hparams plugin (plugin_data.proto, api.proto) and google.protobuf.Value
S.ProtoValue = {{"null_value", "enum"}, {"number_value", "double"}, {"string_value", "string"}, {"bool_value", "bool"}}
S.HParamsMapEntry = {{"key", "string"}, {"value", S.ProtoValue}}
S.MetricName = {{"group", "string"}, {"tag", "string"}}
S.MetricInfo = {{"name", S.MetricName}, [3] = {"display_name", "string"}, [4] = {"description", "string"},
  [5] = {"dataset_type", "enum"}}
S.HParamInfo = {{"name", "string"}, {"display_name", "string"}, {"description", "string"}, {"type", "enum"}}
S.Experiment = {{"description", "string"}, {"user", "string"}, {"time_created_secs", "double"},
  {"hparam_infos", S.HParamInfo, true}, {"metric_infos", S.MetricInfo, true}, {"name", "string"}}
S.SessionStartInfo = {{"hparams", S.HParamsMapEntry, true}, {"model_uri", "string"}, {"monitor_url", "string"},
  {"group_name", "string"}, {"start_time_secs", "double"}}
S.SessionEndInfo = {{"status", "enum"}, {"end_time_secs", "double"}}
S.HParamsPluginData = {{"version", "int64"}, {"experiment", S.Experiment}, {"session_start_info", S.SessionStartInfo},
  {"session_end_info", S.SessionEndInfo}}

local wire_of = {double = 1, float = 5, int64 = 0, enum = 0, bool = 0, string = 2, bytes = 2}

--- Decodes s with a schema into a table of named fields (repeated fields as lists). Each decoded table
-- also records the wire type it saw for each field in t._wire, and fields the schema does not know in
-- t._unknown. A wire type that disagrees with the schema is an error.
function M.decode(schema, s)
  local t = {_wire = {}, _unknown = {}}
  for _, f in ipairs(M.decode_fields(s)) do
    local spec = schema[f.field]
    if not spec then
      t._unknown[#t._unknown + 1] = f
    else
      local name, kind, repeated = spec[1], spec[2], spec[3]
      local expected = type(kind) == "table" and 2 or wire_of[kind]
      if f.wire ~= expected then
        error(("field %d (%s) has wire type %d, expected %d"):format(f.field, name, f.wire, expected), 0)
      end
      local v = f.value
      if type(kind) == "table" then v = M.decode(kind, v)
      elseif kind == "double" then v = string.unpack("<d", v)
      elseif kind == "float" then v = string.unpack("<f", v)
      elseif kind == "bool" then v = v ~= 0 end
      if repeated then
        t[name] = t[name] or {}
        table.insert(t[name], v)
      else
        t[name] = v
      end
      t._wire[name] = f.wire
    end
  end
  return t
end

--- The events of an event file, decoded (Event messages as tables; see M.schemas.Event).
function M.read(path)
  local kind = core.io.file_type(path)
  if kind and kind ~= "file" then  -- a FIFO or a device would block or never end
    error(("tfevents.read: %s is not a regular file (it is a %s)"):format(path, kind), 2)
  end
  local f, err = io.open(path, "rb")
  if not f then error("tfevents.read: " .. err, 2) end
  local data = f:read("a")
  f:close()
  local ok, records = pcall(M.records, data)
  if not ok then error(("tfevents.read: %s: %s"):format(path, records), 2) end
  local events = {}
  for i, payload in ipairs(records) do
    local ok2, e = pcall(M.decode, S.Event, payload)
    if not ok2 then error(("tfevents.read: %s: event %d: %s"):format(path, i, e), 2) end
    e.step = e.step or 0  -- proto3 leaves out zeros
    events[i] = e
  end
  return events
end

--- The scalar series of an event file: {tag = {{step =, value =, wall_time =}, ...}}.
function M.scalars(path)
  local series = {}
  for _, e in ipairs(M.read(path)) do
    for _, v in ipairs(e.summary and e.summary.value or {}) do
      if v.simple_value then
        series[v.tag] = series[v.tag] or {}
        table.insert(series[v.tag], {step = e.step, value = v.simple_value, wall_time = e.wall_time})
      end
    end
  end
  return series
end

return M
