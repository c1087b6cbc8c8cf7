-- The error paths of the bindings that hold C memory across a Lua call (loaded by
-- spec/bindings_leaks_spec.lua, in the spec's process or in a child under LeakSanitizer). Each scenario
-- runs with Lua's allocator failing at its first, second, third, ... allocation, until it completes: so
-- every raise that an allocation can cause is taken once. One scenario also raises from a metamethod.
-- rounds(dir, n) runs them all n times.
local L = require "lightning"
local core = require "lightning.core"
local H = require "helpers"
local T = core.testing

local S = {}

local function every_failure_point(f, ...)
  for n = 0, 5000 do
    local ok = T.with_failing_allocations(n, f, ...)
    if ok then return n end
  end
  error("never completed")
end

-- Files the scenarios read: a 256x256 PNG (a leaked decode is 192 KB), a folder of images with broken
-- ones (a report of messages), a safetensors file, a folder of 200 names.
function S.setup(dir)
  local img = L.rand(3, 256, 256)
  L.data.write_png(dir .. "/big.png", img)
  for _, class in ipairs({"a", "b"}) do
    os.execute(("mkdir -p '%s/images/%s'"):format(dir, class))
    L.data.write_png(("%s/images/%s/ok.png"):format(dir, class), L.rand(3, 8, 8))
    for i = 1, 20 do H.write_file(("%s/images/%s/bad%d.png"):format(dir, class, i), "\137PNG broken") end
  end
  L.save_safetensors(dir .. "/w.safetensors", {a = L.rand(64, 64), b = L.rand(10)}, {k = "v"})
  os.execute("mkdir -p '" .. dir .. "/names'")
  for i = 1, 200 do H.write_file(("%s/names/file%03d"):format(dir, i), "") end
end

function S.rounds(dir, rounds)
  local png_bytes = H.read_file(dir .. "/big.png")
  local image = L.rand(3, 256, 256)
  local pipe = core.data.pipeline({{op = "hflip", p = 1}, {op = "normalize", values = {0.5}, stds = {0.5}}})
  local K = 200
  local cm = core.metrics.ConfusionMatrix(K)
  local full_row = {}
  for j = 1, K do full_row[j] = 1 end
  local raising_row = setmetatable({}, {__len = function() return K end,
    __index = function(_, j) if j == K // 2 then error("a metamethod raises") end return 1 end})
  local rows, good_rows = {}, {}
  for i = 1, K do rows[i] = i == K - 1 and raising_row or full_row; good_rows[i] = full_row end
  local big = L.rand(40, 40)

  local timing = os.getenv("LEAK_TIMING")
  local function run(name, f, ...)
    local t0 = os.clock()
    local n = every_failure_point(f, ...)
    if timing then print(("%-14s %4d failure points %.3f s"):format(name, n, os.clock() - t0)) end
  end
  for _ = 1, rounds do
    run("read_png", L.data.read_png, dir .. "/big.png")
    run("decode_png", L.data.decode_png, png_bytes)
    run("apply", function() return pipe:apply(image, 1) end)
    run("per_class", function() return cm:per_class() end)
    run("counts", function() return cm:counts() end)
    assert(not pcall(cm.set_counts, cm, rows))                 -- raises from __index, halfway
    run("set_counts", function() return cm:set_counts(good_rows) end)
    run("image_folder", core.data.image_folder, dir .. "/images", 3, 0, 0, true)
    run("listdir", core.io.listdir, dir .. "/names")
    run("tostring", tostring, big)
    run("load", L.load_safetensors, dir .. "/w.safetensors")
    run("metadata", core.io.safetensors_metadata, dir .. "/w.safetensors")
    run("save", L.save_safetensors, dir .. "/out.safetensors", {x = big}, {m = "1"})
  end
end

return S
