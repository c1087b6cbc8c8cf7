--- Helpers shared by the layers: option tables (lightning.util.options), pairs like kernel_size, input checks.
local L = require "lightning"
local options = require "lightning.util.options"
local util = {}

local fail, describe = options.fail, options.describe

--- Checks a layer's options against specs (see lightning.util.options) and returns them with the
-- defaults filled in. fname names the constructor in errors.
util.options = options.check

--- The spec of a size option given as a number or a pair {h, w} (util.pair checks it further).
util.PAIR = {test = function(v) return type(v) == "number" or type(v) == "table" end,
  expected = "an integer or a pair of integers"}

--- A copy of spec with another default.
function util.with_default(spec, default)
  local copy = {default = default}
  for k, v in pairs(spec) do if k ~= "default" then copy[k] = v end end
  return copy
end

--- A positive integer, or an error naming the argument (lightning.util.checks.positive_int).
util.positive_int = require("lightning.util.checks").positive_int

--- A number or a pair {h, w} as two integers; `min` is the smallest allowed value.
function util.pair(fname, what, v, min)
  local h, w
  if type(v) == "table" then h, w = v[1], v[2] else h, w = v, v end
  for _, x in ipairs({h, w}) do
    if type(x) ~= "number" or x ~= math.floor(x) then
      fail(fname, "%s must be an integer or a pair of integers, got %s", what, describe(v))
    end
    if x < min then fail(fname, "%s must be at least %d, got %s", what, min, describe(x)) end
  end
  return math.tointeger(h), math.tointeger(w)
end

--- The input must be a tensor of one of the given dimension counts.
function util.check_input(fname, x, dims)
  if not L.is_tensor(x) then fail(fname, "input must be a tensor, got %s", describe(x)) end
  if dims then
    for _, d in ipairs(dims) do if x:dim() == d then return x end end
    local want = {}
    for i, d in ipairs(dims) do want[i] = d .. "-D" end
    fail(fname, "expected a %s input, got a %d-D tensor of size %s", table.concat(want, " or "), x:dim(), tostring(x:size()))
  end
  return x
end

function util.check_grad(fname, g)
  if not L.is_tensor(g) then fail(fname, "grad_output must be a tensor, got %s", describe(g)) end
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
