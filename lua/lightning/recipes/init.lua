--- lightning.recipes: training recipes by name, each a module of this folder (one file a recipe):
--   local recipes = require "lightning.recipes"
--   local recipe = recipes.get("airbench94")   -- lightning/recipes/airbench94.lua
--   recipes.names()                            -- {"airbench94", ...}, sorted
-- A recipe is a table: name, dataset (the data set it trains on, as train.lua's flag: "cifar10") and
-- dataset_title, help (a line for train.lua --help), defaults (train.lua's options when the command line
-- leaves them out), drop_last, model(args, dm, image_size) (the LightningModule it trains), and whatever
-- it wants to show (airbench94: Model, lr_factor). examples/train.lua --recipe <name> runs one.
local core = require "lightning.core"
local lazy = require "lightning.lazy"

-- The recipes: the .lua files beside this one (loaded on first use).
local DIR = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local paths, names = {}, {}
for _, file in ipairs(core.io.listdir(DIR)) do
  local name = file:match("^([%w_]+)%.lua$")
  if name and name ~= "init" then
    paths[name] = "lightning.recipes." .. name
    names[#names + 1] = name
  end
end
table.sort(names)

local loaded = lazy(paths)
local recipes = {}

--- The names of the known recipes, sorted.
function recipes.names() return table.move(names, 1, #names, 1, {}) end

--- The recipe called name; an unknown name is an error that lists the known ones.
function recipes.get(name)
  if type(name) ~= "string" or not paths[name] then
    error(("recipes.get: unknown recipe %s: the known ones are %s"):format(
      type(name) == "string" and ("'" .. name .. "'") or tostring(name), table.concat(names, ", ")), 2)
  end
  return loaded[name]
end

return recipes
