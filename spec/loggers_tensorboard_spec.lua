-- TensorBoardLogger: folders and versions as Lightning lays them out, scalars and hparams read back
-- with the Lua reader (itself checked against TensorBoard's own file in io_tfevents_spec), hparams.yaml.
local L = require "lightning"
local H = require "helpers"
local tfevents = require "lightning.loggers.tfevents"
local fsio = L.core.io

local TB = L.loggers.TensorBoardLogger

local function event_files(dir)
  local list = {}
  for _, name in ipairs(fsio.file_type(dir) == "directory" and fsio.listdir(dir) or {}) do
    if name:match("^events%.out%.tfevents%.") then list[#list + 1] = dir .. "/" .. name end
  end
  return list
end

local function summary_tags(path)
  local tags = {}
  for _, e in ipairs(tfevents.read(path)) do
    if e.summary then tags[#tags + 1] = e.summary.value[1].tag .. "@" .. e.step end
  end
  return tags
end

describe("TensorBoardLogger", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("lays out save_dir/name/version_N and takes the next free version", function()
    assert.are.equal(L.loggers.CSVLogger{save_dir = dir}.name, TB{save_dir = dir}.name)
    local a = TB{save_dir = dir}
    assert.are.equal("lightning_logs", a.name)   -- Lightning's default, and CSVLogger's
    assert.are.equal(0, a.version)
    assert.are.equal(dir .. "/lightning_logs", a.root_dir)
    assert.are.equal(dir .. "/lightning_logs/version_0", a.log_dir)
    assert.are.equal(dir, a.save_dir)
    assert.is_nil(fsio.file_type(a.log_dir))                 -- nothing is created before the first log
    a:log_metrics({x = 1}, 0)
    assert.are.equal("directory", fsio.file_type(a.log_dir))
    fsio.mkdir(dir .. "/lightning_logs/version_7")
    fsio.mkdir(dir .. "/lightning_logs/version_x")
    H.write_file(dir .. "/lightning_logs/version_9", "a file, not a version folder")
    assert.are.equal(8, TB{save_dir = dir}.version)
    local named = TB{save_dir = dir, name = "", version = "run_a"}
    assert.are.equal(dir .. "/run_a", named.log_dir)
    assert.are.equal(dir .. "/lightning_logs/version_3", TB(dir, {version = 3}).log_dir)  -- Lightning's positional save_dir
    assert.are.equal("outputs/logs/lightning_logs", TB{version = 0}.root_dir)
  end)

  it("names the event file as TensorBoard's writer does", function()
    local tb = TB{save_dir = dir}
    tb:log_metrics({x = 1}, 0)
    local files = event_files(tb.log_dir)
    assert.are.equal(1, #files)
    local stamp, host, pid = files[1]:match("events%.out%.tfevents%.(%d+)%.(.+)%.(%d+)%.%d+$")
    assert.are.equal(10, #stamp)
    assert.is_true(math.abs(tonumber(stamp) - os.time()) < 60)
    assert.are.equal(fsio.hostname(), host)
    assert.are.equal(fsio.pid(), tonumber(pid))
    assert.are.equal(files[1], tb.event_file)
  end)

  it("logs one scalar event per metric, names sorted, numbers and one-element tensors", function()
    local tb = TB{save_dir = dir}
    for s = 0, 4 do tb:log_metrics({train_loss = 2 / (s + 1), val_acc = L.tensor{0.1 * s}}, s) end
    tb:log_metrics({lr = L.tensor{{0.01}}})   -- no step: 0
    tb:finalize("success")
    local series = tfevents.scalars(tb.event_file)
    assert.are.equal(5, #series.train_loss)
    for s = 0, 4 do
      assert.are.equal(s, series.train_loss[s + 1].step)
      assert.are.equal(string.unpack("<f", string.pack("<f", 2 / (s + 1))), series.train_loss[s + 1].value)
      assert.are.equal(string.unpack("<f", string.pack("<f", 0.1 * s)), series.val_acc[s + 1].value)
    end
    assert.are.equal(0, series.lr[1].step)
    assert.are.same({"train_loss@0", "val_acc@0", "train_loss@1", "val_acc@1"}, {table.unpack(summary_tags(tb.event_file), 1, 4)})
  end)

  it("adds the prefix to metric names", function()
    local tb = TB{save_dir = dir, prefix = "fold1"}
    tb:log_metrics({loss = 1}, 3)
    tb:finalize("success")
    assert.are.same({"fold1-loss@3"}, summary_tags(tb.event_file))
  end)

  it("writes hparams for the HPARAMS tab with hp_metric = -1 by default, and hparams.yaml", function()
    local tb = TB{save_dir = dir}
    tb:log_hyperparams({lr = 0.001, batch_size = 64, model = {name = "cnn", channels = {32, 64}}, augment = true})
    tb:finalize("success")
    assert.are.same({"hp_metric@0", "_hparams_/experiment@0", "_hparams_/session_start_info@0",
      "_hparams_/session_end_info@0"}, summary_tags(tb.event_file))
    local events = tfevents.read(tb.event_file)
    assert.are.equal(-1, events[2].summary.value[1].simple_value)
    local exp = tfevents.decode(tfevents.schemas.HParamsPluginData, events[3].summary.value[1].metadata.plugin_data.content).experiment
    local names = {}
    for i, h in ipairs(exp.hparam_infos) do names[i] = h.name .. ":" .. h.type end
    assert.are.same({"augment:2", "batch_size:3", "lr:3", "model/channels:1", "model/name:1"}, names)
    assert.are.equal("hp_metric", exp.metric_infos[1].name.tag)
    local ssi = tfevents.decode(tfevents.schemas.HParamsPluginData, events[4].summary.value[1].metadata.plugin_data.content).session_start_info
    assert.are.equal("model/channels", ssi.hparams[4].key)
    assert.are.equal("[32, 64]", ssi.hparams[4].value.string_value)
    assert.are.equal(64, ssi.hparams[2].value.number_value)
    assert.are.equal(true, ssi.hparams[1].value.bool_value)
    assert.are.equal("augment: true\nbatch_size: 64\nlr: 0.001\nmodel:\n  channels:\n    - 32\n    - 64\n  name: cnn\n",
      H.read_file(tb.log_dir .. "/hparams.yaml"))
    assert.are.equal(0.001, tb.hparams.lr)
  end)

  it("takes the HPARAMS metrics from the caller, or none without default_hp_metric", function()
    local tb = TB{save_dir = dir, version = 0}
    tb:log_hyperparams({lr = 0.1}, {best_acc = 0.9, best_loss = L.tensor{0.2}})
    tb:finalize("success")
    local tags = summary_tags(tb.event_file)
    assert.are.same({"best_acc@0", "best_loss@0", "_hparams_/experiment@0"}, {table.unpack(tags, 1, 3)})
    local tb2 = TB{save_dir = dir, version = 1}
    tb2:log_hyperparams({lr = 0.1}, 0.75)
    tb2:finalize("success")
    assert.are.equal("hp_metric@0", summary_tags(tb2.event_file)[1])
    local tb3 = TB{save_dir = dir, version = 2, default_hp_metric = false}
    tb3:log_hyperparams({lr = 0.1})
    tb3:log_metrics({x = 1}, 1)
    tb3:finalize("success")
    assert.are.same({"x@1"}, summary_tags(tb3.event_file))
    assert.are.equal("lr: 0.1\n", H.read_file(tb3.log_dir .. "/hparams.yaml"))
  end)

  it("makes records visible on flush, and opens a new file when logging after finalize", function()
    local tb = TB{save_dir = dir, max_queue = 100}
    tb:log_metrics({a = 1}, 1)
    assert.are.equal(1, #tfevents.read(tb.event_file))   -- queued
    tb:flush()
    assert.are.equal(2, #tfevents.read(tb.event_file))
    tb:finalize("failed")
    assert.is_nil(fsio.file_type(tb.log_dir .. "/hparams.yaml"))  -- only a successful run saves it
    local first = tb.event_file
    tb:log_metrics({a = 2}, 2)
    tb:finalize("success")
    assert.are_not.equal(first, tb.event_file)
    assert.are.equal(2, #event_files(tb.log_dir))
    assert.are.same({"a@2"}, summary_tags(tb.event_file))
  end)

  it("checks options and arguments", function()
    assert.truthy(H.error_of(TB, {save_dri = "x"}):find(
      "TensorBoardLogger: unknown option 'save_dri' (did you mean 'save_dir'?) (known: default_hp_metric, flush_secs, max_queue, name, prefix, save_dir, version)", 1, true))
    assert.truthy(H.error_of(TB, {save_dir = 3}):find("TensorBoardLogger: save_dir must be a string, got 3", 1, true))
    assert.truthy(H.error_of(TB, {version = 1.5}):find("version must be an integer >= 0 or a string, got 1.5", 1, true))
    assert.truthy(H.error_of(TB, {version = -1, save_dir = dir}):find("version must be an integer >= 0 or a string, got -1", 1, true))
    assert.truthy(H.error_of(TB, {default_hp_metric = "yes"}):find("default_hp_metric must be a boolean, got \"yes\"", 1, true))
    assert.truthy(H.error_of(TB, {max_queue = 0}):find("max_queue must be an integer >= 1, got 0", 1, true))
    assert.truthy(H.error_of(TB, 5):find("TensorBoardLogger: expected a table of options, got 5", 1, true))
    local tb = TB{save_dir = dir}
    assert.truthy(H.error_of(tb.log_metrics, tb, {loss = "low"}, 1):find(
      "TensorBoardLogger:log_metrics: metric 'loss' must be a number or a one-element tensor, got string", 1, true))
    assert.truthy(H.error_of(tb.log_metrics, tb, {loss = L.zeros(2)}, 1):find("metric 'loss' must be a number or a one-element tensor, got a tensor of 2 elements", 1, true))
    assert.truthy(H.error_of(tb.log_metrics, tb, {1}, 1):find("metric names must be strings, got number 1", 1, true))
    assert.truthy(H.error_of(tb.log_metrics, tb, 0.5, 1):find("metrics must be a table {name = value}, got number", 1, true))
    assert.truthy(H.error_of(tb.log_metrics, tb, {a = 1}, 1.5):find("TensorBoardLogger:log_metrics: step must be an integer, got 1.5", 1, true))
    assert.truthy(H.error_of(tb.log_hyperparams, tb, "lr=1"):find("TensorBoardLogger:log_hyperparams: params must be a table, got string", 1, true))
    local blocked = TB{save_dir = dir .. "/file"}
    H.write_file(dir .. "/file", "x")
    assert.truthy(H.error_of(blocked.log_metrics, blocked, {a = 1}, 0):find("a file of that name is in the way", 1, true))
  end)
end)
