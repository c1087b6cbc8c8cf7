-- CSVLogger (metrics.csv, hparams.yaml), both loggers at once, and the shared helpers (YAML, versions).
local L = require "lightning"
local H = require "helpers"
local Logger = require "lightning.loggers.logger"
local tfevents = require "lightning.loggers.tfevents"
local fsio = L.core.io

local CSV = L.loggers.CSVLogger

describe("CSVLogger", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("lays out save_dir/name/version_N/metrics.csv", function()
    local c = CSV{save_dir = dir}
    assert.are.equal("lightning_logs", c.name)
    assert.are.equal(0, c.version)
    assert.are.equal(dir .. "/lightning_logs/version_0", c.log_dir)
    assert.are.equal(dir .. "/lightning_logs/version_0/metrics.csv", c.metrics_file_path)
    c:log_metrics({a = 1}, 0)
    c:finalize("success")
    assert.are.equal(1, CSV{save_dir = dir}.version)
    assert.are.equal(dir .. "/x", CSV(dir, {name = "", version = "x"}).log_dir)
  end)

  it("writes step, epoch, then the metrics sorted; later metrics widen the table", function()
    local c = CSV{save_dir = dir}
    c:log_metrics({train_loss = 0.5, epoch = 0}, 0)
    c:log_metrics({train_loss = 0.25, epoch = 0}, 1)
    c:save()
    assert.are.equal("step,epoch,train_loss\n0,0,0.5\n1,0,0.25\n", H.read_file(c.metrics_file_path))
    c:log_metrics({val_acc = L.tensor{0.75}, val_loss = 1 / 3, epoch = 0}, 1)
    c:log_metrics({train_loss = 2}, 2)       -- an integer prints as one, as Python's int does
    c:finalize("success")
    assert.are.equal("step,epoch,train_loss,val_acc,val_loss\n" ..
      "0,0,0.5,,\n1,0,0.25,,\n1,0,,0.75,0.3333333333333333\n2,,2,,\n", H.read_file(c.metrics_file_path))
  end)

  it("leaves out the epoch column when no row has one, and quotes awkward names", function()
    local c = CSV{save_dir = dir}
    c:log_metrics({['loss, "smoothed"'] = 1, acc = 0 / 0, big = 1e300, inf = math.huge}, 5)
    c:log_metrics({acc = 1.0})  -- no step: the row count, as Lightning does
    c:finalize("success")
    assert.are.equal('step,acc,big,inf,"loss, ""smoothed"""\n5,nan,1e+300,inf,1\n1,1.0,,,\n',
      H.read_file(c.metrics_file_path))
  end)

  it("saves every flush_logs_every_n_steps steps, atomically, and hparams.yaml", function()
    local c = CSV{save_dir = dir, flush_logs_every_n_steps = 2}
    c:log_hyperparams({lr = 0.01, name = "run 1"})
    c:log_metrics({a = 1.0}, 0)
    assert.is_nil(fsio.file_type(c.metrics_file_path))
    c:log_metrics({a = 2.0}, 1)                    -- (step + 1) % 2 == 0
    assert.are.equal("step,a\n0,1.0\n1,2.0\n", H.read_file(c.metrics_file_path))
    assert.are.equal('lr: 0.01\nname: "run 1"\n', H.read_file(c.log_dir .. "/hparams.yaml"))
    c:log_metrics({a = 3.0}, 2)
    c:finalize("success")
    assert.are.equal("step,a\n0,1.0\n1,2.0\n2,3.0\n", H.read_file(c.metrics_file_path))
    assert.are.same({"hparams.yaml", "metrics.csv"}, fsio.listdir(c.log_dir))  -- no temporary files left
  end)

  it("appends rows while the columns stay the same, and rewrites the file when they change", function()
    local c = CSV{save_dir = dir}
    c:log_metrics({a = 1.5}, 0)
    c:save()
    fsio.append_file(c.metrics_file_path, "# a line that only an append keeps\n")
    c:log_metrics({a = 2.5}, 1)
    c:save()
    assert.are.equal("step,a\n0,1.5\n# a line that only an append keeps\n1,2.5\n", H.read_file(c.metrics_file_path))
    c:log_metrics({b = 1.0}, 2)
    c:save()
    assert.are.equal("step,a,b\n0,1.5,\n1,2.5,\n2,,1.0\n", H.read_file(c.metrics_file_path))
    os.remove(c.metrics_file_path)                   -- a file removed behind our back is written whole again
    c:log_metrics({b = 2.0}, 3)
    c:save()
    assert.are.equal("step,a,b\n0,1.5,\n1,2.5,\n2,,1.0\n3,,2.0\n", H.read_file(c.metrics_file_path))
  end)

  it("checks options and arguments", function()
    assert.truthy(H.error_of(CSV, {flush_every = 1}):find(
      "CSVLogger: unknown option 'flush_every' (did you mean 'flush_logs_every_n_steps'?) (known: flush_logs_every_n_steps, name, prefix, save_dir, version)", 1, true))
    assert.truthy(H.error_of(CSV, {flush_logs_every_n_steps = 0}):find("flush_logs_every_n_steps must be an integer >= 1, got 0", 1, true))
    assert.truthy(H.error_of(CSV, {name = false}):find("CSVLogger: name must be a string, got false", 1, true))
    local c = CSV{save_dir = dir}
    assert.truthy(H.error_of(c.log_metrics, c, {a = {}}, 0):find("CSVLogger:log_metrics: metric 'a' must be a number or a one-element tensor, got table", 1, true))
    assert.truthy(H.error_of(c.log_metrics, c, {a = 1}, "x"):find("CSVLogger:log_metrics: step must be an integer, got x", 1, true))
    assert.truthy(H.error_of(c.log_hyperparams, c, 3):find("CSVLogger:log_hyperparams: params must be a table, got number", 1, true))
  end)
end)

describe("both loggers at once", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("a LoggerCollection forwards every call", function()
    local tb = L.loggers.TensorBoardLogger{save_dir = dir}
    local csv = L.loggers.CSVLogger{save_dir = dir}
    local both = L.loggers.LoggerCollection{tb, csv}
    assert.are.equal("lightning_logs", both.name)   -- both default to Lightning's name: said once
    assert.are.equal("0", both.version)
    local other = L.loggers.LoggerCollection{tb, L.loggers.CSVLogger{save_dir = dir, name = "csv", version = 4}}
    assert.are.equal("lightning_logs_csv", other.name)
    assert.are.equal("0_4", other.version)
    assert.are.equal(tb.log_dir, both.log_dir)
    assert.are.equal(2, #both)
    both:log_hyperparams({lr = 0.1})
    for s = 0, 2 do both:log_metrics({loss = 1 / (s + 1), epoch = 0}, s) end
    both:log_graph({})
    both:after_save_checkpoint({})
    both:finalize("success")
    assert.are.equal(3, #tfevents.scalars(tb.event_file).loss)
    assert.are.equal("step,epoch,loss\n0,0,1.0\n1,0,0.5\n2,0,0.3333333333333333\n", H.read_file(csv.metrics_file_path))
    assert.are.equal("lr: 0.1\n", H.read_file(tb.log_dir .. "/hparams.yaml"))
    assert.are.equal("lr: 0.1\n", H.read_file(csv.log_dir .. "/hparams.yaml"))
    assert.are.same({tb, csv}, L.loggers.as_list(both))
    assert.are.same({tb, csv}, L.loggers.as_list({tb, csv}))
    assert.are.same({tb}, L.loggers.as_list(tb))
    assert.are.same({}, L.loggers.as_list(false))
    assert.truthy(H.error_of(L.loggers.LoggerCollection, {tb, 3}):find("LoggerCollection: logger 2 must have log_metrics(metrics, step), got number", 1, true))
  end)

  it("the same save_dir and name give both the same version folder", function()
    local tb = L.loggers.TensorBoardLogger{save_dir = dir, name = "exp"}
    local csv = L.loggers.CSVLogger{save_dir = dir, name = "exp"}
    tb:log_metrics({a = 1}, 0)
    csv:log_metrics({a = 1}, 0)
    tb:finalize("success")
    csv:finalize("success")
    assert.are.equal(tb.log_dir, csv.log_dir)
    local files = fsio.listdir(tb.log_dir)
    assert.are.equal(3, #files)
    assert.truthy(files[1]:match("^events%.out%.tfevents%."))
    assert.are.same({"hparams.yaml", "metrics.csv"}, {files[2], files[3]})
  end)
end)

describe("logger helpers", function()
  it("write YAML that PyYAML reads back (checked with tools/check_logs.py)", function()
    local yaml = Logger.to_yaml({
      plain = "adam", spaced = "a b", colon = "a: b", quote = 'say "hi"', newline = "x\ny", yes = "yes",
      number_like = "1e3", empty = "", int = 3, float = 0.5, whole = 2.0, neg = -1e-8, nan = 0 / 0, inf = -math.huge,
      flag = false, list = {1, "two", {3}}, nested = {a = {b = 1}}, empty_table = {}, ["key with space"] = 1})
    assert.are.equal(table.concat({
      "colon: \"a: b\"", "empty: \"\"", "empty_table: {}", "flag: false", "float: 0.5", "inf: -.inf", "int: 3",
      "\"key with space\": 1", "list:", "  - 1", "  - two", "  -", "    - 3", "nan: .nan", "neg: -1.0e-08", "nested:",
      "  a:", "    b: 1", "newline: \"x\\ny\"", "number_like: \"1e3\"", "plain: adam", "quote: \"say \\\"hi\\\"\"",
      "spaced: \"a b\"", "whole: 2.0", "\"yes\": \"yes\"", ""}, "\n"), yaml)
    assert.are.equal("{}\n", Logger.to_yaml({}))
  end)

  it("flatten nested hyperparameters as Lightning does", function()
    local flat = Logger.flatten_params({opt = {name = "sgd", lr = 0.1, betas = {0.9, 0.99}}, seed = 1, empty = {}})
    assert.are.same({{"empty", "{}"}, {"opt/betas", "[0.9, 0.99]"}, {"opt/lr", 0.1}, {"opt/name", "sgd"}, {"seed", 1}}, flat)
    local s = Logger.sanitize_params({t = L.tensor{2.5}, v = L.tensor{1, 2}, f = print, n = {x = L.tensor{1}}})
    assert.are.equal(2.5, s.t)
    assert.are.same({1, 2}, s.v)
    assert.are.equal("string", type(s.f))
    assert.are.equal(1, s.n.x)
  end)

  it("format numbers as Python prints them", function()
    assert.are.equal("3", Logger.format_number(3))
    assert.are.equal("3.0", Logger.format_number(3.0))
    assert.are.equal("0.1", Logger.format_number(0.1))
    assert.are.equal("0.30000000000000004", Logger.format_number(0.1 + 0.2))
    assert.are.equal("1e+16", Logger.format_number(1e16))
    assert.are.equal("-inf", Logger.format_number(-math.huge))
  end)
end)
