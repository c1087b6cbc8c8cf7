-- NaN is no value for any option: layers, losses, optimizers, schedulers, models, the Trainer and its
-- callbacks refuse it with the option's name (positional arguments too).
local L = require "lightning"
local H = require "helpers"
local nn, optim = L.nn, L.optim
local nan = 0 / 0

local function sgd() return optim.SGD({L.zeros(2)}, {lr = 0.1}) end

local cases = {
  {"BatchNorm2d eps", function() nn.BatchNorm2d(4, {eps = nan}) end, "BatchNorm2d: eps must be a number >= 0, got nan"},
  {"BatchNorm1d eps", function() nn.BatchNorm1d(4, {eps = nan}) end, "BatchNorm1d: eps must be"},
  {"BatchNorm2d momentum", function() nn.BatchNorm2d(4, {momentum = nan}) end, "BatchNorm2d: momentum must be"},
  {"Dropout p", function() nn.Dropout(nan) end, "Dropout: p must be a probability between 0 and 1, got nan"},
  {"LeakyReLU negative_slope", function() nn.LeakyReLU(nan) end, "LeakyReLU: negative_slope must be a number, got nan"},
  {"CrossEntropyLoss label_smoothing", function() nn.CrossEntropyLoss{label_smoothing = nan} end,
    "CrossEntropyLoss: label_smoothing must be a number in %[0, 1%], got nan"},
  {"Adam lr", function() optim.Adam({L.zeros(2)}, {lr = nan}) end, "Adam: lr must be a number >= 0, got nan"},
  {"AdamW lr", function() optim.AdamW({L.zeros(2)}, {lr = nan}) end, "AdamW: lr must be a number >= 0, got nan"},
  {"SGD lr", function() optim.SGD({L.zeros(2)}, {lr = nan}) end, "SGD: lr must be a number >= 0, got nan"},
  {"a parameter group's lr", function() optim.SGD({{params = {L.zeros(2)}, lr = nan}}, {lr = 0.1}) end,
    "parameter group 1: lr must be a number >= 0, got nan"},
  {"Adam betas", function() optim.Adam({L.zeros(2)}, {betas = {nan, 0.9}}) end, "betas must hold two numbers"},
  {"StepLR gamma", function() optim.lr_scheduler.StepLR(sgd(), {step_size = 1, gamma = nan}) end, "gamma must be a number"},
  {"OneCycleLR max_lr", function() optim.lr_scheduler.OneCycleLR(sgd(), {max_lr = nan, total_steps = 9}) end,
    "max_lr must be a number >= 0, got nan"},
  {"ReduceLROnPlateau factor", function() optim.lr_scheduler.ReduceLROnPlateau(sgd(), {factor = nan}) end,
    "factor must be a number in"},
  {"clip_grad_norm max_norm", function() optim.clip_grad_norm({L.zeros(2)}, nan) end, "max_norm%) must be a non%-negative number"},
  {"ImageClassifier learning_rate", function() L.models.BasicImageClassifier{learning_rate = nan} end,
    "learning_rate must be a number > 0, got nan"},
  {"ImageClassifier dropout_rate", function() L.models.BasicImageClassifier{dropout_rate = nan} end,
    "dropout_rate must be a number in %[0, 1%), got nan"},
  {"ImageClassifier label_smoothing", function() L.models.BasicImageClassifier{label_smoothing = nan} end,
    "label_smoothing must be a number in %[0, 1%], got nan"},
  {"ImageClassifier gamma", function() L.models.BasicImageClassifier{scheduler = "step", gamma = nan} end,
    "ImageClassifier: gamma must be a number >= 0, got nan"},
  {"ImageClassifier plateau_factor", function() L.models.BasicImageClassifier{plateau_factor = nan} end,
    "plateau_factor must be a number in %[0, 1%], got nan"},
  {"ImageClassifier momentum", function() L.models.BasicImageClassifier{momentum = nan} end, "momentum must be"},
  {"Trainer gradient_clip_val", function() L.Trainer{logger = false, gradient_clip_val = nan} end,
    "Trainer: gradient_clip_val must be a number >= 0, got nan"},
  {"EarlyStopping min_delta", function() L.callbacks.EarlyStopping{monitor = "x", min_delta = nan} end,
    "EarlyStopping: min_delta must be a number, got nan"},
  {"Normalize mean", function() L.data.transforms.Normalize({nan}, {1}) end, "mean%[1%] must be a finite number"},
}

describe("An option that is NaN", function()
  for _, case in ipairs(cases) do
    it("is refused: " .. case[1], function()
      assert.matches(case[3], H.error_of(case[2]))
    end)
  end
end)
