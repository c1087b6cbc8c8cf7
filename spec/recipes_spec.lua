-- lightning.recipes: recipes by name, one file each in lua/lightning/recipes/, and the clear error for a
-- name it does not know.
local H = require "helpers"
local recipes = require "lightning.recipes"

describe("lightning.recipes", function()
  it("finds each recipe file of its folder by name", function()
    assert.same({"airbench94"}, recipes.names())
    local recipe = recipes.get("airbench94")
    assert.equal("airbench94", recipe.name)
    assert.equal("cifar10", recipe.dataset)
    assert.equal("string", type(recipe.help))
    assert.equal(1024, recipe.defaults.batch_size)
    assert.equal("function", type(recipe.model))
    assert.equal(recipe, recipes.get("airbench94"))
    -- names() is a copy
    recipes.names()[1] = "changed"
    assert.same({"airbench94"}, recipes.names())
  end)

  it("lists the known recipes when a name is unknown", function()
    assert.matches("recipes.get: unknown recipe 'airbench95': the known ones are airbench94",
      H.error_of(recipes.get, "airbench95"))
    assert.matches("recipes.get: unknown recipe nil: the known ones are airbench94", H.error_of(recipes.get))
    assert.matches("unknown recipe 'init'", H.error_of(recipes.get, "init"))
  end)
end)
