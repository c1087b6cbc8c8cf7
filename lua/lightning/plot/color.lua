--- Colours for plots: parsing ("#1f77b4", "#1f77b480", "tab:blue", "black", {r, g, b[, a]} in [0, 1]),
-- the series palette (matplotlib's tab10), viridis, and a text colour that contrasts with a background.
local core = require "lightning.core"
local U = require "lightning.util.checks"

local color = {}

--- matplotlib's tab10: the colours series get in order.
color.palette = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"}

color.names = {
  black = "#000000", white = "#ffffff", gray = "#808080", grey = "#808080", lightgray = "#d3d3d3",
  darkgray = "#404040", red = "#d62728", green = "#2ca02c", blue = "#1f77b4", orange = "#ff7f0e",
  purple = "#9467bd", brown = "#8c564b", pink = "#e377c2", olive = "#bcbd22", cyan = "#17becf",
}
for i, name in ipairs {"blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan"} do
  color.names["tab:" .. name] = color.palette[i]
end

local function from_hex(hex)
  local digits = hex:match("^#(%x+)$")
  if not digits then return nil end
  if #digits == 3 or #digits == 4 then digits = digits:gsub("%x", "%0%0") end
  if #digits ~= 6 and #digits ~= 8 then return nil end
  local c = {}
  for i = 1, #digits, 2 do c[#c + 1] = tonumber(digits:sub(i, i + 1), 16) / 255 end
  c[4] = c[4] or 1
  return c
end

--- {r, g, b, a} (numbers in [0, 1]) from any colour form; fname and what name the argument in errors.
function color.parse(fname, what, c)
  if type(c) == "string" then
    local parsed = from_hex(color.names[c:lower()] or c)
    if parsed then return parsed end
    U.fail(fname, "%s: unknown colour %q (use \"#rrggbb\", \"#rrggbbaa\", {r, g, b[, a]} in [0, 1] or a name such as \"black\" or \"tab:blue\")", what, c)
  end
  if type(c) ~= "table" or (#c ~= 3 and #c ~= 4) then
    U.fail(fname, "%s must be a colour (\"#rrggbb\", a name or {r, g, b[, a]}), got %s", what, U.describe(c))
  end
  local out = {}
  for i = 1, 4 do
    local v = c[i] == nil and 1 or c[i]
    if type(v) ~= "number" or not (v >= 0 and v <= 1) then
      U.fail(fname, "%s[%d] must be a number in [0, 1], got %s", what, i, U.describe(v))
    end
    out[i] = v
  end
  return out
end

--- The same colour with its opacity multiplied by alpha.
function color.with_alpha(c, alpha)
  return {c[1], c[2], c[3], (c[4] or 1) * alpha}
end

--- viridis at t in [0, 1] (clamped), as {r, g, b, 1}.
function color.viridis(t)
  local r, g, b = core.plot.colormap(t)
  return {r, g, b, 1}
end

-- WCAG relative luminance of an sRGB colour.
local function luminance(c)
  local function linear(v) return v <= 0.04045 and v / 12.92 or ((v + 0.055) / 1.055) ^ 2.4 end
  return 0.2126 * linear(c[1]) + 0.7152 * linear(c[2]) + 0.0722 * linear(c[3])
end
color.luminance = luminance

--- Black or white, whichever contrasts more with the background c (WCAG contrast ratio).
function color.text_on(c)
  local l = luminance(c)
  if (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) then return {0, 0, 0, 1} end
  return {1, 1, 1, 1}
end

return color
