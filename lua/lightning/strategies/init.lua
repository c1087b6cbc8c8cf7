--- lightning.strategies: the strategies by name, and the Trainer's `strategy` option.
--   Trainer{strategy = "auto"}     (the default) the first registered strategy whose detect() says this
--                                  process is one of several (a data-parallel launch), else "single"
--   Trainer{strategy = "single"}   one process (SingleDeviceStrategy)
--   Trainer{strategy = "ddp"}      data-parallel over MPI (DDPStrategy; "auto" under mpirun -np N > 1)
--   Trainer{strategy = obj}        an object of a Strategy subclass (strategy.lua documents the API)
-- Another strategy registers itself as "ddp" does: strategies.register(name, cls, {detect = fn}).
local class = require "lightning.class"
local options = require "lightning.util.options"
local closest = require "lightning.util.closest"
local Strategy = require "lightning.strategies.strategy"
local SingleDeviceStrategy = require "lightning.strategies.single"
local DDPStrategy = require "lightning.strategies.ddp"

local strategies = {Strategy = Strategy, SingleDeviceStrategy = SingleDeviceStrategy, DDPStrategy = DDPStrategy}

local registry = {single = {cls = SingleDeviceStrategy}}   -- name -> {cls, detect}
local order = {"single"}                                    -- registration order, for "auto"

--- Adds a strategy class under a name (cls = nil removes it). settings.detect (optional): a function
-- that says whether "auto" should pick this strategy (checked in registration order).
function strategies.register(name, cls, settings)
  if name == "single" then error("strategies.register: \"single\" is built in", 2) end
  for i, n in ipairs(order) do
    if n == name then table.remove(order, i) break end
  end
  registry[name] = nil
  if cls ~= nil then
    if not Strategy.is_strategy_class(cls) then
      error("strategies.register: expected a Strategy subclass, got " .. class.name_of(cls), 2)
    end
    order[#order + 1] = name
    registry[name] = {cls = cls, detect = settings and settings.detect}
  end
end

local function names_text()
  local names = {'"auto"'}
  for _, name in ipairs(order) do names[#names + 1] = options.describe(name) end
  return table.concat(names, ", ")
end

--- nil when value is a strategy name, "auto" or a Strategy object; else the message.
function strategies.problem(value)
  if value == "auto" or registry[value] or class.is_instance(value, Strategy) then return nil end
  local near = type(value) == "string" and closest.suggestion(value, registry)
  return ("strategy must be %s or a Strategy object (lightning.strategies), got %s%s"):format(names_text(),
    options.describe(value), near and (" (did you mean '%s'?)"):format(near) or "")
end

--- The strategy object for the Trainer's option: the object itself, or a new one of the named class.
function strategies.resolve(value)
  local problem = strategies.problem(value)
  if problem then options.fail("Trainer", "%s", problem) end
  if class.is_instance(value, Strategy) then return value end
  if value == "auto" then
    value = "single"
    for _, name in ipairs(order) do
      local detect = registry[name].detect
      if detect and detect() then value = name break end
    end
  end
  return registry[value].cls()
end

-- Data-parallel over MPI: what "auto" picks when mpirun started this process among several.
strategies.register("ddp", DDPStrategy, {detect = DDPStrategy.detect})

return strategies
