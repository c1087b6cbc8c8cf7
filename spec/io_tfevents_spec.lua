-- TensorBoard event files: the Lua reader (lightning.loggers.tfevents) against a file written by
-- TensorBoard's own writer (spec/fixtures/io/reference.tfevents, from ../shared/fixtures), then the C
-- writer (lightning.core.io.EventWriter) checked with that reader, field by field and byte by byte
-- against the reference.
local L = require "lightning"
local H = require "helpers"
local tfevents = require "lightning.loggers.tfevents"

local REFERENCE = "spec/fixtures/io/reference.tfevents"
local EventWriter = L.core.io.EventWriter

-- The reference's scalars: train_loss = 2/(s+1) and val_acc = 0.1*s for s = 0..4, in that order.
local function reference_scalars()
  local list = {}
  for s = 0, 4 do
    list[#list + 1] = {"train_loss", 2 / (s + 1), s}
    list[#list + 1] = {"val_acc", 0.1 * s, s}
  end
  return list
end

local function f32(x) return string.unpack("<f", string.pack("<f", x)) end

local function fields_of(t)
  local names = {}
  for k in pairs(t._wire) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ",")
end

describe("tfevents reader", function()
  it("computes CRC-32C and TFRecord's mask", function()
    assert.are.equal(0xe3069283, tfevents.crc32c("123456789"))  -- the standard check value
    assert.are.equal(0, tfevents.crc32c(""))
    local crc = tfevents.crc32c("abc")
    assert.are.equal((((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff, tfevents.masked_crc32c("abc"))
  end)

  it("reads the file TensorBoard's writer wrote", function()
    local events = tfevents.read(REFERENCE)
    assert.are.equal(11, #events)
    local first = events[1]
    assert.are.equal("brain.Event:2", first.file_version)
    assert.are.equal("tensorboard.summary.writer.event_file_writer", first.source_metadata.writer)
    assert.are.equal("file_version,source_metadata,wall_time", fields_of(first))
    for i, s in ipairs(reference_scalars()) do
      local e = events[i + 1]
      local v = e.summary.value[1]
      assert.are.equal(1, #e.summary.value)
      assert.are.equal(s[1], v.tag)
      assert.are.equal(f32(s[2]), v.simple_value)
      assert.are.equal(s[3], e.step)
      assert.are.same({tag = 2, simple_value = 5}, v._wire)
      assert.are.equal(1, e._wire.wall_time)
      assert.are.equal(2, e._wire.summary)
      if s[3] == 0 then assert.is_nil(e._wire.step) else assert.are.equal(0, e._wire.step) end  -- proto3 leaves out 0
      assert.is_true(e.wall_time > 1.5e9 and e.wall_time >= events[i].wall_time)
    end
    local series = tfevents.scalars(REFERENCE)
    assert.are.equal(5, #series.train_loss)
    assert.are.equal(f32(0.4), series.val_acc[5].value)
  end)

  it("reports corrupt and truncated records with their position", function()
    local data = H.read_file(REFERENCE)
    local function err_of(bytes) return H.error_of(tfevents.records, bytes) end
    local flipped = data:sub(1, 30) .. string.char(data:byte(31) ~ 1) .. data:sub(32)
    assert.truthy(err_of(flipped):find("record 1 at byte 0: the data's CRC does not match", 1, true))
    local len_flipped = data:sub(1, 88) .. string.char(data:byte(89) ~ 4) .. data:sub(90)
    assert.truthy(err_of(len_flipped):find("record 2 at byte 88: the length's CRC does not match", 1, true))
    assert.truthy(err_of(data:sub(1, #data - 3)):find("record 11 at byte 504: truncated (29 bytes of data announced)", 1, true))
    assert.truthy(err_of(data:sub(1, #data - 40)):find("record 11 at byte 504: truncated length header", 1, true))
    assert.truthy(H.error_of(tfevents.read, "/nonexistent/x"):find("tfevents.read: /nonexistent/x", 1, true))
  end)

  it("decodes protobuf fields strictly", function()
    assert.truthy(H.error_of(tfevents.decode, tfevents.schemas.Event, "\x10"):find("truncated varint", 1, true))
    assert.truthy(H.error_of(tfevents.decode, tfevents.schemas.Event, "\x09\0\0"):find("field 1: truncated", 1, true))
    assert.truthy(H.error_of(tfevents.decode, tfevents.schemas.Event, "\x0d\0\0\0\0"):find(
      "field 1 (wall_time) has wire type 5, expected 1", 1, true))
    assert.truthy(H.error_of(tfevents.decode, tfevents.schemas.Event, "\x0b"):find("unsupported wire type 3", 1, true))
    local e = tfevents.decode(tfevents.schemas.Event, "\x10\x05\x58\x01")  -- step 5 and an unknown field 11
    assert.are.equal(5, e.step)
    assert.are.same({field = 11, wire = 0, value = 1}, e._unknown[1])
  end)
end)

describe("EventWriter", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function write_reference_scalars(path, opts)
    local w = EventWriter(path, opts)
    for _, s in ipairs(reference_scalars()) do w:add_scalar(s[1], s[2], s[3]) end
    w:close()
  end

  it("writes the scalars of the reference so that they decode to the same events", function()
    local path = dir .. "/events.out.tfevents.test"
    write_reference_scalars(path)
    local ours, ref = tfevents.read(path), tfevents.read(REFERENCE)
    assert.are.equal(#ref, #ours)
    assert.are.equal(ref[1].file_version, ours[1].file_version)
    assert.are.equal("lightning", ours[1].source_metadata.writer)
    assert.are.equal(fields_of(ref[1]), fields_of(ours[1]))
    for i = 2, #ref do
      local a, b = ours[i], ref[i]
      assert.are.equal(fields_of(b), fields_of(a), "event " .. i)
      assert.are.same(b._wire, a._wire)
      assert.are.equal(b.step, a.step)
      assert.are.same(b.summary.value[1]._wire, a.summary.value[1]._wire)
      assert.are.equal(b.summary.value[1].tag, a.summary.value[1].tag)
      assert.are.equal(b.summary.value[1].simple_value, a.summary.value[1].simple_value)
      assert.is_true(math.abs(a.wall_time - os.time()) < 60)
    end
  end)

  it("writes the same bytes as TensorBoard's writer, apart from the wall time", function()
    local path = dir .. "/events.out.tfevents.bytes"
    write_reference_scalars(path)
    local ours, ref = tfevents.records(H.read_file(path)), tfevents.records(H.read_file(REFERENCE))
    for i = 2, #ref do
      assert.are.equal("\x09", ours[i]:sub(1, 1))               -- field 1 (wall_time), fixed64
      assert.are.equal(ref[i]:sub(10), ours[i]:sub(10), "record " .. i)
    end
  end)

  it("writes the HPARAMS plugin's three summaries as PyTorch's hparams() does", function()
    local path = dir .. "/events.out.tfevents.hp"
    local w = EventWriter(path)
    w:add_hparams({{"lr", 0.001}, {"optimizer", "adam"}, {"augment", false}, {"layers", 0}}, {"hp_metric", "val/acc"}, 1234.5)
    w:close()
    local events = tfevents.read(path)
    assert.are.equal(4, #events)
    local content = {}
    for i, tag in ipairs({"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"}) do
      local e = events[i + 1]
      assert.are.equal(1234.5, e.wall_time)
      assert.are.equal(0, e.step)
      local v = e.summary.value[1]
      assert.are.equal(tag, v.tag)
      assert.is_nil(v.simple_value)
      assert.are.equal("hparams", v.metadata.plugin_data.plugin_name)
      content[i] = tfevents.decode(tfevents.schemas.HParamsPluginData, v.metadata.plugin_data.content)
      assert.is_nil(content[i].version)  -- version 0, left out
    end
    local exp = content[1].experiment
    assert.are.same({{"lr", 3}, {"optimizer", 1}, {"augment", 2}, {"layers", 3}}, (function()
      local out = {}
      for i, h in ipairs(exp.hparam_infos) do out[i] = {h.name, h.type} end
      return out
    end)())
    assert.are.equal("hp_metric", exp.metric_infos[1].name.tag)
    assert.are.equal("val/acc", exp.metric_infos[2].name.tag)
    assert.is_nil(exp.metric_infos[1].name.group)
    local hp = content[2].session_start_info.hparams
    assert.are.equal("lr", hp[1].key)
    assert.are.equal(0.001, hp[1].value.number_value)
    assert.are.equal("adam", hp[2].value.string_value)
    assert.are.equal(false, hp[3].value.bool_value)      -- written even though false (a oneof member)
    assert.are.equal(0, hp[4].value.number_value)
    assert.are.equal(1, content[3].session_end_info.status)  -- STATUS_SUCCESS
  end)

  it("encodes negative steps as protobuf int64", function()
    local path = dir .. "/neg"
    local w = EventWriter(path)
    w:add_scalar("x", 1, -3)
    w:add_scalar("big", 0.5, 1 << 40)
    w:close()
    local events = tfevents.read(path)
    assert.are.equal(-3, events[2].step)
    assert.are.equal(1 << 40, events[3].step)
  end)

  it("appends whole records as the queue fills and on flush; earlier records survive a crash", function()
    local path = dir .. "/queue"
    local w = EventWriter(path, {max_queue = 3, flush_secs = 1e9})
    local size0 = #H.read_file(path)
    assert.are.equal(1, #tfevents.records(H.read_file(path)))  -- the file version is written at once
    w:add_scalar("a", 1, 1)
    w:add_scalar("a", 2, 2)
    assert.are.equal(size0, #H.read_file(path))
    w:add_scalar("a", 3, 3)                                      -- the third fills the queue
    assert.are.equal(4, #tfevents.records(H.read_file(path)))
    w:add_scalar("a", 4, 4)
    w:flush()
    assert.are.equal(5, #tfevents.records(H.read_file(path)))
    -- a crash in the middle of a record leaves the earlier ones readable
    local data = H.read_file(path)
    local partial = dir .. "/partial"
    local first = tfevents.records(data)[1]
    H.write_file(partial, data .. data:sub(#first + 17, #first + 16 + 20))  -- the start of the second record
    local msg = H.error_of(tfevents.records, H.read_file(partial))
    assert.truthy(msg:find("record 6 at byte " .. #data .. ": truncated", 1, true), msg)
    w:close()
    w:close()  -- twice is fine
    assert.is_false(w:is_open())
  end)

  it("flushes queued records when flush_secs has passed", function()
    local path = dir .. "/timed"
    local w = EventWriter(path, {max_queue = 1000, flush_secs = 0})
    w:add_scalar("a", 1, 1)
    assert.are.equal(2, #tfevents.records(H.read_file(path)))
    w:close()
  end)

  it("checks its arguments and refuses to overwrite a file", function()
    local path = dir .. "/e"
    local w = EventWriter(path)
    assert.truthy(H.error_of(EventWriter, path):find("lightning.core.io.EventWriter: cannot create " .. path .. ": File exists", 1, true))
    assert.truthy(H.error_of(EventWriter, dir .. "/no/dir/e"):find("cannot create " .. dir .. "/no/dir/e: No such file or directory", 1, true))
    assert.truthy(H.error_of(EventWriter, 5):find("lightning.core.io.EventWriter: argument 1 must be a string, got number", 1, true))
    assert.truthy(H.error_of(EventWriter, dir .. "/q", {max_queue = 0}):find("max_queue must be an integer from 1 to 1000000, got 0", 1, true))
    assert.truthy(H.error_of(EventWriter, dir .. "/q2", {flush_secs = "x"}):find("flush_secs must be a number >= 0, got x", 1, true))
    assert.truthy(H.error_of(w.add_scalar, w, 1, 1, 1):find("EventWriter:add_scalar: argument 1 (tag) must be a string, got number", 1, true))
    assert.truthy(H.error_of(w.add_scalar, w, "t", "x", 1):find("argument 2 (value) must be a number, got string", 1, true))
    assert.truthy(H.error_of(w.add_scalar, w, "t", 1, 1.5):find("argument 3 (step) must be an integer, got 1.5", 1, true))
    assert.truthy(H.error_of(w.add_scalar, w, "t", 1, nil):find("argument 3 (step) must be an integer, got nil", 1, true))
    assert.truthy(H.error_of(w.add_scalar, w, "\255", 1, 1):find('tag "\255" is not valid UTF-8 (TensorBoard requires it)', 1, true))
    assert.truthy(H.error_of(w.add_scalar, w, "t", 1, 1, "now"):find("wall_time must be a number (seconds since the epoch), got string", 1, true))
    assert.truthy(H.error_of(w.add_scalar, {}, "t", 1, 1):find("EventWriter:add_scalar: self must be an EventWriter, got table (call it as w:add_scalar(...))", 1, true))
    assert.truthy(H.error_of(w.add_hparams, w, {{"a", {}}}, {}):find('EventWriter:add_hparams: hyperparameter "a" must be a number, a string or a boolean, got table', 1, true))
    assert.truthy(H.error_of(w.add_hparams, w, {"a"}, {}):find("argument 1: entry 1 must be a {name, value} pair, got string", 1, true))
    assert.truthy(H.error_of(w.add_hparams, w, {{1, 2}}, {}):find("argument 1: entry 1: the name must be a string, got number", 1, true))
    assert.truthy(H.error_of(w.add_hparams, w, {}, {1}):find("argument 2: metric tag 1 must be a string, got number", 1, true))
    assert.truthy(H.error_of(w.add_hparams, w, {}, "m"):find("EventWriter:add_hparams: argument 2 must be a table, got string", 1, true))
    w:close()
    assert.truthy(H.error_of(w.add_scalar, w, "t", 1, 1):find("EventWriter:add_scalar: the event file is closed", 1, true))
    assert.truthy(H.error_of(w.flush, w):find("EventWriter:flush: the event file is closed", 1, true))
    -- nothing but the complete file-version record was written by the failed calls
    assert.are.equal(1, #tfevents.records(H.read_file(path)))
  end)

  it("is closed by the garbage collector and by <close>", function()
    local path = dir .. "/gc"
    do
      local w <close> = EventWriter(path, {max_queue = 100})
      w:add_scalar("a", 1, 1)
    end
    assert.are.equal(2, #tfevents.records(H.read_file(path)))
    local path2 = dir .. "/gc2"
    EventWriter(path2, {max_queue = 100}):add_scalar("b", 2, 2)
    collectgarbage()
    collectgarbage()
    assert.are.equal(2, #tfevents.records(H.read_file(path2)))
  end)
end)
