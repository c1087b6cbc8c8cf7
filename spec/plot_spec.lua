-- lightning.plot's drawing primitives, pixel by pixel: rectangles, anti-aliased lines and shapes, the
-- bitmap font, images, clipping, the colour map, ticks; and the bindings' argument checks.
local L = require "lightning"
local H = require "helpers"

local P = L.core.plot

-- The (r, g, b) of pixel (x, y), 1-based.
local function rgb(c, x, y)
  local t = c.tensor or c
  return t:get(1, y, x), t:get(2, y, x), t:get(3, y, x)
end

local function is_white(c, x, y)
  local r, g, b = rgb(c, x, y)
  return r == 1 and g == 1 and b == 1
end

-- Pixels that are not white, as a list of {x, y, darkness in [0, 1]} (darkness of the red channel).
local function ink(c)
  local t = c.tensor or c
  local out = {}
  local rows = t:select(1, 1):totable()
  for y, row in ipairs(rows) do
    for x, v in ipairs(row) do
      if v < 1 then out[#out + 1] = {x, y, 1 - v} end
    end
  end
  return out
end

describe("plot: canvas", function()
  it("starts as a white (3, H, W) tensor, or the background asked for", function()
    local c = L.plot.Canvas(5, 4)
    assert.equal("3x4x5", tostring(c.tensor:size()))
    assert.equal(5, c.width)
    assert.equal(4, c.height)
    assert.equal(1, c.tensor:min())
    local d = L.plot.Canvas(3, 2, {background = "#ff8000"})
    local r, g, b = rgb(d, 3, 2)
    assert.equal(1, r)
    assert.near(128 / 255, g, 1e-6)
    assert.equal(0, b)
  end)

  it("fills whole-pixel rectangles exactly, blending by opacity and clipping at the edges", function()
    local c = L.plot.Canvas(6, 5)
    c:rect(2, 3, 3, 2, "black")
    for y = 1, 5 do
      for x = 1, 6 do
        local inside = x >= 2 and x <= 4 and y >= 3 and y <= 4
        assert.equal(inside and 0 or 1, (rgb(c, x, y)), ("pixel %d,%d"):format(x, y))
      end
    end
    c:rect(1, 1, 1, 1, {1, 0, 0, 0.5})
    local r, g, b = rgb(c, 1, 1)
    assert.same({1, 0.5, 0.5}, {r, g, b})
    c:rect(-100, -100, 1000, 1000, "white")  -- clipped, covers everything
    assert.equal(1, c.tensor:min())
    c:rect(3, 3, 0, 5, "black")              -- empty
    assert.equal(1, c.tensor:min())
  end)

  it("draws a 1-pixel horizontal or vertical line on exactly the pixels it passes through", function()
    local c = L.plot.Canvas(12, 9)
    c:line(3, 5, 10, 5, {color = "black", width = 1})
    local pixels = ink(c)
    assert.equal(8, #pixels)
    for _, p in ipairs(pixels) do
      assert.equal(5, p[2])
      assert.is_true(p[1] >= 3 and p[1] <= 10)
      assert.equal(1, p[3])
    end
    local v = L.plot.Canvas(9, 12)
    v:line(4, 2, 4, 11, {width = 1})
    for _, p in ipairs(ink(v)) do
      assert.equal(4, p[1])
      assert.equal(1, p[3])
    end
    assert.equal(10, #ink(v))
  end)

  it("anti-aliases a diagonal line: full ink on the diagonal, partial beside it, symmetric", function()
    local c = L.plot.Canvas(20, 20)
    c:line(3, 3, 17, 17, {width = 1.5})
    local partial = 0
    for _, p in ipairs(ink(c)) do
      if p[3] < 1 then partial = partial + 1 end
      assert.is_true(math.abs(p[1] - p[2]) <= 2, "ink far from the diagonal")
    end
    assert.is_true(partial > 10, "no anti-aliased edge pixels")
    for i = 3, 17 do assert.equal(0, (rgb(c, i, i))) end
    for i = 4, 16 do assert.near((rgb(c, i + 1, i)), (rgb(c, i, i + 1)), 1e-6) end
  end)

  it("covers each pixel of a polyline once, so a translucent line has no darker joints", function()
    local c = L.plot.Canvas(30, 20)
    c:polyline({3, 15, 27}, {15, 4, 15}, {color = {0, 0, 0, 0.5}, width = 3})
    assert.near(0.5, c.tensor:min(), 1e-6)
    assert.near(0.5, (rgb(c, 15, 4)), 1e-6)
  end)

  it("leaves a gap at a NaN or missing value and restarts there", function()
    local c = L.plot.Canvas(40, 10)
    c:polyline({2, 10, 20, 30, 38}, {5, 5, 0 / 0, 5, 5}, {width = 1})
    for x = 11, 29 do assert.is_true(is_white(c, x, 5), "ink in the gap at x = " .. x) end
    assert.equal(0, (rgb(c, 6, 5)))
    assert.equal(0, (rgb(c, 34, 5)))
  end)

  it("dashes a line with the given on and off lengths", function()
    local c = L.plot.Canvas(44, 5)
    c:line(2, 3, 41, 3, {width = 1, dash = {4, 4}})
    local runs, inside = 0, false
    for x = 1, 44 do
      local on = not is_white(c, x, 3)
      if on and not inside then runs = runs + 1 end
      inside = on
    end
    assert.equal(5, runs)
    assert.equal(20, #ink(c))
  end)

  it("fills discs and convex polygons with the area they should have", function()
    local c = L.plot.Canvas(40, 40)
    c:circle(20, 20, 8, "black")
    local area = 0
    for _, p in ipairs(ink(c)) do
      area = area + p[3]
      assert.is_true((p[1] - 20) ^ 2 + (p[2] - 20) ^ 2 <= 9 ^ 2)
    end
    assert.near(math.pi * 64, area, 2)
    assert.equal(0, (rgb(c, 20, 20)))
    local s = L.plot.Canvas(40, 40)
    s:polygon({10.5, 10.5, 30.5, 10.5, 30.5, 20.5, 10.5, 20.5}, "black")  -- a 20 x 10 rectangle on pixel edges
    local total = 0
    for _, p in ipairs(ink(s)) do total = total + p[3] end
    assert.near(200, total, 1e-3)
    local tri = L.plot.Canvas(40, 40)
    tri:polygon({5, 35, 35, 35, 20, 5}, "black")   -- either winding
    local tri2 = L.plot.Canvas(40, 40)
    tri2:polygon({20, 5, 35, 35, 5, 35}, "black")
    H.assert_close(tri.tensor, tri2.tensor, 1e-6, "winding")
  end)

  it("draws markers of each shape centred on the point", function()
    for shape in pairs(L.plot.Canvas.MARKERS) do
      local c = L.plot.Canvas(21, 21)
      c:marker(11, 11, {shape = shape, size = 9, color = "black"})
      assert.equal(0, (rgb(c, 11, 11)), shape)
      local sx, sy, w = 0, 0, 0
      for _, p in ipairs(ink(c)) do sx, sy, w = sx + p[1] * p[3], sy + p[2] * p[3], w + p[3] end
      assert.near(11, sx / w, 0.05, shape)
      assert.is_true(w > 30 and w < 100, shape)
    end
  end)

  it("clips what is drawn into a sub-canvas to its rectangle, in its own coordinates", function()
    local c = L.plot.Canvas(30, 30)
    local sub = c:sub(11, 11, 10, 10)
    assert.equal(10, sub.width)
    sub:line(-50, 5, 80, 5, {width = 3})
    sub:circle(1, 1, 40, {0, 0, 1})
    for _, p in ipairs(ink(c)) do
      assert.is_true(p[1] >= 11 and p[1] <= 20 and p[2] >= 11 and p[2] <= 20, ("ink outside at %d,%d"):format(p[1], p[2]))
    end
    assert.equal(100, #ink(c))
    assert.is_nil(c:sub(40, 40, 5, 5))
  end)

  it("blits images by nearest neighbour, gray to RGB, clamping to [0, 1] and NaN to 0", function()
    local c = L.plot.Canvas(6, 6)
    local img = L.tensor{{{0.25, 0.5}, {0.75, 1}}}  -- (1, 2, 2)
    c:image(img, 2, 2, 4, 4)
    for y = 2, 5 do
      for x = 2, 5 do
        local want = img:get(1, (y - 2) // 2 + 1, (x - 2) // 2 + 1)
        local r, g, b = rgb(c, x, y)
        assert.same({want, want, want}, {r, g, b})
      end
    end
    assert.is_true(is_white(c, 1, 1) and is_white(c, 6, 6))
    local color = L.tensor{{{2}}, {{-1}}, {{0 / 0}}}  -- (3, 1, 1)
    c:image(color, 1, 1)
    assert.same({1, 0, 0}, {rgb(c, 1, 1)})
    c:image(L.zeros(3, 2, 2), -1, -1, 100, 100)  -- clipped
    assert.equal(0, c.tensor:max())
  end)
end)

describe("plot: text", function()
  it("measures text: 6 pixels a glyph less the last spacing, 9 rows, times the scale", function()
    local c = L.plot.Canvas(10, 10)
    assert.same({29, 9}, {c:text_size("Hello", 1)})
    assert.same({58, 18}, {c:text_size("Hello", 2)})
    assert.same({18, 58}, {c:text_size("Hello", 2, true)})
    assert.same({0, 9}, {c:text_size("", 1)})
    assert.same({11, 9}, {c:text_size("\xc3\xa9t", 1)})  -- a UTF-8 sequence is one glyph ('?')
  end)

  it("renders ink inside its box only, at every alignment and both orientations", function()
    for _, vertical in ipairs {false, true} do
      for _, align in ipairs {"left", "center", "right"} do
        for _, valign in ipairs {"top", "middle", "bottom"} do
          local c = L.plot.Canvas(120, 120)
          local x, y, w, h = c:text(60, 60, "Ag_9%", {scale = 2, align = align, valign = valign, vertical = vertical})
          local pixels = ink(c)
          assert.is_true(#pixels > 40, "no ink")
          for _, p in ipairs(pixels) do
            assert.is_true(p[1] >= x and p[1] < x + w and p[2] >= y and p[2] < y + h,
              ("%s/%s/%s: ink at %d,%d outside the box %d,%d %dx%d"):format(tostring(vertical), align, valign, p[1], p[2], x, y, w, h))
            assert.equal(1, p[3])  -- the font is not anti-aliased
          end
        end
      end
    end
  end)

  it("uses the glyph rows it should: capitals on the baseline, descenders below", function()
    local c = L.plot.Canvas(20, 20)
    c:text(1, 1, "I", {scale = 1})
    local rows = {}
    for _, p in ipairs(ink(c)) do rows[p[2]] = true end
    assert.is_true(rows[1] and rows[7] and not rows[8])
    local d = L.plot.Canvas(20, 20)
    d:text(1, 1, "p", {scale = 1})
    local bottom = 0
    for _, p in ipairs(ink(d)) do bottom = math.max(bottom, p[2]) end
    assert.equal(9, bottom)
    local blank = L.plot.Canvas(20, 20)
    blank:text(1, 1, "   ", {scale = 3})
    assert.equal(0, #ink(blank))
  end)

  it("reads vertical text upwards: the first glyph at the bottom", function()
    local c = L.plot.Canvas(20, 40)
    c:text(1, 1, "I.", {scale = 1, vertical = true})  -- '.' is 2 rows tall at the foot of its cell
    -- the 'I' spans the box's lower part, the '.' its upper part
    local min_y = math.huge
    for _, p in ipairs(ink(c)) do min_y = math.min(min_y, p[2]) end
    assert.is_true(min_y <= 5)
    -- the I's top bar (glyph row 1, columns 2-4) ends up in the first column, rows 10 to 8
    for y = 8, 10 do assert.equal(0, (rgb(c, 1, y))) end
    assert.equal(1, (rgb(c, 1, 11)))
  end)

  it("fits long text into a width: a smaller scale first, then shortened with a full stop", function()
    local c = L.plot.Canvas(10, 10)
    assert.same({"Accuracy", 3}, {c:fit_text("Accuracy", 3, 200)})
    assert.same({"Accuracy", 2}, {c:fit_text("Accuracy", 3, 100, 2)})
    local text, scale = c:fit_text("validation accuracy", 2, 100, 2)
    assert.equal(2, scale)
    assert.equal("validat.", text)  -- 8 glyphs: (8 * 6 - 1) * 2 = 94 pixels
    assert.is_true((c:text_size(text, scale)) <= 100)
    assert.equal("ab.", (c:fit_text("ab   cdefgh", 1, 25)))  -- no space before the stop
    assert.equal("", (c:fit_text("abcdef", 1, 5)))
  end)

  it("skips pixels off the canvas", function()
    local c = L.plot.Canvas(10, 10)
    c:text(-20, -3, "clipped text", {scale = 2})
    c:text(8, 8, "x", {scale = 4, vertical = true})
    assert.is_true(#ink(c) > 0)
  end)
end)

describe("plot: colour map and colours", function()
  -- matplotlib's _viridis_data[0], [128] and [255]
  local VIRIDIS = {[0] = {0.267004, 0.004874, 0.329415}, [128 / 255] = {0.127568, 0.566949, 0.550556},
    [1] = {0.993248, 0.906157, 0.143936}}

  it("is viridis: its end points and middle as matplotlib's within a 1/255 step", function()
    for t, want in pairs(VIRIDIS) do
      local got = L.plot.color.viridis(t)
      for i = 1, 3 do assert.near(want[i], got[i], 1.5 / 255, ("t = %g channel %d"):format(t, i)) end
    end
  end)

  it("clamps t and gets brighter all the way", function()
    assert.same(L.plot.color.viridis(0), L.plot.color.viridis(-3))
    assert.same(L.plot.color.viridis(1), L.plot.color.viridis(7))
    assert.same(L.plot.color.viridis(0), L.plot.color.viridis(0 / 0))
    local last = -1
    for i = 0, 50 do
      local l = L.plot.color.luminance(L.plot.color.viridis(i / 50))
      assert.is_true(l > last)
      last = l
    end
  end)

  it("parses hex, names and tables, and picks a contrasting text colour", function()
    local C = L.plot.color
    assert.same({1, 0, 0, 1}, C.parse("f", "c", "#f00"))
    assert.same({0, 0, 1, 0.4}, C.parse("f", "c", {0, 0, 1, 0.4}))
    assert.same(C.parse("f", "c", "#1f77b4"), C.parse("f", "c", "tab:blue"))
    assert.near(0x80 / 255, C.parse("f", "c", "#00000080")[4], 1e-12)
    assert.same({1, 1, 1, 1}, C.text_on(C.viridis(0)))
    assert.same({0, 0, 0, 1}, C.text_on(C.viridis(1)))
    assert.matches("f: c: unknown colour \"nope\"", H.error_of(C.parse, "f", "c", "nope"))
    assert.matches("f: c%[2%] must be a number in %[0, 1%], got 2", H.error_of(C.parse, "f", "c", {0, 2, 0}))
    assert.matches("f: c must be a colour", H.error_of(C.parse, "f", "c", 7))
  end)
end)

describe("plot: ticks", function()
  local T = require "lightning.plot.ticks"

  it("steps by 1, 2, 2.5 or 5 times a power of ten, at most max_ticks of them", function()
    local cases = {
      {0, 1, 6, false, {"0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
      {0.55, 10.45, 10, true, {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}},
      {0.55, 30.45, 10, true, {"5", "10", "15", "20", "25", "30"}},
      {1.2, 2.4, 5, false, {"1.25", "1.50", "1.75", "2.00", "2.25"}},
      {-3, 3, 7, false, {"-3", "-2", "-1", "0", "1", "2", "3"}},
      {0, 8, 4, true, {"0", "5"}},
      {0, 1e7, 5, false, {"0", "2.5e6", "5e6", "7.5e6", "1e7"}},
      {0.95, 1.05, 8, true, {"1"}},
    }
    for _, case in ipairs(cases) do
      local values, step = T.positions(case[1], case[2], case[3], case[4])
      assert.same(case[5], T.labels(values, step), ("%g..%g"):format(case[1], case[2]))
    end
  end)

  it("pads data limits by 5 % and widens a single value", function()
    assert.same({-0.05, 1.05}, {T.limits(0, 1)})
    assert.same({0.95, 1.05}, {T.limits(1, 1)})
    assert.same({-0.5, 0.5}, {T.limits(0, 0)})
    assert.same({0, 1}, {T.limits(nil, nil)})
  end)
end)

describe("plot: argument checks", function()
  it("names the Canvas method and what was wrong", function()
    local c = L.plot.Canvas(10, 10)
    assert.matches("lightning.plot.Canvas: width must be an integer in 1..32768, got 0", H.error_of(L.plot.Canvas, 0, 5))
    assert.matches("lightning.plot.Canvas: height must be an integer", H.error_of(L.plot.Canvas, 5, 2.5))
    assert.matches("lightning.plot.Canvas: unknown option 'colour'", H.error_of(L.plot.Canvas, 5, 5, {colour = "red"}))
    assert.matches("Canvas:line: width must be > 0, got %-1", H.error_of(c.line, c, 1, 1, 5, 5, {width = -1}))
    assert.matches("Canvas:line: x2 must be a finite number, got inf", H.error_of(c.line, c, 1, 1, math.huge, 5))
    assert.matches("Canvas:line: dash must be true or {on, off}", H.error_of(c.line, c, 1, 1, 5, 5, {dash = {1}}))
    assert.matches('Canvas:polyline: point 2: expected numbers, got "2"', H.error_of(c.polyline, c, {1, "2"}, {1, 2}))
    assert.matches("Canvas:polygon: points must be a list", H.error_of(c.polygon, c, {1, 2, 3, 4}))
    assert.matches("Canvas:marker: shape must be \"circle\"", H.error_of(c.marker, c, 1, 1, {shape = "star"}))
    assert.matches("Canvas:text: scale must be an integer in 1..16, got 0", H.error_of(c.text, c, 1, 1, "a", {scale = 0}))
    assert.matches("Canvas:text: align must be \"left\"", H.error_of(c.text, c, 1, 1, "a", {align = "middle-ish"}))
    assert.matches("Canvas:text: text must be a string, got table", H.error_of(c.text, c, 1, 1, {}))
    assert.matches("Canvas:image: image must be a %(C, H, W%) tensor with C = 1 or 3", H.error_of(c.image, c, L.zeros(2, 3, 3), 1, 1))
    assert.matches("Canvas:rect: color: unknown colour", H.error_of(c.rect, c, 1, 1, 2, 2, "blurple"))
  end)

  it("checks the bindings' arguments too: canvas shape, colours, coordinates, scales", function()
    local t = L.ones(3, 8, 8)
    assert.matches("lightning.core.plot.clear: argument 1 must be a %(3, H, W%) canvas tensor, got 2x8x8",
      H.error_of(P.clear, L.ones(2, 8, 8), 0, 0, 0))
    assert.matches("lightning.core.plot.clear: argument 1 must be a tensor, got nil", H.error_of(P.clear, nil, 0, 0, 0))
    assert.matches("must be a contiguous canvas or a rectangle of one",
      H.error_of(P.fill_rect, L.ones(8, 8, 3):permute(3, 1, 2), 1, 1, 2, 2, 0, 0, 0))
    assert.matches("lightning.core.plot.fill_rect: argument 7 must be a number in %[0, 1%], got 1.5",
      H.error_of(P.fill_rect, t, 1, 1, 2, 2, 0, 1.5, 0))
    assert.matches("argument 4 must be an integer in 0..1e9, got %-2", H.error_of(P.fill_rect, t, 1, 1, -2, 2, 0, 0, 0))
    assert.matches("lightning.core.plot.polyline: argument 2 must hold x, y pairs, got 3 numbers",
      H.error_of(P.polyline, t, {1, 2, 3}, 1, 0, 0, 0))
    assert.matches("coordinate 3 must be NaN %(a gap%) or within %+%-1e9, got 1e%+300",
      H.error_of(P.polyline, t, {1, 2, 1e300, 4}, 1, 0, 0, 0))
    assert.matches("argument 3 must be a line width in %(0, 1000%], got 0", H.error_of(P.polyline, t, {1, 2, 3, 4}, 0, 0, 0, 0))
    assert.matches("argument 9 must be > 0 for a dashed line", H.error_of(P.polyline, t, {1, 2, 3, 4}, 1, 0, 0, 0, 1, 3, 0))
    assert.matches("lightning.core.plot.fill_polygon: argument 2 must hold at least 3 points, got 2",
      H.error_of(P.fill_polygon, t, {1, 2, 3, 4}, 0, 0, 0))
    assert.matches("lightning.core.plot.fill_circle: argument 2 must be a finite coordinate", H.error_of(P.fill_circle, t, 0 / 0, 1, 1, 0, 0, 0))
    assert.matches("lightning.core.plot.text: argument 5 must be a text scale in 1..16, got 17",
      H.error_of(P.text, t, 1, 1, "a", 17, false, 0, 0, 0))
    assert.matches("lightning.core.plot.text_size: argument 1 must be a string, got number", H.error_of(P.text_size, 5, 1))
    assert.matches("lightning.core.plot.blit: argument 2 must be an image %(C, H, W%) with C = 1 or 3, or %(H, W%), got 4x2x2",
      H.error_of(P.blit, t, L.zeros(4, 2, 2), 1, 1, 2, 2))
    assert.matches("lightning.core.plot.colormap: argument 1 must be a number, got string", H.error_of(P.colormap, "x"))
  end)
end)
