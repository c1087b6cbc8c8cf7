--- L.plot.line_chart{...}: x/y series as lines (and markers) with axes, nice ticks, grid, labels, a
-- title and a legend.
--   L.plot.line_chart{
--     series = {{x = {1, 2, 3}, y = {0.9, 0.6, 0.5}, label = "train"},
--               {y = {1.0, 0.8, 0.7}, label = "validation", color = "tab:orange", dash = true, marker = "square"}},
--     title = "Loss", xlabel = "epoch", ylabel = "loss", path = "loss.png"}
-- Series: y (required; NaN or +-inf leave a gap; a point between gaps is a dot), x (default 1..#y; same length as y, finite), label
-- (shown in the legend), color (the palette in order), width (2), dash (true or {on, off}), marker
-- ("circle", "square", "diamond", "triangle"), marker_size (7).
-- Options: width (800), height (500), title, xlabel, ylabel, xlim / ylim ({lo, hi}; default the data
-- with 5 % margins), x_integer / y_integer (ticks on whole numbers only), legend ("best" (default), a
-- place such as "upper left", or false), font_scale (2), path (also saves the PNG), and canvas + rect
-- ({x, y, w, h}) to draw into part of an existing Canvas. Returns the canvas.
local U = require "lightning.util.checks"
local Canvas = require "lightning.plot.canvas"
local color = require "lightning.plot.color"
local ticks = require "lightning.plot.ticks"
local Axes = require "lightning.plot.axes"
local save = require "lightning.plot.save"

local OPTIONS = {"series", "width", "height", "title", "xlabel", "ylabel", "xlim", "ylim", "x_integer", "y_integer",
  "legend", "font_scale", "path", "canvas", "rect"}
local SERIES_OPTIONS = {x = true, y = true, label = true, color = true, width = true, dash = true, marker = true,
  marker_size = true}

local function is_finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- Pixel coordinates of data far outside the limits, brought within +-1e7 (off the canvas either way;
-- the drawing code refuses coordinates beyond 1e9). Lines towards them keep their direction to well
-- under a pixel.
local function near(v)
  if v ~= v then return v end
  return math.max(-1e7, math.min(1e7, v))
end

local function optional_string(fname, what, v)
  if v ~= nil and type(v) ~= "string" then U.fail(fname, "%s must be a string, got %s", what, U.describe(v)) end
  return v
end

local function check_limits(fname, what, v)
  if v == nil then return nil end
  if type(v) ~= "table" or type(v[1]) ~= "number" or type(v[2]) ~= "number" or not is_finite(v[1])
    or not is_finite(v[2]) or not (v[1] < v[2]) then
    U.fail(fname, "%s must be {lo, hi} with finite lo < hi, got %s", what, U.describe(v))
  end
  return {v[1], v[2]}
end

-- A series checked and completed: x and y lists of numbers (y with NaN for gaps), colour as rgba.
local function check_series(fname, s, i)
  local name = ("series %d"):format(i)
  if type(s) ~= "table" then U.fail(fname, "%s must be a table {x = ..., y = ...}, got %s", name, U.describe(s)) end
  if type(s.label) == "string" then name = ("%s (%s)"):format(name, s.label) end
  for k in pairs(s) do
    if not SERIES_OPTIONS[k] then U.fail(fname, "%s: unknown field '%s' (expected x, y, label, color, width, dash, marker, marker_size)", name, tostring(k)) end
  end
  if type(s.y) ~= "table" then U.fail(fname, "%s: y must be a list of numbers, got %s", name, U.describe(s.y)) end
  local n = #s.y
  if n == 0 then U.fail(fname, "%s: y is empty", name) end
  local ys = {}
  for j = 1, n do
    local v = s.y[j]
    if type(v) ~= "number" then U.fail(fname, "%s: y[%d] must be a number, got %s", name, j, U.describe(v)) end
    ys[j] = is_finite(v) and v or 0 / 0
  end
  local xs = {}
  if s.x == nil then
    for j = 1, n do xs[j] = j end
  else
    if type(s.x) ~= "table" then U.fail(fname, "%s: x must be a list of numbers, got %s", name, U.describe(s.x)) end
    if #s.x ~= n then U.fail(fname, "%s: x has %d values but y has %d", name, #s.x, n) end
    for j = 1, n do
      local v = s.x[j]
      if type(v) ~= "number" or not is_finite(v) then U.fail(fname, "%s: x[%d] must be a finite number, got %s", name, j, U.describe(v)) end
      xs[j] = v
    end
  end
  local label = optional_string(fname, name .. ": label", s.label)
  local rgba = color.parse(fname, name .. ": color", s.color or color.palette[(i - 1) % #color.palette + 1])
  local width = s.width == nil and 2 or s.width
  if type(width) ~= "number" or not (width > 0 and width <= 100) then
    U.fail(fname, "%s: width must be a number in (0, 100], got %s", name, U.describe(width))
  end
  if s.marker ~= nil and not Canvas.MARKERS[s.marker] then
    U.fail(fname, "%s: marker must be \"circle\", \"square\", \"diamond\" or \"triangle\", got %s", name, U.describe(s.marker))
  end
  return {x = xs, y = ys, label = label, color = rgba, width = width, dash = s.dash, marker = s.marker,
    marker_size = s.marker_size or 7}
end

-- Data limits of the checked series over finite values: xlo, xhi, ylo, yhi (nil when there are none).
local function extents(series)
  local xlo, xhi, ylo, yhi
  for _, s in ipairs(series) do
    for j = 1, #s.x do
      local x, y = s.x[j], s.y[j]
      xlo, xhi = math.min(xlo or x, x), math.max(xhi or x, x)
      if y == y then ylo, yhi = math.min(ylo or y, y), math.max(yhi or y, y) end
    end
  end
  return xlo, xhi, ylo, yhi
end

local function check_rect(fname, canvas, rect)
  if rect == nil then return {x = 1, y = 1, w = canvas.width, h = canvas.height} end
  if type(rect) ~= "table" or #rect ~= 4 then U.fail(fname, "rect must be {x, y, w, h}, got %s", U.describe(rect)) end
  for i = 1, 4 do U.number(fname, ("rect[%d]"):format(i), rect[i]) end
  if rect[3] < 120 or rect[4] < 100 then
    U.fail(fname, "rect is %gx%g pixels; a chart needs at least 120x100", rect[3], rect[4])
  end
  return {x = rect[1], y = rect[2], w = rect[3], h = rect[4]}
end

local function check_size(fname, what, v, default)
  if v == nil then return default end
  local n = U.positive_int(fname, what, v)
  if n < 120 or n > Canvas.MAX_SIZE then U.fail(fname, "%s must be in 120..%d pixels, got %d", what, Canvas.MAX_SIZE, n) end
  return n
end

local function line_chart(opts, fname)
  fname = fname or "lightning.plot.line_chart"
  if type(opts) ~= "table" then U.fail(fname, "expected a table of options {series = ..., ...}, got %s", U.describe(opts)) end
  U.check_options(fname, opts, OPTIONS)
  if type(opts.series) ~= "table" or #opts.series == 0 then
    U.fail(fname, "series must be a non-empty list of {x = ..., y = ...} tables, got %s", U.describe(opts.series))
  end
  local series = {}
  for i, s in ipairs(opts.series) do series[i] = check_series(fname, s, i) end
  local legend = opts.legend == nil and "best" or opts.legend
  if legend ~= false and legend ~= "best" and not Axes.is_legend_place(legend) then
    U.fail(fname, "legend must be false, \"best\" or a place such as \"upper right\", \"lower left\" or \"center\", got %s", U.describe(legend))
  end
  local font_scale = opts.font_scale == nil and 2 or U.positive_int(fname, "font_scale", opts.font_scale)
  if font_scale > 4 then U.fail(fname, "font_scale must be 1 to 4, got %d", font_scale) end
  if opts.path ~= nil and type(opts.path) ~= "string" then U.fail(fname, "path must be a string, got %s", U.describe(opts.path)) end

  local canvas = opts.canvas
  if canvas ~= nil and not Canvas.is_canvas(canvas) then U.fail(fname, "canvas must be an L.plot.Canvas, got %s", U.describe(canvas)) end
  canvas = canvas or Canvas(check_size(fname, "width", opts.width, 800), check_size(fname, "height", opts.height, 500))
  local rect = check_rect(fname, canvas, opts.rect)

  local xlo, xhi, ylo, yhi = extents(series)
  local xlim = check_limits(fname, "xlim", opts.xlim)
  local ylim = check_limits(fname, "ylim", opts.ylim)
  if not xlim then
    local lo, hi = ticks.limits(xlo, xhi)
    xlim = {lo, hi}
  end
  if not ylim then
    local lo, hi = ticks.limits(ylo, yhi)
    ylim = {lo, hi}
  end

  local ax = Axes.new(canvas, {x = rect.x, y = rect.y, w = rect.w, h = rect.h, xlim = xlim, ylim = ylim,
    title = optional_string(fname, "title", opts.title), xlabel = optional_string(fname, "xlabel", opts.xlabel),
    ylabel = optional_string(fname, "ylabel", opts.ylabel), x_integer = opts.x_integer == true,
    y_integer = opts.y_integer == true, font_scale = font_scale})
  ax:draw()

  local paths, entries = {}, {}
  for _, s in ipairs(series) do
    local xs, ys, cxs, cys = {}, {}, {}, {}
    for j = 1, #s.x do
      local px, py = ax:to_plot(s.x[j], s.y[j])
      xs[j], ys[j] = near(px), near(py)
      local cx, cy = ax:to_canvas(s.x[j], s.y[j])
      cxs[j], cys[j] = near(cx), near(cy)
    end
    if ax.plot then
      ax.plot:polyline(xs, ys, {color = s.color, width = s.width, dash = s.dash})
      for j = 1, #xs do
        if ys[j] == ys[j] then
          if s.marker then
            ax.plot:marker(xs[j], ys[j], {shape = s.marker, size = s.marker_size, color = s.color})
          elseif not (ys[j - 1] and ys[j - 1] == ys[j - 1]) and not (ys[j + 1] and ys[j + 1] == ys[j + 1]) then
            ax.plot:circle(xs[j], ys[j], math.max(1.5, s.width), s.color)  -- a point between gaps: a dot
          end
        end
      end
    end
    paths[#paths + 1] = {cxs, cys}
    if s.label then
      entries[#entries + 1] = {label = s.label, color = s.color, width = s.width, dash = s.dash, marker = s.marker,
        marker_size = s.marker_size}
    end
  end
  if legend then ax:legend(entries, legend, paths) end
  if opts.path then save(canvas, opts.path, fname) end
  return canvas, ax
end

return line_chart
