--- lightning.optim.lr_scheduler: PyTorch 1.13's learning-rate schedulers, by the same names.
local basic = require "lightning.optim.lr_scheduler.basic"
local combined = require "lightning.optim.lr_scheduler.combined"

return {
  LRScheduler = require "lightning.optim.lr_scheduler.scheduler",
  StepLR = basic.StepLR,
  MultiStepLR = basic.MultiStepLR,
  ConstantLR = basic.ConstantLR,
  LinearLR = basic.LinearLR,
  ExponentialLR = basic.ExponentialLR,
  PolynomialLR = basic.PolynomialLR,
  LambdaLR = basic.LambdaLR,
  CosineAnnealingLR = basic.CosineAnnealingLR,
  SequentialLR = combined.SequentialLR,
  ChainedScheduler = combined.ChainedScheduler,
  ReduceLROnPlateau = require "lightning.optim.lr_scheduler.reduce_lr_on_plateau",
  OneCycleLR = require "lightning.optim.lr_scheduler.one_cycle_lr",
}
