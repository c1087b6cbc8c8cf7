--- L.plot.confusion_matrix(matrix, class_names, path[, opts]): a heat map of a confusion matrix (rows:
-- true class, columns: predicted class, scikit-learn's and lightning.metrics' convention) with the
-- count in each cell, the class names on both axes and a colour bar.
--   L.plot.confusion_matrix(cm:counts(), {"airplane", ...}, "confusion_matrix.png", {normalize = true})
-- matrix: a list of K rows of K numbers >= 0, or a (K, K) tensor. class_names: K names (nil: 1..K).
-- opts: normalize (false; true or "true": each row sums to 1 (recall per class), "pred": each column
-- (precision), "all": the whole matrix), title, cell (pixels per cell; default fits K into about 640),
-- font_scale (2). Names longer than 14 characters are shortened; x-axis names turn vertical when they
-- do not fit under their column; cell values are left out when they cannot fit in a cell.
-- Returns the canvas; path may be nil.
local L = require "lightning"
local U = require "lightning.util.checks"
local Canvas = require "lightning.plot.canvas"
local color = require "lightning.plot.color"
local ticks = require "lightning.plot.ticks"
local save = require "lightning.plot.save"

local STYLE = {pad = 14, gap = 6, tick = 4, frame = "#404040", text = "#202020", bar_width = 20, max_name = 14}
local NORMALIZE = {["true"] = "true", pred = "pred", all = "all"}

-- The matrix as a list of K rows of numbers.
local function check_matrix(fname, m)
  if L.is_tensor(m) then
    if m:dim() ~= 2 or m:size(1) ~= m:size(2) then
      U.fail(fname, "matrix must be square (K x K), got a tensor of size %s", tostring(m:size()))
    end
    m = m:totable()
  end
  if type(m) ~= "table" then U.fail(fname, "matrix must be a list of rows or a (K, K) tensor, got %s", U.describe(m)) end
  local k = #m
  if k == 0 then U.fail(fname, "matrix is empty") end
  local rows = {}
  for i = 1, k do
    local row = m[i]
    if type(row) ~= "table" then U.fail(fname, "matrix row %d must be a list of numbers, got %s", i, U.describe(row)) end
    if #row ~= k then U.fail(fname, "matrix must be square: row %d has %d values but there are %d rows", i, #row, k) end
    rows[i] = {}
    for j = 1, k do
      local v = row[j]
      if type(v) ~= "number" or not (v >= 0 and v < math.huge) then
        U.fail(fname, "matrix[%d][%d] must be a finite number >= 0, got %s", i, j, U.describe(v))
      end
      rows[i][j] = v
    end
  end
  return rows
end

local function check_names(fname, names, k)
  local out = {}
  if names == nil then
    for i = 1, k do out[i] = tostring(i) end
    return out
  end
  if type(names) ~= "table" then U.fail(fname, "class_names must be a list of %d names, got %s", k, U.describe(names)) end
  if #names ~= k then U.fail(fname, "class_names has %d names but the matrix has %d classes", #names, k) end
  for i = 1, k do
    local name = names[i]
    if type(name) ~= "string" and type(name) ~= "number" then
      U.fail(fname, "class_names[%d] must be a string, got %s", i, U.describe(name))
    end
    name = tostring(name)
    if #name > STYLE.max_name then name = name:sub(1, STYLE.max_name - 1) .. "." end
    out[i] = name
  end
  return out
end

-- The values shown: the counts, or fractions of a row, column or the total.
local function normalized(rows, mode)
  local k = #rows
  if not mode then return rows end
  local out, total = {}, 0
  for i = 1, k do for j = 1, k do total = total + rows[i][j] end end
  for i = 1, k do
    out[i] = {}
    for j = 1, k do
      local denom = total
      if mode == "true" then
        denom = 0
        for jj = 1, k do denom = denom + rows[i][jj] end
      elseif mode == "pred" then
        denom = 0
        for ii = 1, k do denom = denom + rows[ii][j] end
      end
      out[i][j] = denom > 0 and rows[i][j] / denom or 0
    end
  end
  return out
end

local function cell_text(v, mode)
  if mode then return ("%.2f"):format(v) end
  if v == math.floor(v) then return ("%d"):format(v) end
  return ("%.3g"):format(v)
end

local function confusion_matrix(matrix, class_names, path, opts)
  local fname = "lightning.plot.confusion_matrix"
  local rows = check_matrix(fname, matrix)
  local k = #rows
  local names = check_names(fname, class_names, k)
  if path ~= nil and type(path) ~= "string" then U.fail(fname, "path must be a string, got %s", U.describe(path)) end
  opts = U.check_options(fname, opts, {"normalize", "title", "cell", "font_scale"})
  local mode = opts.normalize
  if mode == true then mode = "true" elseif mode == false then mode = nil end
  if mode ~= nil and not NORMALIZE[mode] then
    U.fail(fname, "normalize must be false, true, \"true\", \"pred\" or \"all\", got %s", U.describe(opts.normalize))
  end
  if opts.title ~= nil and type(opts.title) ~= "string" then U.fail(fname, "title must be a string, got %s", U.describe(opts.title)) end
  local cell = opts.cell and U.positive_int(fname, "cell", opts.cell) or math.max(8, math.min(72, 640 // k))
  local s = opts.font_scale and U.positive_int(fname, "font_scale", opts.font_scale) or 2
  if s > 4 then U.fail(fname, "font_scale must be 1 to 4, got %d", s) end
  if cell * k > 16000 then U.fail(fname, "%d classes of %d pixels do not fit in an image", k, cell) end

  local values = normalized(rows, mode)
  local vmax = 0
  for i = 1, k do for j = 1, k do vmax = math.max(vmax, values[i][j]) end end
  local scale_max = mode and 1 or (vmax > 0 and vmax or 1)
  local title = opts.title or ("Confusion matrix" .. (mode == "true" and " (rows normalized)" or
    mode == "pred" and " (columns normalized)" or mode == "all" and " (normalized)" or ""))

  local scratch = Canvas(1, 1)  -- for measuring text
  local function width_of(text, scale) return (scratch:text_size(text, scale)) end
  local st, th = STYLE, Canvas.font.height * s

  -- class names: as large as the cells allow; every n-th when even scale 1 is too tall
  local name_scale = cell >= th + 2 and s or 1
  local name_every = math.max(1, math.ceil((Canvas.font.height * name_scale + 2) / cell))
  local widest = 0
  for _, name in ipairs(names) do widest = math.max(widest, width_of(name, name_scale)) end
  local x_vertical = widest > cell * name_every - 4
  local x_names_h = x_vertical and widest or Canvas.font.height * name_scale

  -- cell values: one scale for all cells, none when the widest does not fit
  local texts, widest_value = {}, 0
  for i = 1, k do
    texts[i] = {}
    for j = 1, k do
      texts[i][j] = cell_text(values[i][j], mode)
      widest_value = math.max(widest_value, #texts[i][j])
    end
  end
  local value_scale
  for scale = s, 1, -1 do
    local w, h = (widest_value * Canvas.font.advance - 1) * scale, Canvas.font.ascent * scale
    if w <= cell - 6 and h <= cell - 4 then value_scale = scale break end
  end

  -- colour bar labels
  local bar_ticks, bar_step = ticks.positions(0, scale_max, math.max(3, math.min(6, cell * k // 50)), not mode)
  local bar_labels, bar_widest = ticks.labels(bar_ticks, bar_step), 0
  for _, label in ipairs(bar_labels) do bar_widest = math.max(bar_widest, width_of(label, s)) end

  -- layout
  local title_scale = s + 1
  local grid = cell * k
  local left = st.pad + th + 2 * st.gap + widest + st.gap + st.tick
  local top = st.pad + Canvas.font.height * title_scale + 3 * st.gap
  local bar_x = left + grid + 4 * st.gap
  local width = bar_x + st.bar_width + st.tick + st.gap + bar_widest + st.pad
  local height = top + grid + st.tick + st.gap + x_names_h + 2 * st.gap + th + st.pad
  local title_scale_fit
  title, title_scale_fit = scratch:fit_text(title, title_scale, math.max(width, 600) - 2 * st.pad, s)
  local title_w = width_of(title, title_scale_fit)
  width = math.max(width, title_w + 2 * st.pad)
  local canvas = Canvas(width, height)

  -- cells and their values
  for i = 1, k do
    for j = 1, k do
      local x, y = left + (j - 1) * cell, top + (i - 1) * cell
      local fill = color.viridis(values[i][j] / scale_max)
      canvas:rect(x, y, cell, cell, fill)
      if value_scale then
        canvas:text(x + cell / 2, y + cell / 2, texts[i][j], {scale = value_scale, align = "center", valign = "middle",
          color = color.text_on(fill)})
      end
    end
  end
  canvas:frame(left - 1, top - 1, grid + 2, grid + 2, st.frame)

  -- class names and ticks
  for i = 1, k do
    local center = (i - 1) * cell + cell // 2
    canvas:rect(left - 1 - st.tick, top + center, st.tick, 1, st.frame)
    canvas:rect(left + center, top + grid + 1, 1, st.tick, st.frame)
    if (i - 1) % name_every == 0 then
      canvas:text(left - 1 - st.tick - st.gap, top + center, names[i], {scale = name_scale, align = "right",
        valign = "middle", color = st.text})
      canvas:text(left + center, top + grid + 1 + st.tick + st.gap, names[i], {scale = name_scale, align = "center",
        valign = "top", vertical = x_vertical, color = st.text})
    end
  end
  local names_bottom = top + grid + 1 + st.tick + st.gap + x_names_h
  canvas:text(left + grid / 2, names_bottom + 2 * st.gap, "Predicted label", {scale = s, align = "center", color = st.text})
  canvas:text(st.pad, top + grid / 2, "True label", {scale = s, vertical = true, valign = "middle", color = st.text})
  canvas:text(math.max(left + grid / 2, title_w / 2 + st.pad), st.pad, title, {scale = title_scale_fit, align = "center",
    color = st.text})

  -- colour bar
  for py = 0, grid - 1 do
    canvas:rect(bar_x, top + py, st.bar_width, 1, color.viridis(1 - py / math.max(1, grid - 1)))
  end
  canvas:frame(bar_x - 1, top - 1, st.bar_width + 2, grid + 2, st.frame)
  for i, v in ipairs(bar_ticks) do
    local y = math.floor(top + (1 - v / scale_max) * (grid - 1) + 0.5)
    canvas:rect(bar_x + st.bar_width + 1, y, st.tick, 1, st.frame)
    canvas:text(bar_x + st.bar_width + 1 + st.tick + st.gap, y, bar_labels[i], {scale = s, valign = "middle", color = st.text})
  end

  if path then save(canvas, path, fname) end
  return canvas
end

return confusion_matrix
