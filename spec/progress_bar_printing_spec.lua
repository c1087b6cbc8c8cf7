-- Printing never garbles the progress bar: module:print, trainer:print, L.print, the debug report and
-- warnings are written above the live bar (its lines cleared, the text written, the bar drawn again),
-- and every bar line, the end-of-epoch one too, is cut to the terminal's width. Checked on the screen
-- a terminal would show (spec/terminal_screen.lua); examples_terminal_spec.lua checks a real one.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local screen_of = require("terminal_screen").screen

local COLUMNS = 72
local BATCHES = S.regression_batches(6, 4, 3, 1)

local function fit(dir, methods, callbacks, epochs)
  local model = S.Regression{methods = methods}(3)
  local cbs = {L.callbacks.ProgressBar{terminal = true, columns = COLUMNS, refresh_rate = 1}}
  for _, cb in ipairs(callbacks or {}) do cbs[#cbs + 1] = cb end
  local trainer = L.Trainer(S.quiet(dir, {max_epochs = epochs or 2, callbacks = cbs, num_sanity_val_steps = 1,
    logger = S.MemoryLogger()}))
  local text = output.capture(function()
    trainer:fit(model, S.Loader({BATCHES[1], BATCHES[2], BATCHES[3], BATCHES[4]}), S.Loader({BATCHES[5], BATCHES[6]}))
    trainer:print("Training finished: the end-of-run summary")
  end)
  return screen_of(text, COLUMNS), text
end

local BAR = {"^Epoch %d+: ", "^Validation: ", "^Sanity Checking: "}
local function is_bar(line)
  for _, p in ipairs(BAR) do if line:match(p) then return true end end
  return false
end

describe("Printing while the progress bar runs", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("goes above the bar, whole lines, from the module, the trainer, user code and callbacks", function()
    local methods = {
      training_step = function(self, batch, i)
        if i == 2 then self:print("module:print in training_step, epoch " .. self.trainer.current_epoch) end
        return S.Regression{}.training_step(self, batch, i)
      end,
      validation_step = function(self, batch, i)
        if not self.trainer.sanity_checking and i == 1 then L.print("L.print in validation_step") end
        return S.Regression{}.validation_step(self, batch, i)
      end,
    }
    local cb = {on_train_batch_end = function(_, trainer, _, _, _, i)
      if i == 3 then trainer:print("trainer:print from a callback") end
    end}
    local screen = screen_of(select(2, fit(dir, methods, {cb, L.callbacks.GradientFlowMonitor{every_n_steps = 3, verbose = true}})),
      COLUMNS)
    local text = table.concat(screen, "\n")
    local expected = {"module:print in training_step, epoch 0", "module:print in training_step, epoch 1",
      "L.print in validation_step", "trainer:print from a callback", "Training finished: the end-of-run summary"}
    for _, line in ipairs(expected) do
      local found = 0
      for _, l in ipairs(screen) do if l == line then found = found + 1 end end
      assert.is_true(found >= 1, ("%q is not a line of its own on the screen:\n%s"):format(line, text))
    end
    -- the bar keeps one line per epoch, and no line holds a bar and something else
    local epoch_lines = {}
    for _, line in ipairs(screen) do
      local bar_glyph = line:find("█", 1, true) or line:find("it/s", 1, true)
      if bar_glyph then assert.is_true(is_bar(line), ("a bar glued to other text: %q"):format(line)) end
      if is_bar(line) then   -- whole (up to its "]") or cut at the terminal's width, never wrapped
        assert.is_true(line:sub(-1) == "]" or utf8.len(line) >= COLUMNS - 3, line)   -- (trailing spaces dropped)
        assert.is_true(utf8.len(line) < COLUMNS, line)
      end
      local e = line:match("^Epoch (%d+): ")
      if e then epoch_lines[#epoch_lines + 1] = tonumber(e) end
    end
    assert.same({0, 1}, epoch_lines, text)
    assert.matches("\nparameter +shape +grad norm", text)   -- the gradient-flow report went above the bar too
  end)

  it("cuts the end-of-epoch line to the terminal's width like the live one", function()
    local methods = {training_step = function(self, batch, i)
      local out = S.Regression{}.training_step(self, batch, i)
      self:log("a_rather_long_metric_name_to_fill_the_line", 0.123456, {prog_bar = true})
      self:log("another_long_metric_name", 0.654321, {prog_bar = true})
      return out
    end}
    local screen, raw = fit(dir, methods, nil, 1)
    local last
    for _, line in ipairs(screen) do if line:match("^Epoch 0: ") then last = line end end
    assert.is_not_nil(last, table.concat(screen, "\n"))
    -- the line as written (the screen drops trailing spaces): cut to the width, less two columns
    local final = raw:match(".*\r(Epoch 0: 100%%[^\r\n\27]*)\27%[K\n")
    assert.equal(COLUMNS - 2, utf8.len(final))
    assert.equal((final:gsub("%s+$", "")), last)
    assert.is_nil(raw:find("a_rather_long_metric_name_to_fill_the_line=0.1235", 1, true))
  end)

  it("leaves the bar's last state on its own line before an error message", function()
    local methods = {training_step = function(self, batch, i)
      if i == 3 then error("broken batch") end
      return S.Regression{}.training_step(self, batch, i)
    end}
    local parts = {}
    local old = output.set(function(s) parts[#parts + 1] = s end)
    local trainer = L.Trainer(S.quiet(dir, {max_epochs = 1, num_sanity_val_steps = 0,
      callbacks = {L.callbacks.ProgressBar{terminal = true, columns = COLUMNS}}}))
    local ok, err = pcall(trainer.fit, trainer, S.Regression{methods = methods}(3), S.Loader({BATCHES[1], BATCHES[2],
      BATCHES[3], BATCHES[4]}))
    output.write(("Training failed: %s\n"):format(tostring(err):match("broken batch")))
    output.set(old)
    assert.is_false(ok)
    local screen = screen_of(table.concat(parts), COLUMNS)
    assert.matches("^Epoch 0: +%d+%%|", screen[#screen - 1], table.concat(screen, "\n"))
    assert.equal("Training failed: broken batch", screen[#screen])
  end)
end)
