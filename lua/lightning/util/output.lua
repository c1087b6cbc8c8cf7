--- Where everything the Trainer, its callbacks and the models print goes: one replaceable writer
-- (io.stdout by default), so that scripts can redirect it and specs can capture it.
--   local output = require "lightning.util.output"
--   output.print("text")                     -- like print, through the writer
--   local text = output.capture(function() trainer:fit(model, dm) end)
local core = require "lightning.core"

local output = {}

-- Complete lines are flushed at once: in a log file (block-buffered stdout) progress would otherwise
-- appear only when kilobytes have piled up. Output is a few lines per epoch, so this costs nothing.
local function stdout_writer(s)
  io.stdout:write(s)
  if s:sub(-1) == "\n" then io.stdout:flush() end
end

local writer = stdout_writer

--- Writes a string as is (no newline added).
function output.write(s)
  writer(s)
end

--- Writes its arguments separated by tabs and ended by a newline, as print does.
function output.print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  writer(table.concat(parts, "\t") .. "\n")
end

--- Replaces the writer (a function taking a string); nil restores io.stdout. Returns the old one.
function output.set(fn)
  assert(fn == nil or type(fn) == "function", "output.set: expected a function or nil")
  local old = writer
  writer = fn or stdout_writer
  return old
end

function output.flush()
  if writer == stdout_writer then io.stdout:flush() end
end

--- Runs fn(...) with the output collected; returns the text, then fn's results. The writer is
-- restored also when fn fails (the error is raised again).
function output.capture(fn, ...)
  local parts = {}
  local old = output.set(function(s) parts[#parts + 1] = s end)
  local results = table.pack(pcall(fn, ...))
  output.set(old)
  if not results[1] then error(results[2], 0) end
  return table.concat(parts), table.unpack(results, 2, results.n)
end

--- True when the output goes to a terminal that can redraw a line in place.
function output.is_terminal()
  if writer ~= stdout_writer then return false end
  local term = os.getenv("TERM")
  if term == nil or term == "" or term == "dumb" then return false end
  return core.metrics.isatty(1)
end

return output
