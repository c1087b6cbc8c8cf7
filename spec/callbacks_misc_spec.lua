-- LearningRateMonitor, ProgressBar, ModelSummary and GradientFlowMonitor.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local C = L.callbacks

local function loader(n, seed) return S.Loader(S.regression_batches(n, 4, 3, seed or 1)) end

describe("LearningRateMonitor", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function fit(monitor_opts, model_methods, trainer_opts)
    local model = S.Regression{methods = model_methods}(3)
    local lg = S.MemoryLogger()
    local monitor = C.LearningRateMonitor(monitor_opts)
    local opts = S.quiet(dir, {max_epochs = 3, logger = lg, callbacks = {monitor}, log_every_n_steps = 1})
    for k, v in pairs(trainer_opts or {}) do opts[k] = v end
    L.Trainer(opts):fit(model, loader(2))
    local rows = {}
    for _, r in ipairs(lg.records) do
      for k, v in pairs(r.metrics) do
        if not k:match("^train_") and k ~= "epoch" then rows[#rows + 1] = {k, r.step, v} end
      end
    end
    return rows, monitor
  end

  it("logs the rate at each epoch start, also without a scheduler", function()
    local rows, monitor = fit({}, {configure_optimizers = function(self)
      return L.optim.SGD(self:parameters(), {lr = 0.1})
    end})
    assert.same({{"lr-SGD", 0, 0.1}, {"lr-SGD", 2, 0.1}, {"lr-SGD", 4, 0.1}}, rows)
    assert.same({0.1, 0.1, 0.1}, monitor.lrs["lr-SGD"])
  end)

  it("follows an epoch scheduler, with momentum and under the configuration's name", function()
    local rows = fit({log_momentum = true}, {configure_optimizers = function(self)
      local opt = L.optim.SGD(self:parameters(), {lr = 0.1, momentum = 0.9})
      return {optimizer = opt, lr_scheduler = {scheduler = L.optim.lr_scheduler.StepLR(opt, {step_size = 1, gamma = 0.5}),
        name = "my_lr"}}
    end})
    table.sort(rows, function(a, b) return a[2] < b[2] or (a[2] == b[2] and a[1] < b[1]) end)
    assert.same({{"my_lr", 0, 0.1}, {"my_lr-momentum", 0, 0.9}, {"my_lr", 2, 0.05}, {"my_lr-momentum", 2, 0.9},
      {"my_lr", 4, 0.025}, {"my_lr-momentum", 4, 0.9}}, rows)
  end)

  it("logs a step scheduler's rate every log_every_n_steps steps", function()
    local rows = fit({}, {configure_optimizers = function(self)
      local opt = L.optim.Adam(self:parameters(), {lr = 0.01})
      return {optimizer = opt, lr_scheduler = {scheduler = L.optim.lr_scheduler.StepLR(opt, {step_size = 1, gamma = 0.5}),
        interval = "step"}}
    end}, {max_epochs = 1})
    assert.same({{"lr-Adam", 0, 0.01}, {"lr-Adam", 1, 0.005}}, rows)
  end)

  it("needs a logger and checks its options", function()
    local model = S.Regression{}(3)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, callbacks = {C.LearningRateMonitor{}}}))
    assert.matches("LearningRateMonitor: the Trainer has no logger", H.error_of(trainer.fit, trainer, model, loader(1)))
    assert.matches("logging_interval must be \"step\", \"epoch\" or nil, got \"batch\"",
      H.error_of(C.LearningRateMonitor, {logging_interval = "batch"}))
  end)
end)

describe("ProgressBar", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function fit(bar_opts, trainer_opts, n, model_methods)
    local model = S.Regression{methods = model_methods}(3)
    local opts = S.quiet(dir, {max_epochs = 2, callbacks = {C.ProgressBar(bar_opts)}, log_every_n_steps = 2})
    for k, v in pairs(trainer_opts or {}) do opts[k] = v end
    local trainer = L.Trainer(opts)
    return output.capture(trainer.fit, trainer, model, loader(n or 5), loader(2, 2)), trainer
  end

  it("in a log prints a line every n steps and one summary line per epoch", function()
    local text = fit({})
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(6, #lines)
    assert.matches("^Epoch 0:  40%% 2/5 %[%d%d:%d%d<%d%d:%d%d, [%d.]+it/s, train_loss_step=[%d.e-]+%]$", lines[1])
    assert.matches("^Epoch 0:  80%% 4/5 ", lines[2])
    assert.matches("^Epoch 0: 5/5 batches in %d%d:%d%d %([%d.]+it/s%), train_loss_epoch=[%d.e-]+, train_loss_step=[%d.e-]+, val_loss=[%d.e-]+$", lines[3])
    assert.matches("^Epoch 1: 5/5 batches", lines[6])
    assert.is_nil(text:find("\r", 1, true))
    assert.is_nil(text:find("█", 1, true))
  end)

  it("shows the logger's version as v_num", function()
    local lg = S.MemoryLogger()
    lg.version = 7
    local text = fit({}, {logger = lg})
    assert.matches("v_num=7", text)
  end)

  it("on a terminal redraws one line in place with a bar, and keeps one line per epoch", function()
    local text = fit({terminal = true})
    assert.matches("\rEpoch 0:  20%%|█████                    | 1/5 %[", text)
    assert.matches("\rEpoch 0: 100%%|█████████████████████████| 5/5 %[", text)
    assert.matches("\27%[K", text)
    assert.matches("\rValidation: 100%%|", text)
    assert.matches("\r\27%[K", text)   -- the validation line is cleared
    assert.matches("\27%[1A", text)    -- and the epoch's bar redrawn above it
    assert.matches("val_loss=[%d.e-]+%]\27%[K\n", text)
    -- validation draws below the bar (the two lines are the live region), then goes: one line stays
    -- on the screen per epoch
    local screen = require("terminal_screen").screen(text)
    assert.equal(2, #screen, table.concat(screen, "\n"))
    assert.matches("^Epoch 0: 100%%|[█]+| 5/5 %[.*val_loss=[%d.e-]+%]$", screen[1])
    assert.matches("^Epoch 1: 100%%|[█]+| 5/5 %[.*val_loss=[%d.e-]+%]$", screen[2])
  end)

  it("draws partial blocks for fractions of a cell", function()
    local text = fit({terminal = true, width = 10}, {max_epochs = 1}, 3)
    assert.matches("| 1/3 %[", text)
    assert.matches("\rEpoch 0:  33%%|███▎      |", text)
  end)

  it("ends its line before an error", function()
    local text
    local ok, err = pcall(function()
      text = fit({terminal = true}, {max_epochs = 1}, 3, {training_step = function(self, batch, i)
        if i == 2 then error("boom") end
        return S.Regression{}.training_step(self, batch, i)
      end})
    end)
    assert.is_false(ok)
    assert.matches("boom", err)
  end)

  it("reports test runs, and predict runs quietly (the caller prints the predictions)", function()
    local model = S.Regression{}(3)
    local trainer = L.Trainer(S.quiet(dir, {callbacks = {C.ProgressBar{}}}))
    local text = output.capture(trainer.test, trainer, model, loader(3), {verbose = false})
    assert.matches("^Testing: 3 batches in %d%d:%d%d\n$", text)
    text = output.capture(trainer.test, trainer, model, loader(1), {verbose = false})
    assert.matches("^Testing: 1 batch in %d%d:%d%d\n$", text)   -- (not "1 batches")
    text = output.capture(trainer.predict, trainer, model, loader(2))
    assert.equal("", text)
  end)

  it("checks its options", function()
    assert.matches("ProgressBar: refresh_rate must be an integer >= 1, got 0", H.error_of(C.ProgressBar, {refresh_rate = 0}))
    assert.matches("^ProgressBar: unknown option 'refresh_rat' %(did you mean 'refresh_rate'%?%) %(known: .*refresh_rate", H.error_of(C.ProgressBar, {refresh_rat = 1}))
  end)
end)

describe("ModelSummary", function()
  it("writes counts as Lightning does", function()
    local count = C.ModelSummary.human_count
    assert.equal("999", count(999))
    assert.equal("1.2 K", count(1234))
    assert.equal("1.5 M", count(1.5e6 // 1))
    assert.equal("2.0 B", count(2e9 // 1))
  end)

  local function model()
    local nn = L.nn
    local m = L.models.ImageClassifier{net = nn.Sequential(nn.Conv2d(1, 2, 3, {padding = 1}), nn.ReLU(), nn.Flatten(),
      nn.Linear(2 * 4 * 4, 3)), num_classes = 3, in_channels = 1, image_size = 4}
    return m
  end

  it("lists layers, parameters, output shapes and the size in MB", function()
    local text = C.ModelSummary.summarize(model(), 2)
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.matches("^  | Name  | Type       | Params | Mode  | Out sizes$", lines[1])
    assert.matches("^1 | net   | Sequential | 119    | train | %[1, 3%]$", lines[3])
    assert.matches("^2 | net.0 | Conv2d     | 20     | train | %[1, 2, 4, 4%]$", lines[4])
    assert.matches("^5 | net.3 | Linear     | 99     | train | %[1, 3%]$", lines[7])
    assert.equal("119       Trainable params", lines[9])
    assert.equal("0         Non-trainable params", lines[10])
    assert.equal("119       Total params", lines[11])
    assert.equal("0.000     Total estimated model params size (MB)", lines[12])
  end)

  it("leaves out shapes without example_input_array, and nested layers at max_depth 1", function()
    local m = model()
    m.example_input_array = nil
    local text = C.ModelSummary.summarize(m, 1)
    assert.is_nil(text:find("Out sizes", 1, true))
    assert.is_nil(text:find("net.0", 1, true))
  end)

  it("prints at the start of fit and checks its options", function()
    local dir = H.tmpdir()
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, callbacks = {C.ModelSummary{max_depth = 2}}}))
    local text = output.capture(trainer.fit, trainer, model(), S.Loader({{input = L.randn(2, 1, 4, 4),
      target = L.tensor{1, 2}}}))
    H.rmdir(dir)
    assert.matches("net.3 | Linear", text)
    assert.matches("max_depth must be an integer >= %-1", H.error_of(C.ModelSummary, {max_depth = "all"}))
  end)
end)

describe("GradientFlowMonitor", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  -- A Regression with an extra parameter that gets no gradient (vanishing).
  local function fit(monitor_opts)
    local Model = S.Regression{}
    local Frozen = L.class("Frozen", Model)
    function Frozen:__init(dim)
      Model.__init(self, dim)
      self:register_parameter("unused", L.ones(2))
    end
    local lg = S.MemoryLogger()
    local monitor = C.GradientFlowMonitor(monitor_opts)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, logger = lg, callbacks = {monitor}, log_every_n_steps = 2}))
    local text = output.capture(trainer.fit, trainer, Frozen(3), loader(4))
    return monitor, lg, text
  end

  it("logs gradient norms every n steps and warns about vanishing gradients", function()
    local monitor, lg, text = fit({})
    local steps = {}
    for _, r in ipairs(lg.records) do
      if r.metrics["grad_norm/total"] then
        steps[#steps + 1] = r.step
        assert.is_true(r.metrics["grad_norm/weight"] > 0)
        assert.equal(0, r.metrics["grad_norm/unused"])
        local w, b = r.metrics["grad_norm/weight"], r.metrics["grad_norm/bias"]
        assert.near(math.sqrt(w * w + b * b), r.metrics["grad_norm/total"], 1e-9)
      end
    end
    assert.same({0, 2}, steps)
    assert.equal(2, #monitor.history)
    assert.matches("Gradient flow at step 0: vanishing gradients in unused %(0%)", text)
  end)

  it("prints the full report with verbose = true", function()
    local _, _, text = fit({verbose = true, every_n_steps = 4})
    assert.matches("parameter%s+shape%s+grad norm", text)
    assert.matches("unused%s+2%s+0.0000e%+00.-VANISHING", text)
  end)

  it("checks its options", function()
    assert.matches("every_n_steps must be an integer >= 1, got 0", H.error_of(C.GradientFlowMonitor, {every_n_steps = 0}))
  end)
end)
