--- A table whose entries load on first use: lazy(paths[, target]) where paths maps a key to a module
-- name, or to {module, field} for one value of a module. Keeps `require "lightning"` (and its
-- submodules' tables) cheap.
return function(paths, target)
  target = target or {}
  return setmetatable(target, {
    __index = function(t, key)
      local path = paths[key]
      if path == nil then return nil end
      local value
      if type(path) == "table" then value = require(path[1])[path[2]] else value = require(path) end
      rawset(t, key, value)
      return value
    end,
  })
end
