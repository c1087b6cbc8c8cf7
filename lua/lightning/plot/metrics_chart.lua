--- L.plot.metrics(history, path[, opts]): loss and accuracy per epoch, training against validation, as
-- two panels side by side.
--   L.plot.metrics({epoch = {1, 2, 3}, train_loss = {...}, val_loss = {...}, train_acc = {...},
--     val_acc = {...}}, "outputs/run/plots/metrics.png")
-- Missing series are skipped (and a panel with none); NaN marks an epoch without a value (no
-- validation that epoch): the line joins the epochs that have one. epoch defaults to 1..n. opts: title (above both panels), width (per panel, 620),
-- height (460), font_scale (2). Returns the canvas; path may be nil.
local U = require "lightning.util.checks"
local Canvas = require "lightning.plot.canvas"
local color = require "lightning.plot.color"
local line_chart = require "lightning.plot.line_chart"
local save = require "lightning.plot.save"

local PANELS = {
  {title = "Loss", ylabel = "loss", series = {{"train_loss", "train"}, {"val_loss", "validation"}}},
  {title = "Accuracy", ylabel = "accuracy", series = {{"train_acc", "train"}, {"val_acc", "validation"}}},
}
local STYLE = {train = {color = color.palette[1], marker = "circle"}, validation = {color = color.palette[2], marker = "square"}}

local function has_value(list)
  for _, v in ipairs(list) do if v == v and v ~= math.huge and v ~= -math.huge then return true end end
  return false
end

-- The epochs and the named series of history, checked: lists of numbers of one length.
local function check_history(fname, history)
  if type(history) ~= "table" then U.fail(fname, "history must be a table {epoch = {...}, train_loss = {...}, ...}, got %s", U.describe(history)) end
  local n, first
  if history.epoch ~= nil then
    if type(history.epoch) ~= "table" then U.fail(fname, "history.epoch must be a list of numbers, got %s", U.describe(history.epoch)) end
    n, first = #history.epoch, "epoch"
    for i, v in ipairs(history.epoch) do
      if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
        U.fail(fname, "history.epoch[%d] must be a finite number, got %s", i, U.describe(v))
      end
    end
  end
  for _, panel in ipairs(PANELS) do
    for _, s in ipairs(panel.series) do
      local key, list = s[1], history[s[1]]
      if list ~= nil then
        if type(list) ~= "table" then U.fail(fname, "history.%s must be a list of numbers, got %s", key, U.describe(list)) end
        if n == nil then
          n, first = #list, key
        elseif #list ~= n then
          U.fail(fname, "history.%s has %d values but history.%s has %d: every series needs one value per epoch (NaN for none)", key, #list, first, n)
        end
        for i, v in ipairs(list) do
          if type(v) ~= "number" then U.fail(fname, "history.%s[%d] must be a number, got %s", key, i, U.describe(v)) end
        end
      end
    end
  end
  if n == nil then U.fail(fname, "history has none of train_loss, val_loss, train_acc, val_acc: nothing to plot") end
  if n == 0 then U.fail(fname, "history is empty: no epochs to plot") end
  local epochs = {}
  for i = 1, n do epochs[i] = history.epoch and history.epoch[i] or i end
  return epochs
end

local function metrics(history, path, opts)
  local fname = "lightning.plot.metrics"
  local epochs = check_history(fname, history)
  opts = U.check_options(fname, opts, {"title", "width", "height", "font_scale"})
  if path ~= nil and type(path) ~= "string" then U.fail(fname, "path must be a string, got %s", U.describe(path)) end
  if opts.title ~= nil and type(opts.title) ~= "string" then U.fail(fname, "title must be a string, got %s", U.describe(opts.title)) end

  local panels = {}
  for _, panel in ipairs(PANELS) do
    local series = {}
    for _, s in ipairs(panel.series) do
      local values = history[s[1]]
      if values and has_value(values) then
        -- only the epochs with a value: the line joins validations run every n epochs
        local xs, ys = {}, {}
        for i, v in ipairs(values) do
          if v == v and v ~= math.huge and v ~= -math.huge then xs[#xs + 1], ys[#ys + 1] = epochs[i], v end
        end
        local style = STYLE[s[2]]
        series[#series + 1] = {x = xs, y = ys, label = s[2], color = style.color,
          marker = #xs <= 40 and style.marker or nil, width = 2}
      end
    end
    if #series > 0 then panels[#panels + 1] = {spec = panel, series = series} end
  end
  if #panels == 0 then U.fail(fname, "history has no finite values to plot") end

  local pw = opts.width == nil and 620 or U.positive_int(fname, "width", opts.width)
  local ph = opts.height == nil and 460 or U.positive_int(fname, "height", opts.height)
  if pw < 200 or ph < 160 or pw * #panels > Canvas.MAX_SIZE or ph > Canvas.MAX_SIZE then
    U.fail(fname, "panels of %dx%d pixels are too small or too large (at least 200x160)", pw, ph)
  end
  local font_scale = opts.font_scale == nil and 2 or U.positive_int(fname, "font_scale", opts.font_scale)
  if font_scale > 4 then U.fail(fname, "font_scale must be 1 to 4, got %d", font_scale) end
  local title_h = opts.title and (Canvas.font.height * (font_scale + 1) + 16) or 0
  local canvas = Canvas(pw * #panels, ph + title_h)
  if opts.title then
    local title, scale = canvas:fit_text(opts.title, font_scale + 1, canvas.width - 24, font_scale)
    canvas:text(canvas.width / 2, 12, title, {scale = scale, align = "center", color = "#202020"})
  end
  for i, p in ipairs(panels) do
    line_chart({canvas = canvas, rect = {(i - 1) * pw + 1, title_h + 1, pw, ph}, series = p.series,
      title = p.spec.title, xlabel = "epoch", ylabel = p.spec.ylabel, x_integer = true, font_scale = font_scale}, fname)
  end
  if path then save(canvas, path, fname) end
  return canvas
end

return metrics
