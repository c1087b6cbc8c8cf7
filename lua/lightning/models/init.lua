--- lightning.models: the reference networks and the model zoo (loaded on first use).
local paths = {
  AirNet = "lightning.models.airnet",
  BasicImageClassifier = "lightning.models.basic_image_classifier",
  ImageClassifier = "lightning.models.image_classifier",
}

return require("lightning.lazy")(paths)
