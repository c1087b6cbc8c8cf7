-- Small stand-ins for the Trainer specs: a loader over fixed batches (shuffled from the global
-- generator, as L.data.DataLoader), a linear regression LightningModule with a hand-written backward,
-- and a plain SGD with momentum (state tensors, so that checkpoints carry optimizer tensors).
local L = require "lightning"
local S = {}

local Loader = {}
Loader.__index = Loader
Loader.__len = function(self) return #self.batches end

function S.Loader(batches, shuffle)
  return setmetatable({batches = batches, shuffle = shuffle}, Loader)
end

function Loader:iter()
  local order = {}
  for i = 1, #self.batches do order[i] = i end
  if self.shuffle then
    local r = L.rand(#order)
    for i = #order, 2, -1 do
      local j = math.floor(r[i] * i) + 1
      order[i], order[j] = order[j], order[i]
    end
  end
  local i = 0
  return function()
    i = i + 1
    if order[i] then return i, self.batches[order[i]] end
  end
end

-- y = x . w_true + noise
function S.regression_batches(n, batch_size, dim, seed)
  L.manual_seed(seed or 1)
  local w_true = L.randn(dim, 1)
  local batches = {}
  for i = 1, n do
    local x = L.randn(batch_size, dim)
    local y = L.mm(x, w_true) + L.randn(batch_size, 1) * 0.01
    batches[i] = {input = x, target = y}
  end
  return batches
end

local SGD = {}
SGD.__index = SGD
function S.SGD(params, lr, momentum)
  return setmetatable({param_groups = {{lr = lr, momentum = momentum or 0, params = params}}, state = {}}, SGD)
end
function SGD:zero_grad()
  for _, p in ipairs(self.param_groups[1].params) do p.grad:zero() end
end
function SGD:step()
  local g = self.param_groups[1]
  for i, p in ipairs(g.params) do
    local d = p.grad
    if g.momentum ~= 0 then
      local buf = self.state[i]
      if not buf then buf = d:clone() self.state[i] = buf else buf:mul(g.momentum):add(d) end
      d = buf
    end
    p:add(d, -g.lr)
  end
end
function SGD:state_dict()
  local state = {}
  for i, buf in pairs(self.state) do state[i] = buf:clone() end
  return {state = state, param_groups = {{lr = self.param_groups[1].lr, momentum = self.param_groups[1].momentum}}}
end
function SGD:load_state_dict(sd)
  self.param_groups[1].lr = sd.param_groups[1].lr
  self.param_groups[1].momentum = sd.param_groups[1].momentum
  self.state = {}
  for i, buf in pairs(sd.state) do self.state[i] = buf:clone() end
end
S.SGD_class = SGD

-- StepLR: lr = base * gamma ^ floor(epoch / step_size)
local StepLR = {}
StepLR.__index = StepLR
function S.StepLR(opt, step_size, gamma)
  return setmetatable({optimizer = opt, step_size = step_size, gamma = gamma, last_epoch = 0,
    base_lr = opt.param_groups[1].lr}, StepLR)
end
function StepLR:step()
  self.last_epoch = self.last_epoch + 1
  self.optimizer.param_groups[1].lr = self.base_lr * self.gamma ^ (self.last_epoch // self.step_size)
end
function StepLR:state_dict() return {last_epoch = self.last_epoch, base_lr = self.base_lr} end
function StepLR:load_state_dict(s) self.last_epoch, self.base_lr = s.last_epoch, s.base_lr end

-- Linear regression: out = x w + b, loss = mean((out - y)^2). Noise from the global generator in each
-- training step stands for dropout, so that resuming must restore the generator.
function S.Regression(opts)
  opts = opts or {}
  local Regression = L.class("Regression", L.LightningModule)
  function Regression:__init(dim)
    L.LightningModule.__init(self)
    self:register_parameter("weight", L.randn(dim, 1) * 0.1)
    self:register_parameter("bias", L.zeros(1))
    self:save_hyperparameters({dim = dim, lr = opts.lr or 0.05})
  end
  function Regression:forward(x)
    return L.mm(x, self.weight) + self.bias
  end
  function Regression:backward(x, grad_out)
    self.weight.grad:add(L.mm(x:t(), grad_out))
    self.bias.grad:add(grad_out:sum(1))
  end
  local function mse(out, y)
    local diff = out - y
    return (diff * diff):mean(), diff * (2 / diff:numel())
  end
  Regression.criterion = {
    forward = function(_, out, y) return (mse(out, y)) end,
    backward = function(_, out, y) local _, g = mse(out, y) return g end,
  }
  function Regression:training_step(batch, batch_idx)
    local x = batch.input
    if opts.noise ~= false then x = x + L.randn(x:size()) * 0.01 end
    local out = self:forward(x)
    local loss = self.criterion:forward(out, batch.target)
    self:log("train_loss", loss, {prog_bar = true, on_step = true, on_epoch = true})
    return {loss = loss, output = out, target = batch.target, input = x}
  end
  function Regression:validation_step(batch, batch_idx)
    local loss = self.criterion:forward(self:forward(batch.input), batch.target)
    self:log("val_loss", loss, {prog_bar = true})
    return loss
  end
  function Regression:test_step(batch, batch_idx)
    local loss = self.criterion:forward(self:forward(batch.input), batch.target)
    self:log("test_loss", loss)
    return loss
  end
  function Regression:predict_step(batch, batch_idx)
    return self:forward(batch.input)
  end
  function Regression:configure_optimizers()
    local opt = S.SGD(self:parameters(), self.hparams.lr, opts.momentum or 0.9)
    if opts.scheduler then return {optimizer = opt, lr_scheduler = S.StepLR(opt, 1, 0.5)} end
    return opt
  end
  for k, v in pairs(opts.methods or {}) do Regression[k] = v end
  return Regression
end

-- A small image classifier with the real pieces (1x8x8 images, 3 classes): convolution, BatchNorm,
-- ReLU, pooling, dropout, Adam. opts: batchnorm1d (a BatchNorm1d after the hidden layer too), and
-- ImageClassifier options (scheduler, step_size, gamma, learning_rate, ...).
function S.conv_classifier(opts)
  local nn = L.nn
  opts = opts or {}
  local hidden = {nn.Linear(4 * 4 * 4, 16)}
  if opts.batchnorm1d then hidden[#hidden + 1] = nn.BatchNorm1d(16) end
  local layers = {nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()}
  for _, m in ipairs(hidden) do layers[#layers + 1] = m end
  for _, m in ipairs {nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3)} do layers[#layers + 1] = m end
  local o = {net = nn.Sequential(table.unpack(layers)), num_classes = 3, in_channels = 1, image_size = 8,
    learning_rate = 0.01}
  for k, v in pairs(opts) do if k ~= "batchnorm1d" then o[k] = v end end
  return L.models.ImageClassifier(o)
end

-- A logger that keeps what it is given.
function S.MemoryLogger()
  local lg = {records = {}, hparams = nil, finalized = nil, version = 0}
  function lg.log_metrics(self, metrics, step)
    local copy = {}
    for k, v in pairs(metrics) do copy[k] = v end
    self.records[#self.records + 1] = {metrics = copy, step = step}
  end
  function lg.log_hyperparams(self, params) self.hparams = params end
  function lg.finalize(self, status) self.finalized = status end
  -- the records as text, a line a value ("step name value", names sorted): two runs compare as strings
  function lg.text(self)
    local lines = {}
    for _, r in ipairs(self.records) do
      local keys = {}
      for k in pairs(r.metrics) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do lines[#lines + 1] = ("%d %s %.9g"):format(r.step, k, r.metrics[k]) end
    end
    return table.concat(lines, "\n")
  end
  return lg
end

-- Trainer options for quiet specs in a temporary folder.
function S.quiet(dir, extra)
  local o = {default_root_dir = dir, enable_progress_bar = false, enable_model_summary = false, logger = false,
    enable_checkpointing = false}
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- n image samples {input, target} for the classifier specs: class k (1..o.classes, in turn) is a bright
-- band of o.band rows from row (k - 1) * o.step + 1, over o.channels x o.size x o.size noise times o.noise.
function S.band_images(n, seed, o)
  L.manual_seed(seed)
  local samples = {}
  for i = 1, n do
    local k = (i - 1) % o.classes + 1
    local x = L.randn(o.channels, o.size, o.size) * o.noise
    x:narrow(2, (k - 1) * o.step + 1, o.band):add(1)
    samples[i] = {input = x, target = k}
  end
  return samples
end

return S
