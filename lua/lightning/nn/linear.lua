--- nn.Linear(in_features, out_features, {bias = true}): y = x W^T + b, x of size batch x in_features.
local L = require "lightning"
local class = require "lightning.class"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"
local C = L.core.nn

local Linear = class("Linear", Module)

function Linear:__init(in_features, out_features, opts)
  Module.__init(self)
  local o = util.options("Linear", opts, {bias = {kind = "boolean", default = true}})
  self.in_features = util.positive_int("Linear", "in_features", in_features)
  self.out_features = util.positive_int("Linear", "out_features", out_features)
  self:register_parameter("weight", L.empty(out_features, in_features))
  if o.bias then self:register_parameter("bias", L.empty(out_features)) end
  self.needs_input_grad = true
  self.output, self.grad_input = L.empty(0), L.empty(0)
  self._kernel = C.kernel_handle()
  self:reset_parameters()
end

function Linear:reset_parameters()
  util.reset_uniform(self.weight, self.bias, self.in_features)
end

function Linear:forward(input)
  util.check_input("Linear:forward", input, {2})
  C.linear_forward{name = "Linear:forward", handle = self._kernel, output = self.output, input = input,
    weight = self.weight, bias = self.bias}
  return self.output
end

function Linear:backward(input, grad_output)
  util.check_grad("Linear:backward", grad_output)
  local gi = self.needs_input_grad and self.grad_input or nil
  C.linear_backward{name = "Linear:backward", handle = self._kernel, grad_input = gi, grad_weight = self.weight.grad,
    grad_bias = self.bias and self.bias.grad, grad_output = grad_output, input = input, weight = self.weight}
  return gi
end

function Linear:extra_repr()
  return ("%d, %d%s"):format(self.in_features, self.out_features, self.bias and "" or ", bias=false")
end

return Linear
