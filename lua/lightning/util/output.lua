--- Where everything the Trainer, its callbacks and the models print goes: one replaceable writer
-- (io.stdout by default), so that scripts can redirect it and specs can capture it.
--   local output = require "lightning.util.output"
--   output.print("text")                     -- like print, through the writer (also L.print)
--   local text = output.capture(function() trainer:fit(model, dm) end)
-- On a terminal the progress bar keeps a live region at the bottom: lines redrawn in place
-- (output.set_live, keep_live, clear_live). output.print writes above it, as tqdm.write does:
-- the region is cleared, the text written, the region drawn again; so printing never garbles a bar.
-- (Lua's own print and io.write know nothing of it: use output.print, L.print or module:print while
-- a bar runs.)
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

-- The live region: its lines (each narrower than the terminal, so none wraps) and how many of them
-- are on screen; the cursor is at the end of the last.
local live, shown = {}, 0

-- Erases the region's lines from the screen, leaving the cursor at the start of its first line.
local function erase_region()
  if shown == 0 then return "" end
  return "\r\27[K" .. ("\27[1A\r\27[K"):rep(shown - 1)
end

local function draw_region()
  shown = #live
  return table.concat(live, "\n\r")   -- (\r: each line from the first column, whatever the tty does with \n)
end

--- Writes its arguments separated by tabs and ended by a newline, as print does; above the live
-- region when there is one.
function output.print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  local text = table.concat(parts, "\t") .. "\n"
  if shown > 0 then
    writer(erase_region() .. text .. draw_region())
    output.flush()   -- (the text ends with the region's last line, no newline)
  else
    writer(text)
  end
end

--- Replaces the live region's lines (a list of strings, each narrower than the terminal) and draws
-- them in place of the old ones.
function output.set_live(lines)
  local one_over_one = shown == 1 and #lines == 1
  local erase = (one_over_one or shown == 0) and "\r" or erase_region()
  live = {}
  for i, line in ipairs(lines) do live[i] = line end
  -- one line over one line needs no erasing: it is overwritten, and the rest of it cleared
  writer(erase .. draw_region() .. (one_over_one and "\27[K" or ""))
  output.flush()
end

--- The region's lines stay on screen as ordinary lines; the region is empty again.
function output.keep_live()
  local was = shown
  live, shown = {}, 0
  if was > 0 then writer("\n") end
end

--- Erases the region from the screen; it is empty again.
function output.clear_live()
  local text = erase_region()
  live, shown = {}, 0
  if text ~= "" then
    writer(text)
    output.flush()
  end
end

--- The live region's lines (a copy).
function output.live_lines()
  local copy = {}
  for i, line in ipairs(live) do copy[i] = line end
  return copy
end

--- Replaces the writer (a function taking a string); nil restores io.stdout. Returns the old one.
function output.set(fn)
  assert(fn == nil or type(fn) == "function", "output.set: expected a function or nil")
  local old = writer
  output.keep_live()   -- (the region belongs to the old writer's screen)
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
