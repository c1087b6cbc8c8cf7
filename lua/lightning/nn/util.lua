--- Helpers shared by the layers: option tables with checked names, pairs like kernel_size, input checks.
local L = require "lightning"
local util = {}

--- Checks that opts (nil or a table) only has keys among `defaults`, and returns a table with the
-- defaults filled in. fname names the constructor in errors.
function util.options(fname, opts, defaults)
  if opts ~= nil and type(opts) ~= "table" then
    error(("%s: options must be a table, got %s"):format(fname, type(opts)), 3)
  end
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(opts or {}) do
    if defaults[k] == nil then
      local names = {}
      for name in pairs(defaults) do names[#names + 1] = name end
      table.sort(names)
      error(("%s: unknown option '%s' (expected one of: %s)"):format(fname, tostring(k), table.concat(names, ", ")), 3)
    end
    out[k] = v
  end
  return out
end

-- Marks an option whose default is "not given" (nil can't be stored in a defaults table).
util.NONE = setmetatable({}, {__tostring = function() return "none" end})

function util.value(v) if v == util.NONE then return nil end return v end

--- A positive integer, or an error naming the argument.
function util.positive_int(fname, what, v)
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    error(("%s: %s must be an integer, got %s"):format(fname, what, type(v) == "number" and tostring(v) or type(v)), 3)
  end
  if v < 1 then error(("%s: %s must be positive, got %d"):format(fname, what, v), 3) end
  return math.tointeger(v)
end

--- A number or a pair {h, w} as two integers; `min` is the smallest allowed value.
function util.pair(fname, what, v, min)
  local h, w
  if type(v) == "table" then h, w = v[1], v[2] else h, w = v, v end
  for _, x in ipairs({h, w}) do
    if type(x) ~= "number" or x ~= math.floor(x) then
      error(("%s: %s must be an integer or a pair of integers, got %s"):format(fname, what, tostring(v)), 3)
    end
    if x < min then error(("%s: %s must be at least %d, got %s"):format(fname, what, min, tostring(x)), 3) end
  end
  return math.tointeger(h), math.tointeger(w)
end

--- The input must be a tensor of one of the given dimension counts.
function util.check_input(fname, x, dims)
  if not L.is_tensor(x) then error(("%s: input must be a tensor, got %s"):format(fname, type(x)), 3) end
  if dims then
    for _, d in ipairs(dims) do if x:dim() == d then return x end end
    local want = {}
    for i, d in ipairs(dims) do want[i] = d .. "-D" end
    error(("%s: expected a %s input, got a %d-D tensor of size %s"):format(fname, table.concat(want, " or "), x:dim(),
      tostring(x:size())), 3)
  end
  return x
end

function util.check_grad(fname, g)
  if not L.is_tensor(g) then error(("%s: grad_output must be a tensor, got %s"):format(fname, type(g)), 3) end
  return g
end

--- PyTorch's default initialisation of Linear and Conv2d: kaiming_uniform(a = sqrt(5)) for the weight,
-- which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
function util.reset_uniform(weight, bias, fan_in)
  local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
  weight:uniform(-bound, bound)
  if bias then bias:uniform(-bound, bound) end
end

return util
