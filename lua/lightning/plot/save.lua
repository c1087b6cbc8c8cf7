--- save(canvas, path): writes a Canvas (or a (3, H, W) tensor in [0, 1]) as an 8-bit RGB PNG through
-- L.data.write_png, atomically (a temporary file renamed over path: a failed write leaves any earlier
-- file intact). The folder must exist; the message says so when it does not.
local L = require "lightning"
local U = require "lightning.util.checks"

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- true when path names an existing folder (opening a folder for reading succeeds on POSIX systems;
-- reading from it fails with EISDIR).
local function is_dir(path)
  local f = io.open(path == "" and "/" or path, "rb")
  if not f then return false end
  local _, _, code = f:read(1)
  f:close()
  return code == 21
end

local function save(canvas, path, fname)
  fname = fname or "lightning.plot.save"
  local t = canvas
  if type(canvas) == "table" and L.is_tensor(canvas.tensor) then t = canvas.tensor end
  if not L.is_tensor(t) or t:dim() ~= 3 or t:size(1) ~= 3 then
    U.fail(fname, "expected a Canvas or a (3, H, W) tensor, got %s", L.is_tensor(t) and tostring(t:size()) or U.describe(t))
  end
  if type(path) ~= "string" or path == "" then U.fail(fname, "path must be a file name, got %s", U.describe(path)) end
  if path:sub(-1) == "/" or is_dir(path) then U.fail(fname, "path %s is a folder, expected a file name", path) end
  local dir = dirname(path)
  if not is_dir(dir) then
    U.fail(fname, "cannot write %s: the folder %s does not exist (create it first)", path, dir)
  end
  local ok, err = pcall(L.data.write_png, path, t)
  if not ok then
    U.fail(fname, "cannot write %s: %s", path, tostring(err):gsub("^.-lightning%.data%.write_png: ", ""))
  end
  return path
end

return save
