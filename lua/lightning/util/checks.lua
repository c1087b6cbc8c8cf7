--- Argument checks shared by the library's Lua modules (lightning.data, lightning.plot). Errors name the
-- function as the user calls it.
local fs = require "lightning.util.fs"
local options = require "lightning.util.options"

local U = {}

-- Messages, values and option names as everywhere in the library (lightning.util.options).
U.fail = options.fail
U.describe = options.describe
local describe = U.describe

--- Checks that opts (a table or nil) has only the allowed keys (a list of names); returns it (or {}).
function U.check_options(fname, opts, allowed)
  if opts == nil then return {} end
  options.check_table(fname, opts)
  local known = {}
  for _, k in ipairs(allowed) do known[k] = true end
  options.check_names(fname, "", opts, known)
  return opts
end

local function is_int(v)
  return type(v) == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53
end

--- A positive integer, or an error naming the argument and what it is not: "<what> must be an integer,
-- got ..." or "<what> must be positive, got ..." (the test: lightning.util.options.positive_int). The
-- library's one such checker: the layers' (lightning.nn.util) is this one.
function U.positive_int(fname, what, v)
  local n, wrong = options.positive_int(v)
  if not n then U.fail(fname, "%s must be %s, got %s", what, wrong, describe(v)) end
  return n
end

function U.nonneg_int(fname, what, v)
  if not is_int(v) or v < 0 then U.fail(fname, "%s must be a non-negative integer, got %s", what, describe(v)) end
  return math.tointeger(v)
end

function U.number(fname, what, v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    U.fail(fname, "%s must be a finite number, got %s", what, describe(v))
  end
  return v
end

function U.boolean(fname, what, v, default)
  if v == nil then return default end
  if type(v) ~= "boolean" then U.fail(fname, "%s must be a boolean, got %s", what, describe(v)) end
  return v
end

--- A number or a list of numbers, as a list (1 to max entries).
function U.numbers(fname, what, v, max)
  if type(v) == "number" then v = {v} end
  if type(v) ~= "table" or #v < 1 or #v > max then
    U.fail(fname, "%s must be a number or a list of 1 to %d numbers, got %s", what, max, describe(v))
  end
  local out = {}
  for i = 1, #v do out[i] = U.number(fname, ("%s[%d]"):format(what, i), v[i]) end
  return out
end

--- Image size: n or {n} (square) or {h, w}, as {h, w}.
function U.size2(fname, what, v)
  if type(v) == "number" then v = {v} end
  if type(v) ~= "table" or #v < 1 or #v > 2 then
    U.fail(fname, "%s must be a positive integer or {height, width}, got %s", what, describe(v))
  end
  local h = U.positive_int(fname, what, v[1])
  local w = U.positive_int(fname, what, v[2] or v[1])
  return {h, w}
end

U.file_exists = fs.exists

--- A path quoted for the shell.
function U.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

return U
