--- lightning.precision: the precision plugins by Lightning's names, and the Trainer's `precision` option.
--   Trainer{precision = "32-true"}   (also 32 and "32", as in Lightning: full float32, the default)
-- A plugin is an object of a Precision subclass (precision.lua); the strategy holds it as
-- strategy.precision_plugin. The bf16 plugin will be registered here: precision.register("bf16-mixed", cls).
local Precision = require "lightning.precision.precision"
local options = require "lightning.util.options"

local precision = {Precision = Precision}

local registry = {["32-true"] = Precision}   -- name -> plugin class
local ALIASES = {[32] = "32-true", ["32"] = "32-true"}

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
  return ("precision %s is not supported: the library computes in float32, use precision = \"32\"")
    :format(options.describe(value))
end

--- A new plugin for a setting (which must be known).
function precision.plugin(value)
  local name = precision.canonical(value)
  if not name then options.fail("Trainer", "%s", precision.problem(value)) end
  return registry[name]()
end

return precision
