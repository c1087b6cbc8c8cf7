--- lightning.models: the reference networks (loaded on first use).
local paths = {
  BasicImageClassifier = "lightning.models.basic_image_classifier",
  ImageClassifier = "lightning.models.image_classifier",
}

return require("lightning.lazy")(paths)
