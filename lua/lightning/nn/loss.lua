--- Losses (criteria): loss = crit:forward(input, target) returns a number (a tensor of per-sample
-- losses with reduction = "none"); grad_input = crit:backward(input, target[, grad_output]).
-- Called, crit(input, target) returns the loss as a one-element tensor where the input is (recorded by
-- autograd), as PyTorch's: on a GPU nothing is read back until the value is asked for.
-- Class targets are tensors of 1-based class indices.
--   nn.CrossEntropyLoss{weight, label_smoothing = 0, reduction = "mean", ignore_index}
--   nn.NLLLoss{weight, reduction = "mean", ignore_index}     (input: log-probabilities)
--   nn.MSELoss{reduction = "mean"}
-- Also nn.Softmax(dim) and nn.LogSoftmax(dim) (dim defaults to the last), as layers.
local L = require "lightning"
local class = require "lightning.class"
local options = require "lightning.util.options"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"
local C = L.core.nn

local Criterion = class("Criterion", Module)

-- The options of the losses.
local REDUCTION = {kind = "string", one_of = {"mean", "sum", "none"}, default = "mean"}
local WEIGHT = {kind = "tensor", expected = "a tensor of class weights"}
local IGNORE_INDEX = {kind = "integer"}

function Criterion:__init(name, opts, specs)
  Module.__init(self)
  local o = util.options(name, opts, specs)
  self.reduction = o.reduction
  self._name = name
  self.grad_input, self._losses = L.empty(0), L.empty(0)
  self._kernel = C.kernel_handle()
  return o
end

-- autograd's backward of a loss: the gradient of a reduced loss is a one-element tensor where the loss
-- is, which the kernel reads there (a GPU's is not brought to the host).
function Criterion:_autograd_backward(args, g)
  if self.reduction ~= "none" then return self:_backward(args[1], args[2], nil, 1, g) end
  return self:backward(args[1], args[2], g)
end

-- What m(input, target) runs: the loss as a tensor (one element; the per-sample losses for "none").
function Criterion:_tensor_forward(input, target)
  local loss = self:_loss_tensor(input, target)
  self.output = loss or self._losses
  return self.output
end

-- The Torch7 protocol's forward: a number (the per-sample losses tensor for reduction "none").
function Criterion:forward(input, target)
  local out = self:_tensor_forward(input, target)
  if self.reduction ~= "none" then self.output = out:item() end
  return self.output
end

-- grad_output: a number scaling the gradient (default 1) or a one-element tensor where the loss is (read
-- there: a loss scaler's scale on a GPU), or per-sample gradients for "none". Returns the kernel's
-- grad_output, scale and grad_loss fields.
local function grad_args(name, reduction, grad_output)
  if reduction == "none" then
    if not L.is_tensor(grad_output) then
      error(name .. ":backward: with reduction 'none' pass the gradient of each sample as a tensor", 3)
    end
    return grad_output, 1
  end
  if L.is_tensor(grad_output) then
    if grad_output:numel() ~= 1 then
      error(("%s:backward: grad_output must be a number or a one-element tensor (the loss's gradient), got a tensor " ..
        "of %d elements"):format(name, grad_output:numel()), 3)
    end
    return nil, 1, grad_output
  end
  if grad_output ~= nil and type(grad_output) ~= "number" then
    error(name .. ":backward: grad_output must be a number or a one-element tensor (the loss's gradient), got " ..
      type(grad_output), 3)
  end
  return nil, grad_output or 1
end

--- The Torch7 protocol's backward: grad_output is a number (default 1) or a one-element tensor, or the
-- per-sample gradients for reduction "none".
function Criterion:backward(input, target, grad_output)
  return self:_backward(input, target, grad_args(self._name, self.reduction, grad_output))
end

local CrossEntropyLoss = class("CrossEntropyLoss", Criterion)

function CrossEntropyLoss:__init(opts)
  local o = Criterion.__init(self, "CrossEntropyLoss", opts,
    {weight = WEIGHT, label_smoothing = {kind = "number", min = 0, max = 1, default = 0}, reduction = REDUCTION,
     ignore_index = IGNORE_INDEX})
  self.weight = o.weight
  self.label_smoothing = o.label_smoothing
  self.ignore_index = o.ignore_index
  self._log_probs = L.empty(0)
end

function CrossEntropyLoss:_loss_tensor(input, target)
  util.check_input("CrossEntropyLoss:forward", input)
  util.check_input("CrossEntropyLoss:forward", target)
  return C.cross_entropy_forward{name = "CrossEntropyLoss:forward", handle = self._kernel,
    losses = self._losses, log_probs = self._log_probs, input = input, target = target, weight = self.weight,
    label_smoothing = self.label_smoothing, reduction = self.reduction, ignore_index = self.ignore_index}
end

-- grad_output: the Torch7 protocol's (grad_args); grad_loss: autograd's one-element gradient.
function CrossEntropyLoss:_backward(input, target, grad_output, scale, grad_loss)
  C.cross_entropy_backward{name = "CrossEntropyLoss:backward", handle = self._kernel, grad_input = self.grad_input,
    log_probs = self._log_probs, input = input, target = target, weight = self.weight,
    label_smoothing = self.label_smoothing, reduction = self.reduction, ignore_index = self.ignore_index,
    grad_output = grad_output, scale = scale, grad_loss = grad_loss}
  return self.grad_input
end

--- The probabilities of the last forward pass (softmax of the logits), computed from saved log-probabilities.
function CrossEntropyLoss:probabilities()
  return self._log_probs:clone():exp()
end

local NLLLoss = class("NLLLoss", Criterion)

function NLLLoss:__init(opts)
  local o = Criterion.__init(self, "NLLLoss", opts, {weight = WEIGHT, reduction = REDUCTION, ignore_index = IGNORE_INDEX})
  self.weight = o.weight
  self.ignore_index = o.ignore_index
end

function NLLLoss:_loss_tensor(input, target)
  util.check_input("NLLLoss:forward", input)
  util.check_input("NLLLoss:forward", target)
  return C.nll_loss_forward{name = "NLLLoss:forward", handle = self._kernel, losses = self._losses,
    input = input, target = target, weight = self.weight, reduction = self.reduction, ignore_index = self.ignore_index}
end

function NLLLoss:_backward(input, target, grad_output, scale, grad_loss)
  C.nll_loss_backward{name = "NLLLoss:backward", handle = self._kernel, grad_input = self.grad_input, input = input,
    target = target, weight = self.weight, reduction = self.reduction, ignore_index = self.ignore_index,
    grad_output = grad_output, scale = scale, grad_loss = grad_loss}
  return self.grad_input
end

local MSELoss = class("MSELoss", Criterion)

function MSELoss:__init(opts)
  Criterion.__init(self, "MSELoss", opts, {reduction = REDUCTION})
end

function MSELoss:_loss_tensor(input, target)
  util.check_input("MSELoss:forward", input)
  util.check_input("MSELoss:forward", target)
  return C.mse_loss_forward{name = "MSELoss:forward", handle = self._kernel, losses = self._losses,
    input = input, target = target, reduction = self.reduction}
end

function MSELoss:_backward(input, target, grad_output, scale, grad_loss)
  C.mse_loss_backward{name = "MSELoss:backward", handle = self._kernel, grad_input = self.grad_input, input = input,
    target = target, reduction = self.reduction, grad_output = grad_output, scale = scale, grad_loss = grad_loss}
  return self.grad_input
end

local function softmax_class(name, log)
  local cls = class(name, Module)
  function cls:__init(dim)
    Module.__init(self)
    if dim ~= nil and math.type(dim) ~= "integer" then options.fail(name, "dim must be an integer, got %s", options.describe(dim)) end
    self.dim = dim or -1
    self.output, self.grad_input = L.empty(0), L.empty(0)
    self._kernel = C.kernel_handle()
  end
  function cls:forward(input)
    util.check_input(name .. ":forward", input)
    C.softmax_forward{name = name .. ":forward", handle = self._kernel, output = self.output, input = input,
      dim = self.dim, log = log}
    return self.output
  end
  function cls:backward(input, grad_output)
    util.check_grad(name .. ":backward", grad_output)
    C.softmax_backward{name = name .. ":backward", handle = self._kernel, grad_input = self.grad_input,
      grad_output = grad_output, output = self.output, input = input, dim = self.dim, log = log}
    return self.grad_input
  end
  function cls:extra_repr() return "dim=" .. self.dim end
  return cls
end

return {
  CrossEntropyLoss = CrossEntropyLoss, NLLLoss = NLLLoss, MSELoss = MSELoss, Criterion = Criterion,
  Softmax = softmax_class("Softmax", false), LogSoftmax = softmax_class("LogSoftmax", true),
}
