--- L.plot.Canvas: an RGB image to draw plots on, held in canvas.tensor, a (3, height, width) tensor in
-- [0, 1] (what L.data.write_png takes). Drawing is done in C (lightning.core.plot).
--   local c = L.plot.Canvas(640, 480)                 -- white; Canvas(w, h, {background = "#f0f0f0"})
--   c:rect(x, y, w, h, color)                         -- filled; c:frame(x, y, w, h, color) outlines
--   c:line(x1, y1, x2, y2, {color, width, dash})      -- dash = true or {on, off} in pixels
--   c:polyline(xs, ys, {color, width, dash})          -- NaN or nil in ys leaves a gap
--   c:polygon({x1, y1, x2, y2, ...}, color)           -- convex; c:circle(x, y, r, color)
--   c:marker(x, y, {shape = "circle", size = 7, color}) -- circle, square, diamond, triangle
--   c:text(x, y, "label", {color, scale = 2, align = "left", valign = "top", vertical = false})
--   c:text_size("label", scale[, vertical]) --> w, h  c:image(t, x, y[, w, h])   c:save(path)
-- Coordinates are pixels, 1-based, (1, 1) the top-left pixel's centre; shapes and lines are
-- anti-aliased; rect, frame, text and image positions are rounded to whole pixels. Colours: see
-- lightning.plot.color ("#rrggbb", names such as "black" or "tab:blue", {r, g, b[, a]}).
local L = require "lightning"
local class = require "lightning.class"
local U = require "lightning.util.checks"
local color = require "lightning.plot.color"
local save = require "lightning.plot.save"

local P = L.core.plot

local Canvas = class("Canvas")

Canvas.font = P.font
Canvas.MAX_SIZE = 32768

local function round(v) return math.floor(v + 0.5) end

local function finite(fname, what, v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    U.fail(fname, "%s must be a finite number, got %s", what, U.describe(v))
  end
  return v
end

local function options(fname, opts, allowed)
  return U.check_options(fname, opts, allowed)
end

function Canvas:__init(width, height, opts)
  local fname = "lightning.plot.Canvas"
  for what, v in pairs {width = width, height = height} do
    if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) or v < 1 or v > Canvas.MAX_SIZE then
      U.fail(fname, "%s must be an integer in 1..%d, got %s", what, Canvas.MAX_SIZE, U.describe(v))
    end
  end
  opts = options(fname, opts, {"background"})
  self.width, self.height = math.tointeger(width), math.tointeger(height)
  self.tensor = L.empty(3, self.height, self.width)
  self.background = color.parse(fname, "background", opts.background or "white")
  self:clear()
end

--- A canvas over an existing (3, H, W) tensor, or a rectangle of one (drawing changes the tensor).
function Canvas.wrap(t, background)
  if not (L.is_tensor(t) and t:dim() == 3 and t:size(1) == 3) then
    U.fail("lightning.plot.Canvas.wrap", "expected a (3, H, W) tensor, got %s",
      L.is_tensor(t) and tostring(t:size()) or U.describe(t))
  end
  local self = setmetatable({}, Canvas)
  self.tensor, self.width, self.height = t, t:size(3), t:size(2)
  self.background = background or {1, 1, 1, 1}
  return self
end

--- The rectangle of pixels x..x+w-1, y..y+h-1 (clipped to this canvas) as a canvas of its own that
-- shares the pixels: what is drawn into it stays inside it, in its own coordinates ((1, 1) is its
-- top-left pixel). Returns nil when the rectangle misses the canvas.
function Canvas:sub(x, y, w, h)
  local fname = "Canvas:sub"
  x, y = round(finite(fname, "x", x)), round(finite(fname, "y", y))
  w, h = round(finite(fname, "w", w)), round(finite(fname, "h", h))
  local x0, y0 = math.max(1, x), math.max(1, y)
  local x1, y1 = math.min(self.width, x + w - 1), math.min(self.height, y + h - 1)
  if x1 < x0 or y1 < y0 then return nil end
  local view = self.tensor:narrow(2, y0, y1 - y0 + 1):narrow(3, x0, x1 - x0 + 1)
  return Canvas.wrap(view, self.background)
end

function Canvas.is_canvas(x)
  return class.is_instance(x, Canvas)
end

function Canvas:clear(c)
  local rgb = c and color.parse("Canvas:clear", "color", c) or self.background
  P.clear(self.tensor, rgb[1], rgb[2], rgb[3])
  return self
end

--- Fills the pixels x..x+w-1, y..y+h-1.
function Canvas:rect(x, y, w, h, c)
  local fname = "Canvas:rect"
  local rgba = color.parse(fname, "color", c or "black")
  x, y = round(finite(fname, "x", x)), round(finite(fname, "y", y))
  w, h = round(finite(fname, "w", w)), round(finite(fname, "h", h))
  if w <= 0 or h <= 0 then return self end
  P.fill_rect(self.tensor, x, y, w, h, table.unpack(rgba))
  return self
end

--- Outlines the pixels x..x+w-1, y..y+h-1 with lines `thickness` pixels wide, drawn inside.
function Canvas:frame(x, y, w, h, c, thickness)
  local t = thickness or 1
  self:rect(x, y, w, t, c)
  self:rect(x, y + h - t, w, t, c)
  self:rect(x, y + t, t, h - 2 * t, c)
  self:rect(x + w - t, y + t, t, h - 2 * t, c)
  return self
end

-- {color, width, dash} of a stroke: the colour as rgba, width in pixels, dash as {on, off} or nil.
local function stroke(fname, opts)
  opts = options(fname, opts, {"color", "width", "dash"})
  local rgba = color.parse(fname, "color", opts.color or "black")
  local width = opts.width == nil and 1 or finite(fname, "width", opts.width)
  if width <= 0 then U.fail(fname, "width must be > 0, got %s", U.describe(width)) end
  local dash = opts.dash
  if dash == true then dash = {3 * width + 3, 2 * width + 2} end
  if dash == false then dash = nil end
  if dash ~= nil then
    if type(dash) ~= "table" or #dash ~= 2 or type(dash[1]) ~= "number" or type(dash[2]) ~= "number"
      or not (dash[1] > 0 and dash[2] > 0) then
      U.fail(fname, "dash must be true or {on, off} (pixel lengths > 0), got %s", U.describe(dash))
    end
  end
  return rgba, width, dash
end

local function draw_polyline(self, fname, xy, opts)
  local rgba, width, dash = stroke(fname, opts)
  local on, off = 0, 0
  if dash then on, off = dash[1], dash[2] end
  P.polyline(self.tensor, xy, width, rgba[1], rgba[2], rgba[3], rgba[4], on, off)
  return self
end

function Canvas:line(x1, y1, x2, y2, opts)
  local fname = "Canvas:line"
  for i, v in ipairs {x1, y1, x2, y2} do finite(fname, ({"x1", "y1", "x2", "y2"})[i], v) end
  return draw_polyline(self, fname, {x1, y1, x2, y2}, opts)
end

--- The line through (xs[i], ys[i]); a missing or NaN y (or x) breaks it.
function Canvas:polyline(xs, ys, opts)
  local fname = "Canvas:polyline"
  if type(xs) ~= "table" or type(ys) ~= "table" then
    U.fail(fname, "xs and ys must be lists of numbers, got %s and %s", U.describe(xs), U.describe(ys))
  end
  local n = math.max(#xs, #ys)
  local xy = {}
  for i = 1, n do
    local x, y = xs[i], ys[i]
    for _, v in ipairs {x, y} do
      if v ~= nil and type(v) ~= "number" then U.fail(fname, "point %d: expected numbers, got %s", i, U.describe(v)) end
    end
    xy[2 * i - 1], xy[2 * i] = x or 0 / 0, y or 0 / 0
  end
  if n == 0 then return self end
  return draw_polyline(self, fname, xy, opts)
end

--- Fills the convex polygon {x1, y1, x2, y2, ...}.
function Canvas:polygon(xy, c)
  local fname = "Canvas:polygon"
  if type(xy) ~= "table" or #xy < 6 or #xy % 2 ~= 0 then
    U.fail(fname, "points must be a list {x1, y1, x2, y2, ...} of 3 or more points, got %s", U.describe(xy))
  end
  for i = 1, #xy do finite(fname, ("coordinate %d"):format(i), xy[i]) end
  local rgba = color.parse(fname, "color", c or "black")
  P.fill_polygon(self.tensor, xy, table.unpack(rgba))
  return self
end

function Canvas:circle(x, y, radius, c)
  local fname = "Canvas:circle"
  finite(fname, "x", x)
  finite(fname, "y", y)
  if finite(fname, "radius", radius) < 0 then U.fail(fname, "radius must be >= 0, got %s", U.describe(radius)) end
  local rgba = color.parse(fname, "color", c or "black")
  P.fill_circle(self.tensor, x, y, radius, table.unpack(rgba))
  return self
end

Canvas.MARKERS = {circle = true, square = true, diamond = true, triangle = true}

--- A marker centred at (x, y), `size` pixels across (default 7).
function Canvas:marker(x, y, opts)
  local fname = "Canvas:marker"
  opts = options(fname, opts, {"shape", "size", "color"})
  local shape = opts.shape or "circle"
  if not Canvas.MARKERS[shape] then
    U.fail(fname, "shape must be \"circle\", \"square\", \"diamond\" or \"triangle\", got %s", U.describe(shape))
  end
  local r = finite(fname, "size", opts.size or 7) / 2
  finite(fname, "x", x)
  finite(fname, "y", y)
  local c = opts.color or "black"
  if shape == "circle" then return self:circle(x, y, r, c) end
  if shape == "square" then
    r = r * 0.9  -- squares look larger than circles of the same width
    return self:polygon({x - r, y - r, x + r, y - r, x + r, y + r, x - r, y + r}, c)
  end
  if shape == "diamond" then
    r = r * 1.2
    return self:polygon({x, y - r, x + r, y, x, y + r, x - r, y}, c)
  end
  r = r * 1.2
  return self:polygon({x, y - r, x + r * 0.866, y + r * 0.5, x - r * 0.866, y + r * 0.5}, c)
end

local function text_scale(fname, scale)
  scale = scale or 2
  if math.type(scale) ~= "integer" and not (type(scale) == "number" and scale == math.floor(scale))
    or scale < 1 or scale > P.font.max_scale then
    U.fail(fname, "scale must be an integer in 1..%d, got %s", P.font.max_scale, U.describe(scale))
  end
  return math.tointeger(scale)
end

local function text_string(fname, s)
  if type(s) == "number" then return tostring(s) end
  if type(s) ~= "string" then U.fail(fname, "text must be a string, got %s", U.describe(s)) end
  return s
end

--- Width and height of the text's box in pixels.
function Canvas:text_size(s, scale, vertical)
  local fname = "Canvas:text_size"
  return P.text_size(text_string(fname, s), text_scale(fname, scale), vertical == true)
end
Canvas.measure = Canvas.text_size

--- The text and scale that fit in max_width pixels: the scale lowered (down to min_scale, default 1)
-- until the text fits, then the text shortened, ending in ".". For titles and labels of any length.
function Canvas:fit_text(s, scale, max_width, min_scale)
  local fname = "Canvas:fit_text"
  s, scale = text_string(fname, s), text_scale(fname, scale)
  for k = scale, math.min(scale, min_scale or 1), -1 do
    if (P.text_size(s, k)) <= max_width then return s, k end
  end
  scale = math.min(scale, min_scale or 1)
  local chars = (max_width // scale + 1) // P.font.advance  -- glyphs that fit
  if chars < 2 then return "", scale end
  local cut = s:sub(1, chars - 1):gsub("[\xC0-\xF7][\x80-\xBF]*$", "")  -- never half a UTF-8 sequence
  return cut:gsub("%s+$", "") .. ".", scale
end

local ALIGN = {left = 0, center = 0.5, middle = 0.5, right = 1}
local VALIGN = {top = 0, center = 0.5, middle = 0.5, bottom = 1}

--- Draws text anchored at (x, y): align (left, center, right) places x at the box's left edge, centre
-- or right edge; valign (top, middle, bottom) places y likewise, "middle" centring the capitals. For
-- vertical text (reading upwards) the same words apply to the rotated box. Returns the box (x, y, w, h).
function Canvas:text(x, y, s, opts)
  local fname = "Canvas:text"
  opts = options(fname, opts, {"color", "scale", "align", "valign", "vertical"})
  s = text_string(fname, s)
  local scale = text_scale(fname, opts.scale)
  local vertical = U.boolean(fname, "vertical", opts.vertical, false)
  local ax, ay = ALIGN[opts.align or "left"], VALIGN[opts.valign or "top"]
  if ax == nil then U.fail(fname, "align must be \"left\", \"center\" or \"right\", got %s", U.describe(opts.align)) end
  if ay == nil then U.fail(fname, "valign must be \"top\", \"middle\" or \"bottom\", got %s", U.describe(opts.valign)) end
  finite(fname, "x", x)
  finite(fname, "y", y)
  local rgba = color.parse(fname, "color", opts.color or "black")
  local w, h = P.text_size(s, scale, vertical)
  -- "middle" centres the part above the baseline (capitals and digits), which is what the eye centres
  local cap = P.font.ascent * scale
  local left, top
  if vertical then
    left = ax == 0.5 and x - cap / 2 or x - ax * w
    top = y - ay * h
  else
    left = x - ax * w
    top = ay == 0.5 and y - cap / 2 or y - ay * h
  end
  left, top = round(left), round(top)
  P.text(self.tensor, left, top, s, scale, vertical, table.unpack(rgba))
  return left, top, w, h
end

--- Draws an image tensor (C, H, W) with C = 1 or 3 (values in [0, 1]) with its top-left pixel at
-- (x, y), scaled to w x h pixels by nearest neighbour (default: its own size).
function Canvas:image(t, x, y, w, h)
  local fname = "Canvas:image"
  if not L.is_tensor(t) or not ((t:dim() == 3 and (t:size(1) == 1 or t:size(1) == 3)) or t:dim() == 2) then
    U.fail(fname, "image must be a (C, H, W) tensor with C = 1 or 3, or (H, W), got %s",
      L.is_tensor(t) and tostring(t:size()) or U.describe(t))
  end
  w = w or t:size(t:dim())
  h = h or t:size(t:dim() - 1)
  P.blit(self.tensor, t, round(finite(fname, "x", x)), round(finite(fname, "y", y)),
    math.max(0, round(finite(fname, "w", w))), math.max(0, round(finite(fname, "h", h))))
  return self
end

function Canvas:save(path)
  return save(self, path)
end

function Canvas:__tostring()
  return ("Canvas(%dx%d)"):format(self.width, self.height)
end

return Canvas
