--- lightning.models: the reference networks (loaded on first use).
local paths = {
  BasicImageClassifier = "lightning.models.basic_image_classifier",
  ImageClassifier = "lightning.models.image_classifier",
}

return setmetatable({}, {
  __index = function(t, key)
    local path = paths[key]
    if path then
      local value = require(path)
      rawset(t, key, value)
      return value
    end
  end,
})
