-- Shared by the specs: tolerant comparisons and small utilities.
local L = require "lightning"
local H = {}

-- Largest |a - b| / max(1, |b|) over all elements (tensors or nested tables or numbers).
local function flatten(x, out)
  out = out or {}
  if type(x) == "number" then out[#out + 1] = x
  elseif L.is_tensor(x) then flatten(x:totable(), out)
  else for _, v in ipairs(x) do flatten(v, out) end end
  return out
end
H.flatten = flatten

function H.max_rel_diff(a, b)
  local fa, fb = flatten(a), flatten(b)
  assert(#fa == #fb, ("element counts differ: %d and %d"):format(#fa, #fb))
  local worst = 0
  for i = 1, #fa do
    local d = math.abs(fa[i] - fb[i]) / math.max(1, math.abs(fb[i]))
    if d ~= d then d = math.huge end
    if d > worst then worst = d end
  end
  return worst
end

function H.assert_close(a, b, tol, what)
  tol = tol or 1e-5
  local d = H.max_rel_diff(a, b)
  assert(d <= tol, ("%s: max relative difference %.3g exceeds %.3g"):format(what or "values", d, tol))
end

-- The error message of f(...), which must fail.
function H.error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error, but the call succeeded")
  return tostring(err)
end

-- Asserts that f(...) fails with a message matching the Lua pattern.
function H.fails(pattern, f, ...)
  local msg = H.error_of(f, ...)
  assert(msg:find(pattern), ("error %q does not mention %q"):format(msg, pattern))
end

-- A fresh temporary directory, removed by the caller with H.rmdir.
function H.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

function H.rmdir(p)
  if p and p:match("^/tmp/") then os.execute("rm -rf '" .. p .. "'") end
end

function H.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function H.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

return H
