--- Option checking shared by the optimizers and schedulers: each option has a spec, and a value that
-- does not fit it gives a message that names the option, says what was expected and what was given.
--   {kind = "number", min = 0, above = 0, max = 1, below = 1}   not NaN; min <= v, above < v, v <= max, v < below
--   {kind = "integer", min = 1}
--   {kind = "boolean"} / {kind = "function"} / {kind = "table"}
--   {kind = "string", one_of = {"min", "max"}}
--   {kind = "betas"}                      two numbers in [0, 1)
--   {kind = "numbers", min = 0}           a list of numbers (each checked like "number")
--   {kind = "number_or_list", min = 0}    a number, or a list with one number per parameter group
--   {kind = "integers"}                   a list of integers
--   {kind = "function_or_list"}           a function, or a list of functions
-- A spec may also carry default = value and required = true.
local L = require "lightning"

local check = {}

--- "tensor" for tensors, the value for numbers and strings, the type otherwise.
function check.describe(v)
  if L.is_tensor(v) then return "tensor" end
  if type(v) == "number" then return v ~= v and "nan" or ("%.6g"):format(v) end
  if type(v) == "string" then return ("%q"):format(v) end
  return type(v)
end
local describe = check.describe

local function is_integer(v)
  return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and math.abs(v) < 2^53)
end

local function number_problem(spec, v)
  if type(v) ~= "number" or v ~= v then return "must be a number, got " .. describe(v) end
  if spec.min and v < spec.min then
    return ("must be %s, got %s"):format(spec.min == 0 and "non-negative" or ">= " .. spec.min, describe(v))
  end
  if spec.above and v <= spec.above then
    return ("must be %s, got %s"):format(spec.above == 0 and "positive" or "> " .. spec.above, describe(v))
  end
  if spec.max and v > spec.max then return ("must be <= %s, got %s"):format(spec.max, describe(v)) end
  if spec.below and v >= spec.below then return ("must be below %s, got %s"):format(spec.below, describe(v)) end
end

--- nil when value fits spec, else what is wrong ("must be ..., got ...").
function check.problem(spec, value)
  local kind = spec.kind
  if kind == "number" then return number_problem(spec, value)
  elseif kind == "integer" then
    if not is_integer(value) then return "must be an integer, got " .. describe(value) end
    if spec.min and value < spec.min then return ("must be >= %d, got %s"):format(spec.min, describe(value)) end
  elseif kind == "boolean" or kind == "function" or kind == "table" then
    if type(value) ~= kind then return ("must be a %s, got %s"):format(kind, describe(value)) end
  elseif kind == "string" then
    local ok = type(value) == "string"
    if ok and spec.one_of then
      ok = false
      for _, s in ipairs(spec.one_of) do ok = ok or s == value end
    end
    if not ok then
      return ("must be %s, got %s"):format(spec.one_of and "one of \"" .. table.concat(spec.one_of, "\", \"") .. "\""
        or "a string", describe(value))
    end
  elseif kind == "betas" then
    if type(value) ~= "table" or #value ~= 2 then
      return "must be a table of two numbers {beta1, beta2}, got " .. describe(value)
    end
    for i = 1, 2 do
      local b = value[i]
      if type(b) ~= "number" or not (b >= 0 and b < 1) then
        return ("must hold two numbers in [0, 1), got %s at position %d"):format(describe(b), i)
      end
    end
  elseif kind == "numbers" or kind == "number_or_list" then
    if kind == "number_or_list" and type(value) == "number" then return number_problem(spec, value) end
    if type(value) ~= "table" then
      return ("must be %s, got %s"):format(kind == "numbers" and "a list of numbers" or "a number or a list of numbers",
        describe(value))
    end
    for i, v in ipairs(value) do
      local p = number_problem(spec, v)
      if p then return ("[%d] %s"):format(i, p) end
    end
  elseif kind == "integers" then
    if type(value) ~= "table" then return "must be a list of integers, got " .. describe(value) end
    for i, v in ipairs(value) do
      if not is_integer(v) then return ("must be a list of integers, got %s at position %d"):format(describe(v), i) end
    end
  elseif kind == "function_or_list" then
    if type(value) == "function" then return nil end
    if type(value) ~= "table" then return "must be a function or a list of functions, got " .. describe(value) end
    for i, v in ipairs(value) do
      if type(v) ~= "function" then return ("must be a list of functions, got %s at position %d"):format(describe(v), i) end
    end
  else
    error("check.problem: unknown kind " .. tostring(kind))
  end
end

--- Raises "<fname>: <where><name> <problem>" when value does not fit.
function check.value(fname, where, name, spec, value)
  local p = check.problem(spec, value)
  if p then error(("%s: %s%s %s"):format(fname, where, name, p), 0) end
end

function check.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end

local function unknown_keys(t, specs, extra)
  local unknown = {}
  for key in pairs(t) do
    if not (specs[key] or (extra and extra[key])) then unknown[#unknown + 1] = "'" .. tostring(key) .. "'" end
  end
  table.sort(unknown)
  return unknown
end

--- Raises when options has keys that specs lacks (and that extra, if given, does not allow); the
-- message names them all.
function check.known(fname, where, options, specs, extra)
  local unknown = unknown_keys(options, specs, extra)
  if #unknown > 0 then
    error(("%s: %sunknown option%s %s (known: %s)"):format(fname, where, #unknown > 1 and "s" or "",
      table.concat(unknown, ", "), table.concat(check.sorted_keys(specs), ", ")), 0)
  end
end

--- The same for the entries of a saved state: "unknown entry 'T_max' (a StepLR keeps ...)".
function check.known_entries(fname, where, t, specs, owner)
  local unknown = unknown_keys(t, specs)
  if #unknown > 0 then
    error(("%s: %sunknown entr%s %s (a%s %s keeps %s)"):format(fname, where, #unknown > 1 and "ies" or "y",
      table.concat(unknown, ", "), owner:match("^[AEIOU]") and "n" or "", owner,
      table.concat(check.sorted_keys(specs), ", ")), 0)
  end
end

--- Options filled from defaults and checked: unknown names, missing required ones, wrong values.
function check.options(fname, options, specs)
  if options == nil then options = {} end
  if type(options) ~= "table" then error(("%s: the options must be a table, got %s"):format(fname, describe(options)), 0) end
  check.known(fname, "", options, specs)
  local out = {}
  for name, spec in pairs(specs) do
    local v = options[name]
    if v == nil then v = spec.default end
    if v == nil then
      if spec.required then error(("%s: option %s is required"):format(fname, name), 0) end
    else
      check.value(fname, "", name, spec, v)
      out[name] = v
    end
  end
  return out
end

function check.copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = check.copy(x) end
  return c
end

return check
