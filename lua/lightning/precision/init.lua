--- lightning.precision: the precision plugins by Lightning's names, and the Trainer's `precision` option.
--   Trainer{precision = "32-true"}     (also 32 and "32", as in Lightning: full float32, the default)
--   Trainer{precision = "bf16-mixed"}  (also "bf16"): bf16 compute, float32 weights (bf16_mixed.lua)
--   Trainer{precision = "16-mixed"}    (also 16, "16"): fp16 compute on a GPU with a loss scaler (fp16_mixed.lua)
-- A plugin is an object of a Precision subclass (precision.lua); the strategy holds it as
-- strategy.precision_plugin.
local Precision = require "lightning.precision.precision"
local BF16Mixed = require "lightning.precision.bf16_mixed"
local FP16Mixed = require "lightning.precision.fp16_mixed"
local options = require "lightning.util.options"

local precision = {Precision = Precision, BF16MixedPrecision = BF16Mixed, FP16MixedPrecision = FP16Mixed}

local registry = {["32-true"] = Precision, ["bf16-mixed"] = BF16Mixed, ["16-mixed"] = FP16Mixed}   -- name -> class
local ALIASES = {[32] = "32-true", ["32"] = "32-true", ["bf16"] = "bf16-mixed", [16] = "16-mixed", ["16"] = "16-mixed"}

-- Lightning's settings this library does not offer, and what to use instead.
local REFUSED = {
  ["16-true"] = "16-true (fp16 weights and optimizer state) is not supported: use precision = \"16-mixed\" on a " ..
    "GPU, which computes in fp16 and keeps float32 weights, or \"bf16-mixed\"",
  ["bf16-true"] = "bf16-true (bf16 weights and optimizer state) is not supported: use precision = \"bf16-mixed\", " ..
    "which computes in bf16 and keeps float32 weights",
  [64] = "float64 is not supported: the library computes in float32; use precision = \"32\" or \"bf16-mixed\"",
  ["64"] = "float64 is not supported: the library computes in float32; use precision = \"32\" or \"bf16-mixed\"",
  ["64-true"] = "float64 is not supported: the library computes in float32; use precision = \"32\" or \"bf16-mixed\"",
}

--- Adds a plugin class under a setting's name (and its other spellings).
function precision.register(name, cls, aliases)
  registry[name] = cls
  for _, alias in ipairs(aliases or {}) do ALIASES[alias] = name end
end

--- The canonical name of a setting ("32-true" for 32), or nil when unknown.
function precision.canonical(value)
  local name = ALIASES[value] or value
  if registry[name] then return name end
  return nil
end

--- nil when the Trainer's precision option is known, else the message.
function precision.problem(value)
  if precision.canonical(value) then return nil end
  if REFUSED[value] then return ("precision %s: %s"):format(options.describe(value), REFUSED[value]) end
  return ("precision %s is not supported: use precision = \"32\" (float32), \"bf16-mixed\" or \"16-mixed\" (on a GPU)")
    :format(options.describe(value))
end

--- A new plugin for a setting (which must be known).
function precision.plugin(value)
  local name = precision.canonical(value)
  if not name then options.fail("Trainer", "%s", precision.problem(value)) end
  return registry[name]()
end

return precision
