--- lightning.plot (L.plot): charts drawn by the library into PNG files, with a bitmap font of its own.
--   L.plot.line_chart{series = {{x = ..., y = ..., label = ...}, ...}, title, xlabel, ylabel, path}
--   L.plot.metrics(history, path)           -- loss and accuracy per epoch, training against validation
--   L.plot.confusion_matrix(matrix, class_names, path[, {normalize = true}])
--   L.plot.samples(images, labels, class_names, path[, {nrow, padding, mean, std}])
--   L.plot.make_grid(images[, {nrow, padding, pad_value, normalize}])  -- torchvision's, as a (3, H, W) tensor
--   L.plot.save(canvas, path)               -- atomically, through L.data.write_png
--   L.plot.Canvas(width, height)            -- the drawing primitives (see canvas.lua)
--   L.plot.PlotCallback{dirpath = ...}      -- writes the three charts at the end of training
-- Each chart function returns its Canvas; path may be nil to only draw.
local lazy = {
  Canvas = "lightning.plot.canvas",
  color = "lightning.plot.color",
  ticks = "lightning.plot.ticks",
  save = "lightning.plot.save",
  line_chart = "lightning.plot.line_chart",
  metrics = "lightning.plot.metrics_chart",
  confusion_matrix = "lightning.plot.confusion_chart",
  samples = "lightning.plot.sample_grid",
  make_grid = "lightning.plot.make_grid",
  PlotCallback = "lightning.plot.callback",
}

return require("lightning.lazy")(lazy)
