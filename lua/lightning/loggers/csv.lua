--- CSVLogger: Lightning's, writing save_dir/name/version_N/metrics.csv and hparams.yaml.
--   local csv = L.loggers.CSVLogger{save_dir = "outputs/logs"}
--   csv:log_metrics({train_loss = 0.5, epoch = 0}, 10)
-- metrics.csv has the columns step, epoch (when logged), then the metric names in sorted order; a row
-- leaves the metrics it did not log empty. A metric name that appears later widens the table: the file
-- is rewritten with the union of the columns (what Lightning does). Rows are kept in memory and the whole
-- file is written atomically on save(), which runs every flush_logs_every_n_steps steps and in finalize.
-- Options: save_dir ("outputs/logs"), name ("lightning_logs"), version (next free version_N),
-- prefix (""), flush_logs_every_n_steps (100).
local L = require "lightning"
local class = require "lightning.class"
local Logger = require "lightning.loggers.logger"
local fsio = L.core.io

local CSVLogger = class("CSVLogger", Logger)

local OPTIONS = {
  save_dir = {"string", "outputs/logs"}, name = {"string", "lightning_logs"}, version = {"integer|string", nil},
  prefix = {"string", ""}, flush_logs_every_n_steps = {"integer", 100},
}

function CSVLogger:__init(opts, more)
  if type(opts) == "string" then
    more = Logger.merge({}, more or {})
    more.save_dir = opts
    opts = more
  end
  local o = Logger.check_options("CSVLogger", opts, OPTIONS)
  if o.flush_logs_every_n_steps < 1 then
    error("CSVLogger: option flush_logs_every_n_steps must be at least 1, got " .. o.flush_logs_every_n_steps, 2)
  end
  self:_init_dirs(o.save_dir, o.name, o.version)
  self.prefix = o.prefix
  self.flush_logs_every_n_steps = math.tointeger(o.flush_logs_every_n_steps)
  self.metrics_file_path = Logger.join(self.log_dir, "metrics.csv")
  self.hparams = {}
  self.rows = {}       -- {step = n, name = value, ...}
  self._columns = {}   -- metric names seen (without step and epoch)
  self._dirty = false
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
  self._dirty = true
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

--- The text of metrics.csv.
function CSVLogger:to_csv()
  local columns = self:columns()
  local lines = {}
  local header = {}
  for i, c in ipairs(columns) do header[i] = csv_field(c) end
  lines[1] = table.concat(header, ",")
  for _, row in ipairs(self.rows) do
    local cells = {}
    for i, c in ipairs(columns) do
      local v = row[c]
      cells[i] = v == nil and "" or Logger.format_number(v)
    end
    lines[#lines + 1] = table.concat(cells, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Writes metrics.csv (when metrics were logged) and hparams.yaml, each atomically.
function CSVLogger:save()
  if not self._dirty then return end
  fsio.mkdir(self.log_dir)
  if #self.rows > 0 then fsio.write_file(self.metrics_file_path, self:to_csv()) end
  Logger.save_hparams_yaml(self.log_dir, self.hparams)
  self._dirty = false
end

function CSVLogger:finalize(status)
  self:save()
end

function CSVLogger:__tostring()
  return ("CSVLogger(%s)"):format(self.log_dir)
end

return CSVLogger
