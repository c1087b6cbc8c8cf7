--- Axes: the frame of an x/y chart laid out in a rectangle of a canvas (title, axis labels, ticks with
-- their labels, grid) and the mapping from data to pixels; and legends placed where they cover the
-- least data.
--   local ax = Axes.new(canvas, {x = 1, y = 1, w = 640, h = 480, xlim = {0, 10}, ylim = {0, 1},
--     title = "Loss", xlabel = "epoch", ylabel = "loss", x_integer = true, font_scale = 2})
--   ax:draw()                              -- background, grid, frame, ticks, labels, title
--   ax.plot                                -- a Canvas of the inside of the frame (clips the data)
--   ax:to_plot(x, y)                       -- data -> pixel coordinates in ax.plot
--   ax:legend(entries, "best", paths)      -- entries {label, color, width, dash, marker}
local Canvas = require "lightning.plot.canvas"
local ticks = require "lightning.plot.ticks"

local Axes = {}
Axes.__index = Axes

Axes.style = {
  pad = 12,             -- outer margin, pixels
  tick = 5,             -- tick length
  gap = 6,              -- between a tick and its label, a label and an axis title
  frame = "#404040",
  grid = "#e8e8e8",
  text = "#202020",
  legend_background = {1, 1, 1, 0.88},
  legend_frame = "#c8c8c8",
}

local function text_height(scale) return Canvas.font.height * scale end

-- The tick labels of an axis and the width of the widest.
local function tick_labels(canvas, values, step, scale)
  local labels, widest = ticks.labels(values, step), 0
  for _, s in ipairs(labels) do widest = math.max(widest, (canvas:text_size(s, scale))) end
  return labels, widest
end

--- Lays out the chart in spec's rectangle; draws nothing yet.
function Axes.new(canvas, spec)
  local st, s = Axes.style, spec.font_scale or 2
  local self = setmetatable({canvas = canvas, spec = spec, scale = s}, Axes)
  self.xlim, self.ylim = spec.xlim, spec.ylim
  local th = text_height(s)
  if spec.title then  -- a long title gets smaller, then shorter
    self.title, self.title_scale = canvas:fit_text(spec.title, spec.title_scale or s + 1, spec.w - 2 * st.pad, s)
  end

  -- vertical: title, plot area, x tick labels, x label
  self.top = spec.y + st.pad + (self.title and text_height(self.title_scale) + 2 * st.gap or th // 2)
  self.bottom = spec.y + spec.h - 1 - st.pad - (spec.xlabel and th + 2 * st.gap or 0) - (th + st.gap + st.tick)
  local plot_h = self.bottom - self.top
  self.yticks, self.ystep = ticks.positions(self.ylim[1], self.ylim[2],
    math.max(2, math.min(10, plot_h // math.floor(th * 2.5))), spec.y_integer)
  local widest
  self.ylabels, widest = tick_labels(canvas, self.yticks, self.ystep, s)

  -- horizontal: y label, y tick labels, plot area, room for half of the last x tick label
  self.left = spec.x + st.pad + (spec.ylabel and th + 2 * st.gap or 0) + widest + st.gap + st.tick
  self.right = spec.x + spec.w - 1 - st.pad - 2 * Canvas.font.advance * s
  local plot_w = self.right - self.left
  -- the most x ticks whose labels keep two characters of space between them
  for max_ticks = math.min(12, math.max(2, plot_w // 50)), 2, -1 do
    local values, step = ticks.positions(self.xlim[1], self.xlim[2], max_ticks, spec.x_integer)
    local labels, w = tick_labels(canvas, values, step, s)
    local spacing = step / (self.xlim[2] - self.xlim[1]) * plot_w
    self.xticks, self.xstep, self.xlabels = values, step, labels
    if spacing >= w + 2 * Canvas.font.advance * s then break end
  end
  -- the inside of the frame: data drawn there cannot spill over the axes
  self.plot = canvas:sub(self.left + 1, self.top + 1, self.right - self.left - 1, self.bottom - self.top - 1)
  return self
end

--- Pixel coordinates on the canvas of the data point (x, y); NaN stays NaN.
function Axes:to_canvas(x, y)
  local fx = (x - self.xlim[1]) / (self.xlim[2] - self.xlim[1])
  local fy = (y - self.ylim[1]) / (self.ylim[2] - self.ylim[1])
  return self.left + fx * (self.right - self.left), self.bottom - fy * (self.bottom - self.top)
end

--- Pixel coordinates of the data point in self.plot.
function Axes:to_plot(x, y)
  local cx, cy = self:to_canvas(x, y)
  return cx - self.left, cy - self.top
end

function Axes:draw()
  local c, st, s, spec = self.canvas, Axes.style, self.scale, self.spec
  local th = text_height(s)
  local w, h = self.right - self.left + 1, self.bottom - self.top + 1
  if spec.background then c:rect(self.left, self.top, w, h, spec.background) end
  for i, v in ipairs(self.yticks) do
    local _, y = self:to_canvas(self.xlim[1], v)
    y = math.floor(y + 0.5)
    if spec.grid ~= false and y > self.top and y < self.bottom then c:rect(self.left + 1, y, w - 2, 1, st.grid) end
    c:rect(self.left - st.tick, y, st.tick, 1, st.frame)
    c:text(self.left - st.tick - st.gap, y, self.ylabels[i], {scale = s, align = "right", valign = "middle", color = st.text})
  end
  for i, v in ipairs(self.xticks) do
    local x = math.floor(self:to_canvas(v, self.ylim[1]) + 0.5)
    if spec.grid ~= false and x > self.left and x < self.right then c:rect(x, self.top + 1, 1, h - 2, st.grid) end
    c:rect(x, self.bottom + 1, 1, st.tick, st.frame)
    c:text(x, self.bottom + st.tick + st.gap, self.xlabels[i], {scale = s, align = "center", color = st.text})
  end
  c:frame(self.left, self.top, w, h, st.frame)
  local cx, cy = (self.left + self.right) / 2, (self.top + self.bottom) / 2
  if spec.xlabel then
    c:text(cx, self.bottom + st.tick + st.gap + th + st.gap, (c:fit_text(spec.xlabel, s, w, s)),
      {scale = s, align = "center", color = st.text})
  end
  if spec.ylabel then
    c:text(spec.x + st.pad, cy, (c:fit_text(spec.ylabel, s, h, s)), {scale = s, vertical = true, valign = "middle", color = st.text})
  end
  if self.title then
    -- centred over the plot area when it fits there, else over the whole rectangle
    local tx = cx
    local tw = c:text_size(self.title, self.title_scale)
    if tx - tw / 2 < spec.x + st.pad or tx + tw / 2 > spec.x + spec.w - st.pad then tx = spec.x + spec.w / 2 end
    c:text(tx, self.top - 2 * st.gap, self.title, {scale = self.title_scale, align = "center", valign = "bottom", color = st.text})
  end
  return self
end

-- ---- legend ----

-- Where a legend may go, in matplotlib's order of preference for loc = "best": fractions of the free
-- space of the plot area (0 left/top, 1 right/bottom).
Axes.LEGEND_PLACES = {
  {"upper right", 1, 0}, {"upper left", 0, 0}, {"lower left", 0, 1}, {"lower right", 1, 1},
  {"center right", 1, 0.5}, {"upper center", 0.5, 0}, {"lower center", 0.5, 1}, {"center left", 0, 0.5},
  {"center", 0.5, 0.5},
}
local PLACE = {}
for _, p in ipairs(Axes.LEGEND_PLACES) do PLACE[p[1]] = p end

function Axes.is_legend_place(name) return PLACE[name] ~= nil end

-- Number of sample points of the paths (lists of {xs, ys} in canvas pixels, NaN for gaps) inside
-- the box, sampling each segment every 2 pixels.
local function covered(box, paths)
  local x0, y0, x1, y1 = box[1] - 3, box[2] - 3, box[1] + box[3] + 3, box[2] + box[4] + 3
  local count = 0
  local function visit(x, y)
    if x >= x0 and x <= x1 and y >= y0 and y <= y1 then count = count + 1 end
  end
  for _, path in ipairs(paths) do
    local xs, ys = path[1], path[2]
    for i = 1, #xs do
      local ax, ay = xs[i], ys[i]
      if ax == ax and ay == ay then
        visit(ax, ay)
        local bx, by = xs[i + 1], ys[i + 1]
        if bx and by and bx == bx and by == by then
          local n = math.min(1000, math.ceil(math.max(math.abs(bx - ax), math.abs(by - ay)) / 2))
          for k = 1, n - 1 do visit(ax + (bx - ax) * k / n, ay + (by - ay) * k / n) end
        end
      end
    end
  end
  return count
end

--- Draws a legend of entries {label, color, width, dash, marker} at loc ("best", or a name of
-- LEGEND_PLACES); "best" picks the place that covers the fewest points of paths.
function Axes:legend(entries, loc, paths)
  if #entries == 0 then return end
  local c, st, s = self.canvas, Axes.style, self.scale
  local th = text_height(s)
  local pad, sample, row = 3 * s, 14 * s, th + 2 * s
  local inset = 4 * s
  local room = self.right - self.left - 2 * inset - (2 * pad + sample + 4 * s)  -- for the longest label
  local labels, widest = {}, 0
  for i, e in ipairs(entries) do
    labels[i] = c:fit_text(e.label, s, room, s)
    widest = math.max(widest, (c:text_size(labels[i], s)))
  end
  local w = pad + sample + 3 * s + widest + pad + s
  local h = 2 * pad + #entries * row - 2 * s
  local free_w = self.right - self.left - 2 * inset - w
  local free_h = self.bottom - self.top - 2 * inset - h
  local function box_at(place)
    return {math.floor(self.left + inset + place[2] * free_w + 0.5), math.floor(self.top + inset + place[3] * free_h + 0.5), w, h}
  end
  local box
  if loc == "best" then
    local best
    for _, place in ipairs(Axes.LEGEND_PLACES) do
      local candidate = box_at(place)
      local n = covered(candidate, paths or {})
      if not best or n < best then box, best = candidate, n end
      if n == 0 then break end
    end
  else
    box = box_at(PLACE[loc])
  end
  c:rect(box[1], box[2], box[3], box[4], st.legend_background)
  c:frame(box[1], box[2], box[3], box[4], st.legend_frame)
  for i, e in ipairs(entries) do
    local y = box[2] + pad + (i - 1) * row + (Canvas.font.ascent * s) // 2
    local x = box[1] + pad
    c:line(x, y, x + sample, y, {color = e.color, width = e.width or 2, dash = e.dash})
    if e.marker then c:marker(x + sample / 2, y, {shape = e.marker, size = e.marker_size, color = e.color}) end
    c:text(x + sample + 3 * s, y, labels[i], {scale = s, valign = "middle", color = st.text})
  end
  return box
end

return Axes
