--- ProgressBar: training progress on the Trainer's output.
-- On a terminal: a bar redrawn in place (percentage, batches, elapsed<remaining, it/s, and the metrics
-- logged with prog_bar = true), a transient line below it during validation, and one line kept per
-- epoch, each cut to the terminal's width. The bars are the output's live region
-- (lightning.util.output): whatever goes through output.print (module:print, trainer:print, L.print,
-- the debug report, warnings) is written above them, never glued to them.
-- Elsewhere (a log file, a pipe, captured output): a line every `log_every_n_steps` batches (default:
-- the Trainer's) and one summary line per epoch with the epoch's metrics.
--   L.callbacks.ProgressBar{refresh_rate = 1, log_every_n_steps = nil, terminal = nil (detect),
--                           width = 25 (the bar's cells), columns = nil (the terminal's width: detect)}
local L = require "lightning"
local class = require "lightning.class"
local Callback = require "lightning.callbacks.callback"
local output = require "lightning.util.output"
local options = require "lightning.util.options"

local ProgressBar = class("ProgressBar", Callback)
-- Its per-epoch line comes after the module's on_train_epoch_end, so it shows what that logged.
ProgressBar.is_monitoring_callback = true

function ProgressBar:__init(opts)
  local o = options.check("ProgressBar", opts, {
    refresh_rate = {kind = "integer", min = 1, default = 1},
    log_every_n_steps = {kind = "integer", min = 1},
    terminal = {kind = "boolean"},
    width = {kind = "integer", min = 1, default = 25},
    columns = {kind = "integer", min = 2},   -- the terminal's width (detected when nil)
  })
  for k, v in pairs(o) do self[k] = v end
end

-- Only global rank 0 draws (trainer.is_global_zero, known at setup); other processes stay silent.
function ProgressBar:setup(trainer, module, stage)
  self._silent = not trainer.is_global_zero
end

function ProgressBar:_print(s) if not self._silent then output.print(s) end end

local function clock(seconds)
  if seconds ~= seconds or seconds == math.huge then return "?" end
  seconds = math.floor(seconds + 0.5)
  local h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s) end
  return ("%02d:%02d"):format(m, s)
end

local function rate_text(count, elapsed)
  if count == 0 or elapsed <= 0 then return "?it/s" end
  local rate = count / elapsed
  if rate >= 1 then return ("%.2fit/s"):format(rate) end
  return ("%.2fs/it"):format(1 / rate)
end

local function number_text(v)
  if math.type(v) == "integer" then return tostring(v) end
  return ("%.4g"):format(v)
end

--- "v_num=0, train_loss=0.512, val_acc=0.81": the logger's version and the prog_bar metrics.
function ProgressBar:metrics_text(trainer)
  local parts = {}
  local version = trainer.logger and trainer.logger.version
  if version ~= nil then parts[1] = "v_num=" .. tostring(version) end
  local names = {}
  for name in pairs(trainer.progress_bar_metrics) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do parts[#parts + 1] = name .. "=" .. number_text(trainer.progress_bar_metrics[name]) end
  return table.concat(parts, ", ")
end

local PARTIAL = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}

local function bar(fraction, width)
  local eighths = math.floor(math.max(0, math.min(1, fraction)) * width * 8)
  local full = eighths // 8
  local text = string.rep("█", full)
  if full < width then
    local partial = PARTIAL[eighths % 8 + 1]
    text = text .. partial .. string.rep(" ", width - full - (partial == "" and 0 or 1))
  end
  return text
end

function ProgressBar:_is_terminal()
  if self.terminal ~= nil then return self.terminal end
  return output.is_terminal()
end

-- One progress line. On a terminal:
--   "Epoch 0:  45%|███████████▎             | 45/100 [00:12<00:15, 3.61it/s, v_num=0, loss=1.2]"
-- in a log (no bar): "Epoch 0:  45% 45/100 [00:12<00:15, 3.61it/s, v_num=0, loss=1.2]"
function ProgressBar:_line(desc, count, total, started, metrics)
  local elapsed = L.now() - started
  local remaining = count > 0 and elapsed / count * (total - count) or math.huge
  local fraction = total > 0 and count / total or 1
  local shape = self._tty and ("|" .. bar(fraction, self.width) .. "|") or ""
  local text = ("%s: %3d%%%s %d/%d [%s<%s, %s"):format(desc, math.floor(fraction * 100), shape, count, total,
    clock(elapsed), clock(remaining), rate_text(count, elapsed))
  if metrics and metrics ~= "" then text = text .. ", " .. metrics end
  return text .. "]"
end

-- The terminal's width: a line longer than that would wrap, and "\r" could not redraw it.
local function terminal_width()
  local columns = tonumber(os.getenv("COLUMNS") or "")
  if columns then return columns end
  if not L.core.metrics.isatty(1) then return math.huge end  -- a terminal by request (terminal = true)
  local p = io.popen("stty size 2>/dev/null < /dev/tty")
  local size = p and p:read("l")
  if p then p:close() end
  return tonumber(size and size:match("%d+%s+(%d+)")) or 100
end

-- The first `width` characters of text.
local function truncate(text, width)
  if width == math.huge or (utf8.len(text) or #text) <= width then return text end
  return text:sub(1, utf8.offset(text, width + 1) - 1)
end

-- A line as the terminal shows it: cut to its width, two columns short, so that it never wraps, even
-- when the terminal echoes Ctrl-C's "^C" after it.
function ProgressBar:_fit(text)
  self._width = self._width or self.columns or terminal_width()
  return truncate(text, self._width - 2)
end

-- The live region: the training bar (while an epoch runs) and the evaluation line below it.
function ProgressBar:_show()
  if self._silent then return end
  local lines = {}
  if self._train_text then lines[#lines + 1] = self._train_text end
  if self._eval_text then lines[#lines + 1] = self._eval_text end
  if #lines == 0 then output.clear_live() else output.set_live(lines) end
end

-- The region's last state stays on screen as ordinary lines.
function ProgressBar:_keep()
  self._train_text, self._eval_text = nil, nil
  if not self._silent then output.keep_live() end
end

-- A redraw at most every refresh_rate batches and ten times a second, and always at the end.
function ProgressBar:_due(count, total)
  if count == total then return true end
  if count % self.refresh_rate ~= 0 then return false end
  local now = L.now()
  if self._last_draw and now - self._last_draw < 0.1 then return false end
  self._last_draw = now
  return true
end

function ProgressBar:_epoch_desc(trainer)
  return ("Epoch %d"):format(trainer.current_epoch)
end

function ProgressBar:on_train_start(trainer, module)
  self._tty = self:_is_terminal()
  self._log_every = self.log_every_n_steps or trainer.log_every_n_steps
end

function ProgressBar:on_train_epoch_start(trainer, module)
  self._started = L.now()
  self._count = 0
  self._last_draw = nil
end

function ProgressBar:on_train_batch_end(trainer, module, outputs, batch, batch_idx)
  self._count = batch_idx
  local total = trainer.num_training_batches
  if self._tty then
    if self:_due(batch_idx, total) then
      self._train_text = self:_fit(self:_line(self:_epoch_desc(trainer), batch_idx, total, self._started,
        self:metrics_text(trainer)))
      self:_show()
    end
  elseif batch_idx % self._log_every == 0 and batch_idx < total then
    self:_print(self:_line(self:_epoch_desc(trainer), batch_idx, total, self._started, self:metrics_text(trainer)))
  end
end

-- Validation, sanity check, test and predict share one transient line on a terminal.
local function eval_desc(trainer)
  if trainer.sanity_checking then return "Sanity Checking" end
  if trainer.testing then return "Testing" end
  if trainer.predicting then return "Predicting" end
  return "Validation"
end

local EVAL_TOTAL = {Validation = "num_val_batches", ["Sanity Checking"] = "num_val_batches", Testing = "num_test_batches",
  Predicting = "num_predict_batches"}

local function eval_start(self, trainer)
  self._eval_started = L.now()
  self._eval_last_draw = nil
  self._eval_text = nil
  if not self._tty then self._tty = self:_is_terminal() end
end

local function eval_batch_end(self, trainer, batch_idx)
  if not self._tty then return end
  local desc = eval_desc(trainer)
  local total = trainer[EVAL_TOTAL[desc]] or 0
  if trainer.sanity_checking then total = math.min(total, trainer.num_sanity_val_steps == -1 and total or trainer.num_sanity_val_steps) end
  local now = L.now()
  if batch_idx == total or not self._eval_last_draw or now - self._eval_last_draw >= 0.1 then
    self._eval_last_draw = now
    self._eval_text = self:_fit(self:_line(desc, batch_idx, total, self._eval_started))
    self:_show()
  end
end

-- keep: the line stays (test); otherwise it goes and the training bar stays alone.
local function eval_end(self, trainer, keep)
  local desc = eval_desc(trainer)
  if self._tty then
    if keep and self._eval_text then
      self:_show()
      self:_keep()
    elseif self._eval_text then
      self._eval_text = nil
      self:_show()
    end
  elseif keep then
    local n = trainer[EVAL_TOTAL[desc]] or 0
    self:_print(("%s: %d batch%s in %s"):format(desc, n, n == 1 and "" or "es", clock(L.now() - (self._eval_started or L.now()))))
  end
end

function ProgressBar:on_validation_start(trainer, module) eval_start(self, trainer) end
function ProgressBar:on_validation_batch_end(trainer, module, outputs, batch, batch_idx) eval_batch_end(self, trainer, batch_idx) end
function ProgressBar:on_validation_end(trainer, module) eval_end(self, trainer, false) end
function ProgressBar:on_test_start(trainer, module) eval_start(self, trainer) end
function ProgressBar:on_test_batch_end(trainer, module, outputs, batch, batch_idx) eval_batch_end(self, trainer, batch_idx) end
function ProgressBar:on_test_end(trainer, module) eval_end(self, trainer, true) end
function ProgressBar:on_predict_start(trainer, module) eval_start(self, trainer) end
function ProgressBar:on_predict_batch_end(trainer, module, outputs, batch, batch_idx) eval_batch_end(self, trainer, batch_idx) end
-- (predictions are the caller's to print: a terminal's bar goes when they are done, a log gets no line)
function ProgressBar:on_predict_end(trainer, module) eval_end(self, trainer, false) end

--- The line kept for each epoch: the full bar with the epoch's metrics (validation included), cut to
-- the terminal's width like the live one.
function ProgressBar:on_train_epoch_end(trainer, module)
  local total = trainer.num_training_batches
  if self._tty then
    self._train_text = self:_fit(self:_line(self:_epoch_desc(trainer), self._count or 0, total, self._started or L.now(),
      self:metrics_text(trainer)))
    self._eval_text = nil
    self:_show()
    self:_keep()
  else
    local elapsed = L.now() - (self._started or L.now())
    local summary = ("%s: %d/%d batches in %s (%s)"):format(self:_epoch_desc(trainer), self._count or 0, total,
      clock(elapsed), rate_text(self._count or 0, elapsed))
    local metrics = self:metrics_text(trainer)
    self:_print(metrics ~= "" and (summary .. ", " .. metrics) or summary)
  end
end

--- Leaves what the bars show on screen (after an error, so that the message starts on its own line).
function ProgressBar:abort()
  self:_keep()
end

return ProgressBar
