-- lightning.plot's charts: line_chart, metrics, confusion_matrix and samples draw PNGs of the expected
-- size that read back with L.data.read_png; what they draw is where it should be; bad arguments get
-- clear errors; files are written atomically through save.
local L = require "lightning"
local H = require "helpers"

local function history(n)
  local h = {epoch = {}, train_loss = {}, val_loss = {}, train_acc = {}, val_acc = {}}
  for i = 1, n do
    h.epoch[i] = i
    h.train_loss[i] = 2 * math.exp(-i / 4) + 0.3
    h.val_loss[i] = 2 * math.exp(-i / 5) + 0.5
    h.train_acc[i] = 0.9 - 0.5 * math.exp(-i / 4)
    h.val_acc[i] = 0.8 - 0.5 * math.exp(-i / 5)
  end
  return h
end

local NAMES = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

local function cifar_like_counts()
  local m = {}
  for i = 1, 10 do
    m[i] = {}
    for j = 1, 10 do m[i][j] = i == j and 800 + 10 * i or (i * 7 + j * 3) % 40 end
  end
  return m
end

-- Whether some pixel of the canvas is within tol of the colour (r, g, b).
local function has_color(t, c, tol)
  local d = (t:select(1, 1) - c[1]):abs() + (t:select(1, 2) - c[2]):abs() + (t:select(1, 3) - c[3]):abs()
  return d:min() <= (tol or 0.02)
end

local function files_in(dir)
  local names = {}
  local p = io.popen("ls -A '" .. dir .. "'")
  for name in p:lines() do names[#names + 1] = name end
  p:close()
  table.sort(names)
  return names
end

describe("plot: charts", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  describe("line_chart", function()
    it("draws series in their colours on a canvas of the asked size and saves a PNG that reads back", function()
      local path = dir .. "/lines.png"
      local c = L.plot.line_chart{series = {{x = {1, 2, 3, 4}, y = {4, 3, 2.5, 2}, label = "a"},
        {y = {1, 2, 1, 2}, label = "b", color = "#d62728", dash = true, marker = "diamond"}},
        title = "Two lines", xlabel = "step", ylabel = "value", width = 640, height = 400, path = path}
      assert.equal(640, c.width)
      assert.equal(400, c.height)
      local back = L.data.read_png(path)
      assert.equal("3x400x640", tostring(back:size()))
      H.assert_close(back, c.tensor, 0.5 / 255 + 1e-6, "8-bit PNG")
      assert.is_true(has_color(back, L.plot.color.parse("t", "c", "tab:blue")))
      assert.is_true(has_color(back, {0xd6 / 255, 0x27 / 255, 0x28 / 255}))
    end)

    it("keeps the data inside the frame even with limits narrower than the data", function()
      local c, ax = L.plot.line_chart{series = {{y = {-100, 100, -100, 100}, color = "#ff0000", width = 4}}, ylim = {0, 1},
        legend = false}
      local red = (c.tensor:select(1, 1) - 1):abs() + c.tensor:select(1, 2) + c.tensor:select(1, 3)
      for y = 1, c.height do
        for x = 1, c.width do
          if red:get(y, x) < 0.1 then
            assert.is_true(x > ax.left and x < ax.right and y > ax.top and y < ax.bottom, ("red at %d,%d"):format(x, y))
          end
        end
      end
    end)

    it("copes with data a billion times beyond the limits", function()
      local c = L.plot.line_chart{series = {{y = {0.5, 1e12, 0.5, -1e15}, marker = "circle"}}, ylim = {0, 1}}
      assert.equal(500, c.height)
    end)

    it("puts the legend where it covers the least data", function()
      -- data only in the upper right quarter: the legend must not go there
      local c, ax = L.plot.line_chart{series = {{x = {0, 6, 8, 10}, y = {0, 6, 10, 8}, label = "rising"}}, xlim = {0, 10},
        ylim = {0, 10}, width = 600, height = 400}
      local frame = L.plot.color.parse("t", "c", "#c8c8c8")  -- the legend frame
      local mid_x, mid_y = (ax.left + ax.right) / 2, (ax.top + ax.bottom) / 2
      local quarter_has = function(x0, x1, y0, y1)
        return has_color(c.tensor:narrow(2, y0, y1 - y0 + 1):narrow(3, x0, x1 - x0 + 1):contiguous(), frame, 0.01)
      end
      assert.is_false(quarter_has(math.floor(mid_x), ax.right - 1, ax.top + 1, math.floor(mid_y)))
      assert.is_true(quarter_has(ax.left + 1, math.floor(mid_x), ax.top + 1, math.floor(mid_y)))
    end)

    it("gives clear errors for bad series and options", function()
      local f = L.plot.line_chart
      assert.matches("lightning.plot.line_chart: series must be a non%-empty list", H.error_of(f, {series = {}}))
      assert.matches("series 2 %(val%): x has 3 values but y has 2",
        H.error_of(f, {series = {{y = {1, 2}}, {x = {1, 2, 3}, y = {1, 2}, label = "val"}}}))
      assert.matches("series 1: y is empty", H.error_of(f, {series = {{y = {}}}}))
      assert.matches('series 1: y%[2%] must be a number, got "2"', H.error_of(f, {series = {{y = {1, "2"}}}}))
      assert.matches("series 1: x%[1%] must be a finite number, got nan", H.error_of(f, {series = {{x = {0 / 0}, y = {1}}}}))
      assert.matches("series 1: unknown field 'colour'", H.error_of(f, {series = {{y = {1}, colour = "red"}}}))
      assert.matches("series 1: marker must be", H.error_of(f, {series = {{y = {1}, marker = "x"}}}))
      assert.matches("ylim must be {lo, hi} with finite lo < hi", H.error_of(f, {series = {{y = {1}}}, ylim = {1, 1}}))
      assert.matches("legend must be false, \"best\" or a place", H.error_of(f, {series = {{y = {1}}}, legend = "top"}))
      assert.matches("width must be in 120..32768 pixels, got 50", H.error_of(f, {series = {{y = {1}}}, width = 50}))
      assert.matches("unknown option 'colour'", H.error_of(f, {series = {{y = {1}}}, colour = 1}))
      assert.matches("expected a table of options", H.error_of(f, "x"))
    end)

    it("draws NaN and infinite values as gaps, a point between gaps as a dot, and copes with all missing", function()
      local c = L.plot.line_chart{series = {{y = {0 / 0, math.huge, 0 / 0}, label = "none"}}}
      assert.equal(800, c.width)
      local red = {1, 0, 0}
      local dot = L.plot.line_chart{series = {{y = {1, 0 / 0, 2, 0 / 0, 3}, color = red}}, legend = false}
      assert.is_true(has_color(dot.tensor, red, 0.01))
    end)
  end)

  describe("metrics", function()
    it("draws loss and accuracy panels side by side and saves them", function()
      local path = dir .. "/metrics.png"
      local c = L.plot.metrics(history(12), path)
      assert.equal(1240, c.width)
      assert.equal(460, c.height)
      local back = L.data.read_png(path)
      assert.equal("3x460x1240", tostring(back:size()))
      assert.is_true(has_color(back:narrow(3, 1, 620):contiguous(), {0x1f / 255, 0x77 / 255, 0xb4 / 255}), "train colour, left panel")
      assert.is_true(has_color(back:narrow(3, 621, 620):contiguous(), {1, 0x7f / 255, 0x0e / 255}), "validation colour, right panel")
    end)

    it("joins the epochs that have a value: validation every 5 epochs is a line, not isolated points", function()
      local h = {train_loss = {}, val_loss = {}}
      for e = 1, 60 do
        h.train_loss[e] = 1 / e
        h.val_loss[e] = e % 5 == 0 and 1.2 / e or 0 / 0
      end
      local c = L.plot.metrics(h)
      -- orange pixels all along: count the columns that have some
      local t = c.tensor
      local d = (t:select(1, 1) - 1):abs() + (t:select(1, 2) - 0x7f / 255):abs() + (t:select(1, 3) - 0x0e / 255):abs()
      local columns = (d:lt(0.05):sum(1)):gt(0):sum()
      assert.is_true(columns > 300, "validation line too short: " .. columns .. " columns")
    end)

    it("skips missing series and a panel without any, and takes NaN as a gap", function()
      local c = L.plot.metrics({train_loss = {2, 1.5, 1}, val_loss = {2.1, 0 / 0, 1.2}})
      assert.equal(620, c.width)
      local only_acc = L.plot.metrics({epoch = {3, 4}, val_acc = {0.5, 0.6}}, nil, {title = "Run 7", width = 400, height = 300})
      assert.equal(400, only_acc.width)
      assert.is_true(only_acc.height > 300)
    end)

    it("rejects empty histories, mismatched lengths and bad values", function()
      local f = L.plot.metrics
      assert.matches("lightning.plot.metrics: history has none of train_loss, val_loss, train_acc, val_acc", H.error_of(f, {}))
      assert.matches("lightning.plot.metrics: history is empty: no epochs to plot", H.error_of(f, {epoch = {}, train_loss = {}}))
      assert.matches("history.val_loss has 2 values but history.epoch has 3",
        H.error_of(f, {epoch = {1, 2, 3}, train_loss = {1, 2, 3}, val_loss = {1, 2}}))
      assert.matches("history.val_acc has 1 values but history.train_loss has 2", H.error_of(f, {train_loss = {1, 2}, val_acc = {1}}))
      assert.matches('history.train_loss%[2%] must be a number, got "x"', H.error_of(f, {train_loss = {1, "x"}}))
      assert.matches("history.epoch%[1%] must be a finite number", H.error_of(f, {epoch = {"1"}, train_loss = {1}}))
      assert.matches("history must be a table", H.error_of(f, nil))
      assert.matches("history has no finite values to plot", H.error_of(f, {train_loss = {0 / 0}}))
      assert.matches("path must be a string, got 5", H.error_of(f, history(2), 5))
    end)
  end)

  describe("confusion_matrix", function()
    it("draws a heat map with counts, class names and a colour bar, and saves it", function()
      local path = dir .. "/cm.png"
      local c = L.plot.confusion_matrix(cifar_like_counts(), NAMES, path)
      local back = L.data.read_png(path)
      assert.equal(3, back:size(1))
      assert.equal(c.height, back:size(2))
      assert.equal(c.width, back:size(3))
      assert.is_true(c.width > 640 and c.width < 1000)
      assert.is_true(has_color(back, L.plot.color.viridis(0), 2 / 255), "the darkest colour")
      assert.is_true(has_color(back, L.plot.color.viridis(1), 2 / 255), "the brightest colour (colour bar top)")
    end)

    it("writes each count in the colour that contrasts with its cell", function()
      -- 2 classes, big cells: the dark cell (0) gets white text, the bright one (9) black
      local c = L.plot.confusion_matrix({{9, 0}, {0, 9}}, {"a", "b"}, nil, {cell = 60})
      local dark, bright = L.plot.color.viridis(0), L.plot.color.viridis(1)
      local t = c.tensor
      local white_in_dark, black_in_bright = false, false
      for y = 1, c.height do
        for x = 1, c.width do
          local r, g, b = t:get(1, y, x), t:get(2, y, x), t:get(3, y, x)
          if r == 1 and g == 1 and b == 1 then
            -- a white pixel with the dark cell colour two pixels to its left and right
            if math.abs(t:get(1, y, math.max(1, x - 3)) - dark[1]) < 1e-6 and math.abs(t:get(1, y, math.min(c.width, x + 3)) - dark[1]) < 1e-6 then
              white_in_dark = true
            end
          elseif r == 0 and g == 0 and b == 0 then
            if math.abs(t:get(1, y, math.max(1, x - 3)) - bright[1]) < 1e-6 then black_in_bright = true end
          end
        end
      end
      assert.is_true(white_in_dark, "white count in a dark cell")
      assert.is_true(black_in_bright, "black count in a bright cell")
    end)

    it("takes a (K, K) tensor, normalizes rows, columns or the total, and copes with many classes and long names", function()
      local m = L.tensor{{5, 1, 0}, {2, 7, 1}, {0, 0, 9}}
      for _, mode in ipairs {true, "true", "pred", "all", false} do
        local c = L.plot.confusion_matrix(m, {"a very long class name indeed", "b", "c"}, nil, {normalize = mode})
        assert.is_true(c.width > 100)
      end
      local big = {}
      for i = 1, 60 do
        big[i] = {}
        for j = 1, 60 do big[i][j] = i == j and 50 or 0 end
      end
      local c = L.plot.confusion_matrix(big, nil, dir .. "/big.png")
      assert.is_true(c.width < 1200)
      local empty = L.plot.confusion_matrix({{0, 0}, {0, 0}}, {"x", "y"})
      assert.is_true(empty.width > 0)
    end)

    it("rejects non-square matrices, a wrong number of names and bad counts", function()
      local f = L.plot.confusion_matrix
      assert.matches("lightning.plot.confusion_matrix: matrix must be square: row 1 has 3 values but there are 2 rows",
        H.error_of(f, {{1, 2, 3}, {4, 5, 6}}, {"a", "b"}))
      assert.matches("matrix must be square %(K x K%), got a tensor of size 2x3", H.error_of(f, L.zeros(2, 3), {"a", "b"}))
      assert.matches("class_names has 3 names but the matrix has 2 classes", H.error_of(f, {{1, 2}, {3, 4}}, {"a", "b", "c"}))
      assert.matches("class_names%[2%] must be a string, got true", H.error_of(f, {{1, 2}, {3, 4}}, {"a", true}))
      assert.matches("matrix%[2%]%[1%] must be a finite number >= 0, got %-3", H.error_of(f, {{1, 2}, {-3, 4}}))
      assert.matches("matrix is empty", H.error_of(f, {}))
      assert.matches('normalize must be false, true, "true", "pred" or "all", got "rows"',
        H.error_of(f, {{1}}, nil, nil, {normalize = "rows"}))
      assert.matches("unknown option 'normalise'", H.error_of(f, {{1}}, nil, nil, {normalise = true}))
    end)
  end)

  describe("samples", function()
    it("lays images out in a grid, scaled up, with captions, undoing Normalize", function()
      local b, mean, std = 10, {0.5, 0.4, 0.3}, {0.25, 0.2, 0.1}
      local images = L.ones(b, 3, 32, 32)  -- normalized value 1 -> mean + std
      local path = dir .. "/samples.png"
      local c = L.plot.samples(images, L.tensor{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, NAMES, path,
        {nrow = 5, mean = mean, std = std})
      -- 5 tiles of 32 x 4 = 128 pixels, 8 between them, 12 around; rows of 128 + caption 22
      assert.equal(12 * 2 + 5 * 128 + 4 * 8, c.width)
      assert.equal(12 + 2 * (128 + 22) + 8 + 12, c.height)
      local back = L.data.read_png(path)
      assert.equal(c.width, back:size(3))
      -- the centre of the first tile
      for ch = 1, 3 do assert.near(mean[ch] + std[ch], back:get(ch, 13 + 64, 13 + 64), 0.5 / 255 + 1e-6) end
    end)

    it("rescales images outside [0, 1] when no mean and std are given, and draws gray images", function()
      local images = L.zeros(2, 1, 28, 28)
      images[1]:fill(-2)
      images[2]:fill(2)
      local c = L.plot.samples(images, {1, 2}, {"zero", "one"})
      local tile = 28 * 4
      assert.equal(0, c.tensor:get(1, 13, 13))
      assert.equal(1, c.tensor:get(2, 13, 13 + tile + 8))
      local plain = L.plot.samples(L.full({1, 3, 8, 8}, 0.25), nil, nil, nil, {scale = 2, padding = 0})
      assert.equal(0.25, plain.tensor:get(1, 13, 13))
      assert.equal(24 + 16, plain.width)
    end)

    it("rejects bad images, labels and options", function()
      local f = L.plot.samples
      assert.matches("lightning.plot.samples: images must be a %(B, C, H, W%) tensor with C = 1 or 3, got a tensor of size 2x2x8x8",
        H.error_of(f, L.zeros(2, 2, 8, 8)))
      assert.matches("images must be a %(B, C, H, W%) tensor", H.error_of(f, L.zeros(3, 8, 8)))
      assert.matches("labels has 1 entries but there are 2 images", H.error_of(f, L.zeros(2, 3, 8, 8), {1}))
      assert.matches("labels%[2%] must be a class index in 1..2, got 3", H.error_of(f, L.zeros(2, 3, 8, 8), {1, 3}, {"a", "b"}))
      assert.matches("mean and std go together", H.error_of(f, L.zeros(2, 3, 8, 8), nil, nil, nil, {mean = 0.5}))
      assert.matches("std must have 1 or 3 values", H.error_of(f, L.zeros(2, 3, 8, 8), nil, nil, nil, {mean = 0.5, std = {1, 2}}))
      assert.matches("nrow must be positive", H.error_of(f, L.zeros(2, 3, 8, 8), nil, nil, nil, {nrow = 0}))
    end)
  end)

  describe("save", function()
    it("says when the folder is missing or the path is a folder, and leaves nothing behind", function()
      local c = L.plot.Canvas(8, 8)
      assert.matches("lightning.plot.save: cannot write " .. dir .. "/missing/x.png: the folder " .. dir ..
        "/missing does not exist %(create it first%)", H.error_of(L.plot.save, c, dir .. "/missing/x.png"))
      assert.matches("lightning.plot.metrics: cannot write .*the folder .* does not exist", H.error_of(L.plot.metrics, history(3), dir .. "/no/m.png"))
      assert.matches("lightning.plot.save: path " .. dir .. " is a folder", H.error_of(L.plot.save, c, dir))
      assert.matches("lightning.plot.save: expected a Canvas or a %(3, H, W%) tensor, got 2x2", H.error_of(L.plot.save, L.zeros(2, 2), dir .. "/a.png"))
      assert.matches("lightning.plot.save: path must be a file name", H.error_of(L.plot.save, c, ""))
      assert.same({}, files_in(dir))
    end)

    it("replaces a file whole through a temporary file, and keeps the old one when a write fails", function()
      local path = dir .. "/chart.png"
      L.plot.save(L.plot.Canvas(8, 8), path)
      assert.same({"chart.png"}, files_in(dir))
      local before = H.read_file(path)
      L.plot.metrics(history(4), path)
      assert.same({"chart.png"}, files_in(dir))
      assert.equal("3x460x1240", tostring(L.data.read_png(path):size()))
      local replaced = H.read_file(path)
      assert.is_true(replaced ~= before)
      -- a failing call leaves the file as it was and no temporary files
      H.error_of(L.plot.metrics, {train_loss = {1, 2}, val_loss = {1}}, path)
      H.error_of(L.plot.save, L.plot.Canvas(8, 8), path .. "/x.png")
      assert.equal(replaced, H.read_file(path))
      assert.same({"chart.png"}, files_in(dir))
    end)
  end)
end)
