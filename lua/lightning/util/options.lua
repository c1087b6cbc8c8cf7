--- The one option checker of the library: every constructor (layers, losses, optimizers, schedulers,
-- callbacks, loggers, the Trainer, data sets and modules, plots) checks its options table here, so that
-- every mistake reads the same way and points at the line that made it:
--   <function>: unknown option 'max_epoch' (did you mean 'max_epochs'?) (known: a, b, c)
--   <function>: <name> must be <what it must be>, got <the value>
--   <function>: option <name> is required (it has no default)
--   <function>: expected a table of options, got <the value>
-- Errors are raised at the caller's line: the first function on the stack outside lightning's Lua
-- files (a C function such as pcall adds no position; a caller that tail-calls the constructor has
-- left the stack, so its own caller is named).
--
--   local options = require "lightning.util.options"
--   local o = options.check("ModelCheckpoint", opts, {
--     monitor = {kind = "string"},                          -- no default: nil when not given
--     save_top_k = {kind = "integer", min = -1, default = 1},
--     mode = {kind = "string", one_of = {"min", "max"}, default = "min"},
--   })
-- A spec: kind ("number", "integer", "boolean", "string", "function", "table", "tensor", "any", or a list
-- of them meaning any of them; LIST_KINDS below has the list kinds of the optimizers: betas, numbers,
-- number_or_list, integers, function_or_list), default,
-- required = true, min / above / max / below (number and integer bounds: min <= v, above < v, v <= max,
-- v < below), one_of = {...} (the allowed values), finite = true (no infinities; NaN is always refused
-- for numbers), or a test of its own: test = function(v) return ok end with expected = "<what it must
-- be>", or check = function(v) return nil or the whole message end.
local core = require "lightning.core"
local class = require "lightning.class"
local closest = require "lightning.util.closest"

local options = {}

-- ---- how values appear in messages ----

--- A value as messages show it: numbers as Lua reads them back (1.5, -2, nan, inf), strings quoted,
-- tensors as "tensor", class instances by their class name, other tables as "table".
function options.describe(v)
  local t = type(v)
  if t == "number" then
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
    if math.type(v) == "integer" then return ("%d"):format(v) end
    if v == math.floor(v) and math.abs(v) < 1e16 then return ("%.1f"):format(v) end
    for digits = 1, 17 do
      local text = ("%." .. digits .. "g"):format(v)
      if tonumber(text) == v then return text end
    end
  elseif t == "string" then
    return ("%q"):format(v)
  elseif t == "nil" or t == "boolean" then
    return tostring(v)
  elseif core.is_tensor(v) then
    return "tensor"
  elseif t == "table" then
    return class.name_of(v)
  end
  return t
end
local describe = options.describe

-- ---- raising at the caller's line ----

-- The library's Lua files share this prefix of their chunk names ("@.../lua/lightning/").
local this_file = debug.getinfo(1, "S").source
local LIBRARY = this_file:sub(1, #this_file - #"util/options.lua")

local function in_library(info)
  return info.what ~= "C" and info.source:sub(1, #LIBRARY) == LIBRARY
end

--- Raises msg at the first stack frame outside the library: the user's line (or none, when that frame
-- is a C function such as pcall).
function options.raise(msg)
  local level = 2  -- 1 is this function
  while true do
    local info = debug.getinfo(level, "S")
    if info == nil then error(msg, 0) end
    if not in_library(info) then break end
    level = level + 1
  end
  error(msg, level)
end

--- Raises "<fname>: <fmt formatted with ...>" at the caller's line. fname may be the object being
-- built: its class names it (a subclass's constructor errors under the name the user called).
function options.fail(fname, fmt, ...)
  if type(fname) == "table" then fname = class.name_of(fname) end
  local text = select("#", ...) > 0 and fmt:format(...) or fmt
  options.raise(fname and fname ~= "" and (fname .. ": " .. text) or text)
end
local fail = options.fail

-- ---- what a value must be ----

local function is_integer(v)
  return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53)
end

--- v as an integer when it is a whole number >= 1 (a float of 2^53 or more is not: it need not be the
-- integer that was written); else nil and what it is not: "an integer" or "positive". The test behind
-- lightning.util.checks.positive_int, which words its errors.
function options.positive_int(v)
  if not is_integer(v) then return nil, "an integer" end
  if v < 1 then return nil, "positive" end
  return math.tointeger(v)
end

-- " >= 0", " > 0", " in [0, 1)", " <= 1" or "" for the bounds of a spec.
local function range_text(spec)
  local lo, lo_open = spec.min, false
  if spec.above ~= nil then lo, lo_open = spec.above, true end
  local hi, hi_open = spec.max, false
  if spec.below ~= nil then hi, hi_open = spec.below, true end
  if lo ~= nil and hi ~= nil then
    return (" in %s%s, %s%s"):format(lo_open and "(" or "[", describe(lo), describe(hi), hi_open and ")" or "]")
  elseif lo ~= nil then
    return (lo_open and " > " or " >= ") .. describe(lo)
  elseif hi ~= nil then
    return (hi_open and " < " or " <= ") .. describe(hi)
  end
  return ""
end

local function in_range(spec, v)
  return (spec.min == nil or v >= spec.min) and (spec.above == nil or v > spec.above)
    and (spec.max == nil or v <= spec.max) and (spec.below == nil or v < spec.below)
end

--- "a", "b" or "c" for a list of allowed values.
function options.choices(list)
  local parts = {}
  for i, v in ipairs(list) do parts[i] = describe(v) end
  if #parts < 2 then return parts[1] or "nothing" end
  return table.concat(parts, ", ", 1, #parts - 1) .. " or " .. parts[#parts]
end

-- kind -> {expected(spec), fits(spec, v)}
local KINDS = {
  number = {function(spec) return "a number" .. range_text(spec) end,
    function(spec, v)
      return type(v) == "number" and v == v and not (spec.finite and (v == math.huge or v == -math.huge))
        and in_range(spec, v)
    end},
  integer = {function(spec) return "an integer" .. range_text(spec) end,
    function(spec, v) return is_integer(v) and in_range(spec, v) end},
  string = {function(spec) return spec.one_of and options.choices(spec.one_of) or "a string" end,
    function(spec, v)
      if type(v) ~= "string" then return false end
      if not spec.one_of then return true end
      for _, allowed in ipairs(spec.one_of) do if v == allowed then return true end end
      return false
    end},
  tensor = {function() return "a tensor" end, function(_, v) return core.is_tensor(v) end},
  any = {function() return "anything" end, function() return true end},  -- checked elsewhere
}
for _, kind in ipairs {"boolean", "function", "table"} do
  KINDS[kind] = {function() return "a " .. kind end, function(_, v) return type(v) == kind end}
end

-- The list kinds of the optimizers and schedulers: name -> problem(spec, v) (nil when v fits).
local LIST_KINDS = {}

function LIST_KINDS.betas(spec, v)
  if type(v) ~= "table" or #v ~= 2 then return "must be a table of two numbers {beta1, beta2}, got " .. describe(v) end
  for i = 1, 2 do
    local b = v[i]
    if type(b) ~= "number" or not (b >= 0 and b < 1) then
      return ("must hold two numbers in [0, 1), got %s at position %d"):format(describe(b), i)
    end
  end
end

local function number_problem(spec, v)
  if not KINDS.number[2](spec, v) then return ("must be %s, got %s"):format(KINDS.number[1](spec), describe(v)) end
end

local function list_of_numbers(spec, v, what)
  if type(v) ~= "table" then return ("must be %s, got %s"):format(what, describe(v)) end
  for i, x in ipairs(v) do
    local p = number_problem(spec, x)
    if p then return ("[%d] %s"):format(i, p) end
  end
end

function LIST_KINDS.numbers(spec, v) return list_of_numbers(spec, v, "a list of numbers") end

function LIST_KINDS.number_or_list(spec, v)
  if type(v) == "number" then return number_problem(spec, v) end
  return list_of_numbers(spec, v, "a number or a list of numbers")
end

function LIST_KINDS.integers(spec, v)
  if type(v) ~= "table" then return "must be a list of integers, got " .. describe(v) end
  for i, x in ipairs(v) do
    if not is_integer(x) then return ("must be a list of integers, got %s at position %d"):format(describe(x), i) end
  end
end

function LIST_KINDS.function_or_list(spec, v)
  if type(v) == "function" then return nil end
  if type(v) ~= "table" then return "must be a function or a list of functions, got " .. describe(v) end
  for i, f in ipairs(v) do
    if type(f) ~= "function" then return ("must be a list of functions, got %s at position %d"):format(describe(f), i) end
  end
end

--- What a value of this spec must be ("an integer >= 1", "a boolean or an integer >= 0").
function options.expected(spec)
  if spec.expected then return spec.expected end
  local kinds = type(spec.kind) == "table" and spec.kind or {spec.kind}
  local parts = {}
  for i, kind in ipairs(kinds) do
    local k = KINDS[kind]
    if not k then error("options.expected: unknown kind " .. tostring(kind), 2) end
    parts[i] = k[1](spec)
  end
  return table.concat(parts, " or ")
end

--- nil when value fits spec, else the message "<name> must be ..., got ..." (or the spec's own).
-- Allocates nothing when the value fits (optimizers check their groups at every step).
function options.problem(spec, value, name)
  if spec.check then return spec.check(value) end
  local list_kind = LIST_KINDS[spec.kind]
  if list_kind then
    local p = list_kind(spec, value)
    return p and (name .. " " .. p)
  end
  local fits
  if spec.test then
    fits = spec.test(value)
  elseif type(spec.kind) == "table" then
    fits = false
    for _, kind in ipairs(spec.kind) do fits = fits or KINDS[kind][2](spec, value) end
  else
    local k = KINDS[spec.kind]
    if not k then error("options.problem: unknown kind " .. tostring(spec.kind), 2) end
    fits = k[2](spec, value)
  end
  if fits then return nil end
  return ("%s must be %s, got %s"):format(name, options.expected(spec), describe(value))
end

--- Raises "<fname>: <where><name> must be ..., got ..." when value does not fit spec.
function options.check_value(fname, where, name, spec, value)
  local p = options.problem(spec, value, name)
  if p then fail(fname, "%s%s", where or "", p) end
  return value
end

-- ---- names ----

local sorted_cache = setmetatable({}, {__mode = "k"})

--- The names of a spec table as sorted strings (cached per table: spec tables do not change).
function options.sorted_names(t)
  local names = sorted_cache[t]
  if not names then
    names = {}
    for k in pairs(t) do names[#names + 1] = tostring(k) end
    table.sort(names)
    sorted_cache[t] = names
  end
  return names
end

--- The keys of any table as sorted strings (not cached).
function options.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end

local function quoted(name)
  return type(name) == "string" and ("'%s'"):format(name) or ("[%s]"):format(describe(name))
end

--- Raises when t has names that neither known nor extra (sets of names) holds. The message names
-- all of them, suggests the closest known name for each, and lists the known ones.
function options.check_names(fname, where, t, known, extra)
  local unknown
  for name in pairs(t) do
    if known[name] == nil and not (extra and extra[name]) then
      unknown = unknown or {}
      unknown[#unknown + 1] = name
    end
  end
  if not unknown then return end
  table.sort(unknown, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for i, name in ipairs(unknown) do
    local near = closest.suggestion(name, known)
    parts[i] = quoted(name) .. (near and (" (did you mean '%s'?)"):format(near) or "")
  end
  fail(fname, "%sunknown option%s %s (known: %s)", where or "", #unknown > 1 and "s" or "", table.concat(parts, ", "),
    table.concat(options.sorted_names(known), ", "))
end

--- The same for the entries of a saved state: "unknown entry 'T_max' (a StepLR keeps ...)".
function options.check_entries(fname, where, t, known, owner)
  local unknown = {}
  for key in pairs(t) do
    if known[key] == nil then unknown[#unknown + 1] = quoted(key) end
  end
  if #unknown == 0 then return end
  table.sort(unknown)
  fail(fname, "%sunknown entr%s %s (a%s %s keeps %s)", where or "", #unknown > 1 and "ies" or "y",
    table.concat(unknown, ", "), owner:match("^[AEIOU]") and "n" or "", owner,
    table.concat(options.sorted_names(known), ", "))
end

-- ---- whole option tables ----

--- A deep copy of plain values (defaults that are tables are copied for each user).
function options.copy(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = options.copy(x) end
  return c
end

--- Checks that opts is nil or a table of options.
function options.check_table(fname, opts)
  if opts ~= nil and (type(opts) ~= "table" or getmetatable(opts) ~= nil) then
    fail(fname, "expected a table of options, got %s", describe(opts))
  end
  return opts or {}
end

--- Checks opts (nil or a table) against specs {name = spec} and returns a new table with the defaults
-- filled in (integral floats of integer options become integers). settings (optional):
-- where = a prefix of messages ("parameter group 2: "), allow = a set of further names passed through
-- unchecked.
function options.check(fname, opts, specs, settings)
  opts = options.check_table(fname, opts)
  local where = settings and settings.where or ""
  local allow = settings and settings.allow
  options.check_names(fname, where, opts, specs, allow)
  local out = {}
  for _, name in ipairs(options.sorted_names(specs)) do
    local spec = specs[name]
    local v = opts[name]
    if v == nil then v = options.copy(spec.default) end
    if v == nil then
      if spec.required then fail(fname, "%soption %s is required (it has no default)", where, name) end
    else
      options.check_value(fname, where, name, spec, v)
      if spec.kind == "integer" then v = math.tointeger(v) or v end
      out[name] = v
    end
  end
  if allow then
    for name in pairs(allow) do out[name] = opts[name] end
  end
  return out
end

return options
