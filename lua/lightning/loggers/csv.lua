--- CSVLogger: Lightning's, writing save_dir/name/version_N/metrics.csv and hparams.yaml.
--   local csv = L.loggers.CSVLogger{save_dir = "outputs/logs"}
--   csv:log_metrics({train_loss = 0.5, epoch = 0}, 10)
-- metrics.csv has the columns step, epoch (when logged), then the metric names in sorted order; a row
-- leaves the metrics it did not log empty. A metric name that appears later widens the table: the file
-- is rewritten (atomically) with the union of the columns, as Lightning does; otherwise save() appends the
-- new rows. save() runs every flush_logs_every_n_steps steps and in finalize. Rows stay in memory for the
-- rewrites.
-- Options: save_dir ("outputs/logs"), name ("lightning_logs"), version (next free version_N),
-- prefix (""), flush_logs_every_n_steps (100).
local L = require "lightning"
local class = require "lightning.class"
local Logger = require "lightning.loggers.logger"
local options = require "lightning.util.options"
local fsio = L.core.io

local CSVLogger = class("CSVLogger", Logger)

local OPTIONS = Logger.common_options{name = "lightning_logs"}
OPTIONS.flush_logs_every_n_steps = {kind = "integer", min = 1, default = 100}

function CSVLogger:__init(opts, more)
  if type(opts) == "string" then
    more = Logger.merge({}, more or {})
    more.save_dir = opts
    opts = more
  end
  local o = options.check("CSVLogger", opts, OPTIONS)
  self:_init_dirs(o.save_dir, o.name, o.version)
  self.prefix = o.prefix
  self.flush_logs_every_n_steps = math.tointeger(o.flush_logs_every_n_steps)
  self.metrics_file_path = Logger.join(self.log_dir, "metrics.csv")
  self.hparams = {}
  self.rows = {}       -- {step = n, name = value, ...}
  self._columns = {}   -- metric names seen (without step and epoch)
  self._dirty = false
  self._written_rows = 0       -- rows already in metrics.csv
  self._written_layout = nil   -- the columns they were written with
  self._hparams_changed = true -- hparams.yaml is written once even when empty, as Lightning does
end

function CSVLogger:log_metrics(metrics, step)
  local fname = "CSVLogger:log_metrics"
  local values, names = Logger.clean_metrics(fname, metrics, self.prefix)
  step = Logger.check_step(fname, step, #self.rows)
  for _, name in ipairs(names) do
    if name ~= "step" and name ~= "epoch" then self._columns[name] = true end
  end
  values.step = step
  self.rows[#self.rows + 1] = values
  self._dirty = true
  if (step + 1) % self.flush_logs_every_n_steps == 0 then self:save() end
end

function CSVLogger:log_hyperparams(params)
  if type(params) ~= "table" or L.is_tensor(params) then
    error(("CSVLogger:log_hyperparams: params must be a table, got %s"):format(L.is_tensor(params) and "tensor" or type(params)), 2)
  end
  Logger.merge(self.hparams, Logger.sanitize_params(params))
  self._dirty, self._hparams_changed = true, true
end

--- The column names in file order.
function CSVLogger:columns()
  local names = {}
  for name in pairs(self._columns) do names[#names + 1] = name end
  table.sort(names)
  local has_epoch = false
  for _, row in ipairs(self.rows) do
    if row.epoch ~= nil then has_epoch = true break end
  end
  if has_epoch then table.insert(names, 1, "epoch") end
  table.insert(names, 1, "step")
  return names
end

-- RFC 4180 quoting, as Python's csv module does (QUOTE_MINIMAL).
local function csv_field(s)
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- The lines of rows first..last under these columns.
local function csv_lines(rows, columns, first, last, lines)
  for r = first, last do
    local row, cells = rows[r], {}
    for i, c in ipairs(columns) do
      local v = row[c]
      cells[i] = v == nil and "" or Logger.format_number(v)
    end
    lines[#lines + 1] = table.concat(cells, ",")
  end
  return lines
end

--- The text of metrics.csv.
function CSVLogger:to_csv()
  local columns = self:columns()
  local header = {}
  for i, c in ipairs(columns) do header[i] = csv_field(c) end
  return table.concat(csv_lines(self.rows, columns, 1, #self.rows, {table.concat(header, ",")}), "\n") .. "\n"
end

--- Writes what is new: rows are appended to metrics.csv while the columns stay the same; new columns
-- rewrite the whole file atomically. hparams.yaml is rewritten atomically when hparams changed.
function CSVLogger:save()
  if not self._dirty then return end
  fsio.mkdir(self.log_dir)
  if #self.rows > self._written_rows then
    local columns = self:columns()
    local layout = table.concat(columns, "\0")
    if layout == self._written_layout and fsio.file_type(self.metrics_file_path) == "file" then
      local lines = csv_lines(self.rows, columns, self._written_rows + 1, #self.rows, {})
      fsio.append_file(self.metrics_file_path, table.concat(lines, "\n") .. "\n")
    else
      fsio.write_file(self.metrics_file_path, self:to_csv())
    end
    self._written_rows, self._written_layout = #self.rows, layout
  end
  if self._hparams_changed then
    Logger.save_hparams_yaml(self.log_dir, self.hparams)
    self._hparams_changed = false
  end
  self._dirty = false
end

function CSVLogger:finalize(status)
  self:save()
end

function CSVLogger:__tostring()
  return ("CSVLogger(%s)"):format(self.log_dir)
end

return CSVLogger
