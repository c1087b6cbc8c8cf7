--- lightning.loggers: TensorBoardLogger, CSVLogger, and LoggerCollection to use several at once.
--   logger = {L.loggers.TensorBoardLogger{...}, L.loggers.CSVLogger{...}}   -- a list works with the Trainer
--   logger = L.loggers.LoggerCollection{tb, csv}                             -- or one object that forwards
-- tfevents (read TensorBoard event files back in Lua) and Logger (the base class) are here too.
local class = require "lightning.class"
local Logger = require "lightning.loggers.logger"
local options = require "lightning.util.options"

local M = {
  Logger = Logger,
  TensorBoardLogger = require "lightning.loggers.tensorboard",
  CSVLogger = require "lightning.loggers.csv",
  tfevents = require "lightning.loggers.tfevents",
}

--- Several loggers behind one: every call goes to each, in order. name and version join the loggers'
-- with "_", each distinct value once ("tb_csv", "0_1"; "lightning_logs", "0" for two loggers that agree), as
-- Lightning 1.x's LoggerCollection does; log_dir and save_dir are the first logger's.
local LoggerCollection = class("LoggerCollection", Logger)
M.LoggerCollection = LoggerCollection

function LoggerCollection:__init(list)
  if type(list) ~= "table" or getmetatable(list) ~= nil then
    options.fail("LoggerCollection", "expected a list of loggers, got %s", class.name_of(list))
  end
  self.loggers = {}
  for i, lg in ipairs(list) do
    if type(lg) ~= "table" or type(lg.log_metrics) ~= "function" then
      options.fail("LoggerCollection", "logger %d must have log_metrics(metrics, step), got %s", i, class.name_of(lg))
    end
    self.loggers[i] = lg
  end
  local function joined(field)   -- (Python's "_".join(dict.fromkeys(...)))
    local parts, seen = {}, {}
    for _, lg in ipairs(self.loggers) do
      local v = tostring(lg[field])
      if not seen[v] then seen[v], parts[#parts + 1] = true, v end
    end
    return table.concat(parts, "_")
  end
  self.name, self.version = joined("name"), joined("version")
  local first = self.loggers[1] or {}
  self.save_dir, self.root_dir, self.log_dir = first.save_dir, first.root_dir, first.log_dir
end

for _, method in ipairs({"log_metrics", "log_hyperparams", "log_graph", "save", "flush", "finalize",
                         "after_save_checkpoint"}) do
  LoggerCollection[method] = function(self, ...)
    for _, lg in ipairs(self.loggers) do
      if type(lg[method]) == "function" then lg[method](lg, ...) end
    end
  end
end

function LoggerCollection:__len() return #self.loggers end

--- The loggers behind a Trainer's `logger` option: nil/false give none, a logger itself, a collection
-- its members, a list the list.
function M.as_list(logger)
  if not logger then return {} end
  if class.is_instance(logger, LoggerCollection) then return {table.unpack(logger.loggers)} end
  if type(logger.log_metrics) == "function" then return {logger} end
  return {table.unpack(logger)}
end

return M
