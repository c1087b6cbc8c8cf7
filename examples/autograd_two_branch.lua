-- A model that is not a plain stack of layers, trained by the Trainer with autograd: two branches
-- whose outputs are concatenated, and a loss with a penalty on the logits. No backward is written:
-- training_step returns the loss and the Trainer calls loss:backward().
--   lua examples/autograd_two_branch.lua
package.path = arg[0]:gsub("[^/]*$", "") .. "../lua/?.lua;" .. arg[0]:gsub("[^/]*$", "") .. "../lua/?/init.lua;"
  .. package.path
local L = require "lightning"
local nn = L.nn

local TwoBranch = L.class("TwoBranch", L.LightningModule)

function TwoBranch:__init()
  L.LightningModule.__init(self)
  self.wide = self:add_module("wide", nn.Sequential(nn.Conv2d(3, 8, 3, {padding = 1}), nn.BatchNorm2d(8), nn.ReLU()))
  self.narrow = self:add_module("narrow", nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()))
  self.head = self:add_module("head", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 10)))
  self.criterion = nn.CrossEntropyLoss()
end

-- Only forward: each layer called as m(x) is recorded, and so are L.cat and the arithmetic.
function TwoBranch:forward(x)
  return self.head(L.cat({self.wide(x), self.narrow(x)}, 2))
end

function TwoBranch:training_step(batch)
  local logits = self(batch.input)
  local loss = self.criterion(logits, batch.target) + 0.01 * (logits ^ 2):mean()
  self:log("train_loss", loss, {prog_bar = true})
  return loss
end

function TwoBranch:configure_optimizers()
  return L.optim.Adam(self:parameters(), {lr = 1e-2})
end

-- Synthetic data: the class shifts the image's mean. A loader is anything with #loader and
-- loader:iter() giving (batch_idx, batch) (docs/data.md); four fixed batches of 16 here.
L.manual_seed(0)
local batches = {}
for b = 1, 4 do
  local target = L.empty(16)
  for i = 1, 16 do target[i] = (b * 16 + i) % 10 + 1 end
  local input = L.randn(16, 3, 8, 8)
  for i = 1, 16 do input[i]:add(target[i] / 5) end
  batches[b] = {input = input, target = target}
end
local loader = setmetatable({}, {__len = function() return #batches end})
function loader.iter()
  local i = 0
  return function()
    i = i + 1
    if batches[i] then return i, batches[i] end
  end
end

local model = TwoBranch()
local trainer = L.Trainer{max_epochs = 30, enable_progress_bar = false, enable_checkpointing = false,
  logger = false, enable_model_summary = false}
trainer:fit(model, loader)
print(("final training loss: %.4f"):format(trainer.callback_metrics.train_loss))
