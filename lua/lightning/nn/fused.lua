--- nn.BatchNormReLUMaxPool2d(bn): BatchNorm2d -> ReLU -> MaxPool2d(2) as one layer, over the parameters and
-- running statistics of an existing nn.BatchNorm2d `bn` (which stays the module that owns them, so
-- state_dict names do not change). The same results as the three layers, computed without writing or
-- reading the full-size normalised tensor and its gradient (csrc/core/nn/bn_relu_pool.c).
local L = require "lightning"
local class = require "lightning.class"
local options = require "lightning.util.options"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"
local C = L.core.nn

local BatchNormReLUMaxPool2d = class("BatchNormReLUMaxPool2d", Module)

function BatchNormReLUMaxPool2d:__init(bn)
  Module.__init(self)
  if not (class.is_instance(bn, Module) and class.name_of(bn) == "BatchNorm2d") then
    options.fail("BatchNormReLUMaxPool2d", "expected the nn.BatchNorm2d whose parameters it uses, got %s", class.name_of(bn))
  end
  self.bn = bn  -- a plain field, not a child: bn's parameters are counted where bn is registered
  self.needs_input_grad = true
  self.output, self.grad_input, self._dy = L.empty(0), L.empty(0), L.empty(0)
  self._codes = L.empty(0)  -- which element of each window passed (for the backward pass)
end

function BatchNormReLUMaxPool2d:forward(input)
  local bn, fname = self.bn, "BatchNormReLUMaxPool2d:forward"
  C.bn_relu_pool_forward(fname, self.output, self._codes, bn._save_mean, bn._save_invstd, input,
    bn:_forward_args(fname, input))
  return self.output
end

function BatchNormReLUMaxPool2d:backward(input, grad_output)
  util.check_grad("BatchNormReLUMaxPool2d:backward", grad_output)
  local bn = self.bn
  local gi = self.needs_input_grad and self.grad_input or nil
  C.bn_relu_pool_backward("BatchNormReLUMaxPool2d:backward", gi, bn.weight and bn.weight.grad, bn.bias and bn.bias.grad,
    self._dy, grad_output, self.output, self._codes, input, bn.weight, bn.bias, bn._save_mean, bn._save_invstd,
    bn._batch_stats)
  return gi
end

function BatchNormReLUMaxPool2d:extra_repr() return tostring(self.bn) .. ", ReLU, MaxPool2d(2)" end

return BatchNormReLUMaxPool2d
