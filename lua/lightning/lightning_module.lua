--- L.LightningModule: an nn.Module that also says how to train itself, as in PyTorch Lightning.
-- A subclass defines training_step (and validation_step, test_step, predict_step) and
-- configure_optimizers; the Trainer calls them and the hooks below in Lightning's order.
-- training_step returns the loss (or {loss = loss, ...}); autograd recorded how it was computed, and
-- after training_step the Trainer's strategy calls backward_step, whose default is loss:backward():
--   function Model:training_step(batch, batch_idx)
--     local out = self.net(batch.input)
--     local loss = self.criterion(out, batch.target) + 0.01 * (out ^ 2):mean()
--     self:log("train_loss", loss, {prog_bar = true})
--     return loss
--   end
-- (docs/autograd.md). A loss that autograd did not record (a number) is backpropagated the Torch7 way:
-- training_step returns {loss, output = <network output>, target[, input][, criterion]} and the default
-- backward_step runs the criterion's backward and then the network's (self.net, or the module itself).
local L = require "lightning"
local Module = require "lightning.nn.module"
local class = require "lightning.class"
local output = require "lightning.util.output"
local Precision = require "lightning.precision.precision"

local LightningModule = class("LightningModule", Module)

function LightningModule:__init()
  Module.__init(self)
  self.hparams = {}
  self.trainer = nil
  self.automatic_optimization = true
end

local function is_scalar(v)
  local t = type(v)
  return t == "number" or t == "string" or t == "boolean"
end

-- A copy of a list of numbers, strings and booleans ({0.49, 0.48, 0.45}, class names), or nil.
local function scalar_list(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil or #v == 0 then return nil end
  local copy, count = {}, 0
  for _ in pairs(v) do count = count + 1 end
  if count ~= #v then return nil end
  for i, x in ipairs(v) do
    if not is_scalar(x) then return nil end
    copy[i] = x
  end
  return copy
end

--- Copies the given hyper-parameters into self.hparams (saved in checkpoints as JSON, logged by the
-- loggers): numbers, strings, booleans and lists of them; other values are left out.
function LightningModule:save_hyperparameters(hparams)
  assert(hparams == nil or type(hparams) == "table", "save_hyperparameters: expected a table")
  for k, v in pairs(hparams or {}) do
    if is_scalar(v) then self.hparams[k] = v else self.hparams[k] = scalar_list(v) or self.hparams[k] end
  end
  return self.hparams
end

--- self:log(name, value, {prog_bar, logger, on_step, on_epoch, reduce_fx, batch_size}) with
-- Lightning's meaning; the defaults of on_step/on_epoch depend on the hook that logs (training_step:
-- on_step; validation/test and epoch hooks: on_epoch). Outside a Trainer run (or with a stand-in
-- trainer that records nothing) it does nothing.
function LightningModule:log(name, value, opts)
  local trainer = self.trainer
  local record = trainer and trainer.record_log
  if record then record(trainer, name, value, opts) end
end

function LightningModule:log_dict(values, opts)
  assert(type(values) == "table", "log_dict: expected a table of name = value")
  local names = {}
  for name in pairs(values) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do self:log(name, values[name], opts) end
end

--- print through the library's output (lightning.util.output: above a progress bar), on global rank 0
-- only when a Trainer runs the module (trainer:print).
function LightningModule:print(...)
  if self.trainer then return self.trainer:print(...) end
  output.print(...)
end

--- The optimizer (or the list, with several) that configure_optimizers returned.
function LightningModule:optimizers()
  local trainer = self.trainer
  if not trainer or not trainer.optimizers then return nil end
  if #trainer.optimizers == 1 then return trainer.optimizers[1] end
  return trainer.optimizers
end

function LightningModule:lr_schedulers()
  local trainer = self.trainer
  if not trainer or not trainer.lr_scheduler_configs or #trainer.lr_scheduler_configs == 0 then return nil end
  local list = {}
  for i, config in ipairs(trainer.lr_scheduler_configs) do list[i] = config.scheduler end
  if #list == 1 then return list[1] end
  return list
end

function LightningModule:training_step(batch, batch_idx)
  error(class.name_of(self) .. ":training_step is not implemented", 2)
end

function LightningModule:configure_optimizers()
  error(class.name_of(self) .. ":configure_optimizers is not implemented", 2)
end

--- The network that backward_step runs backwards: self.net when there is one, else the module.
function LightningModule:network()
  return self.net or self
end

--- Backpropagates a training step: loss:backward() when autograd recorded the loss; otherwise the
-- gradient of the criterion at the network's output, then backward through the network (accumulating
-- into each parameter's p.grad), from what training_step returned: {loss, output, target[, input][,
-- criterion]}. grad_loss is the gradient to start from: nil for 1, or a one-element tensor where the
-- loss is (the loss scale under precision = "16-mixed": an override must start from it too).
function LightningModule:backward_step(batch, outputs, grad_loss)
  local loss = type(outputs) == "table" and not L.is_tensor(outputs) and outputs.loss or outputs
  if L.is_tensor(loss) and loss.grad_fn then return loss:backward(grad_loss) end
  local name = class.name_of(self)
  if type(outputs) ~= "table" or outputs.output == nil or outputs.target == nil then
    error(("%s:backward_step: the default backward needs training_step to return {loss = ..., " ..
      "output = <network output>, target = <targets>}, or override backward_step(batch, outputs)"):format(name), 0)
  end
  local criterion = outputs.criterion or self.criterion
  if not criterion then
    error(("%s:backward_step: no criterion: set self.criterion or return it as outputs.criterion"):format(name), 0)
  end
  local grad_output = criterion:backward(outputs.output, outputs.target, grad_loss)
  local input = outputs.input or (type(batch) == "table" and batch.input)
  return self:network():backward(input, grad_output)
end

-- Default hooks the Trainer calls with a behaviour (the others are simply absent).
function LightningModule:optimizer_zero_grad(epoch, batch_idx, optimizer)
  optimizer:zero_grad()
end

function LightningModule:optimizer_step(epoch, batch_idx, optimizer)
  optimizer:step()
end

function LightningModule:configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
  self:clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
end

-- Clipping outside a Trainer run uses a float32 plugin.
local default_precision = Precision()

--- Clips the gradients of the optimizer's parameters: by their total norm ("norm") or each value
-- ("value"), through the precision plugin (trainer.precision_plugin:clip_gradients, as in Lightning).
-- Does nothing without a value.
function LightningModule:clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
  local trainer = self.trainer
  local plugin = trainer and trainer.precision_plugin or default_precision
  return plugin:clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm, self)
end

-- Evaluation loops put the module in eval mode, and validation and test put it back in the mode it had
-- before them (Lightning 2.2 and later restore the previous mode too). Lightning's default
-- on_validation_model_zero_grad frees the gradients before validation inside fit; ours are buffers
-- reused by the next step, so it does nothing.
function LightningModule:on_validation_model_eval() self:eval() end
function LightningModule:on_validation_model_train() self:train(self._training_before_eval ~= false) end
function LightningModule:on_validation_model_zero_grad() end
function LightningModule:on_test_model_eval() self:eval() end
function LightningModule:on_test_model_train() self:train(self._training_before_eval ~= false) end
function LightningModule:on_predict_model_eval() self:eval() end

-- A copy of a batch with every tensor on device: tables without a metatable are walked (nested too),
-- other values kept as they are.
local function batch_on(device, value)
  if L.is_tensor(value) then return value:to(device) end
  if type(value) ~= "table" or getmetatable(value) ~= nil then return value end
  local out = {}
  for k, v in pairs(value) do out[k] = batch_on(device, v) end
  return out
end

--- The batch on device ("cpu", "cuda:0"), as Lightning's hook: the Trainer calls it on every batch of
-- every loop (through its strategy's batch_to_device) between on_before_batch_transfer and
-- on_after_batch_transfer. The default copies each tensor of the batch (nested tables included) to
-- the device; on the host, where the loaders make their batches, it returns the batch as it is.
-- Override it for a batch of another shape (an object with tensors inside).
function LightningModule:transfer_batch_to_device(batch, device, dataloader_idx)
  if device == "cpu" then return batch end
  return batch_on(device, batch)
end

function LightningModule:lr_scheduler_step(scheduler, metric)
  if metric == nil then scheduler:step() else scheduler:step(metric) end
end

return LightningModule
