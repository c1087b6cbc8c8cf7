--- lightning.callbacks: the built-in callbacks.
--   L.callbacks.ModelCheckpoint{monitor = "val_acc", mode = "max", save_top_k = 3, save_last = true}
--   L.callbacks.EarlyStopping{monitor = "val_loss", patience = 10}
--   L.callbacks.LearningRateMonitor{logging_interval = "epoch"}
--   L.callbacks.ProgressBar{}, L.callbacks.ModelSummary{max_depth = 1}
--   L.callbacks.GradientFlowMonitor{every_n_steps = 50}
--   L.callbacks.Lookahead{every_n_steps = 5, decay = 0.95 ^ 5, decay_power = 3}   (weight averaging)
-- A callback of your own is any table of hooks or an L.Callback subclass (see callback.lua).
local lazy = {
  Callback = "lightning.callbacks.callback",
  ModelCheckpoint = "lightning.callbacks.model_checkpoint",
  EarlyStopping = "lightning.callbacks.early_stopping",
  LearningRateMonitor = "lightning.callbacks.lr_monitor",
  ProgressBar = "lightning.callbacks.progress_bar",
  ModelSummary = "lightning.callbacks.model_summary",
  GradientFlowMonitor = "lightning.callbacks.gradient_flow",
  Lookahead = "lightning.callbacks.lookahead",
}

return require("lightning.lazy")(lazy)
