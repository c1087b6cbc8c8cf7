--- nn.BatchNormReLUMaxPool2d(bn): BatchNorm2d -> ReLU -> MaxPool2d(2) as one layer, over the parameters and
-- running statistics of an existing nn.BatchNorm2d `bn` (which stays the module that owns them, so
-- state_dict names do not change). The same results as the three layers, computed without writing or
-- reading the full-size normalised tensor and its gradient (csrc/core/cpu/bn_relu_pool.c). When bn adds
-- its statistics over processes (an nn.SyncBatchNorm in a data-parallel run) the three run one by one.
local L = require "lightning"
local class = require "lightning.class"
local options = require "lightning.util.options"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"
local backward_hook = require "lightning.nn.backward_hook"
local pooling = require "lightning.nn.pooling"
local C = L.core.nn

local BatchNormReLUMaxPool2d = class("BatchNormReLUMaxPool2d", Module)

function BatchNormReLUMaxPool2d:__init(bn)
  Module.__init(self)
  local kind = class.name_of(bn)
  if not (class.is_instance(bn, Module) and (kind == "BatchNorm2d" or kind == "SyncBatchNorm")) then
    options.fail("BatchNormReLUMaxPool2d", "expected the nn.BatchNorm2d whose parameters it uses, got %s", class.name_of(bn))
  end
  self.bn = bn  -- a plain field, not a child: bn's parameters are counted where bn is registered
  self.needs_input_grad = true
  self.output, self.grad_input, self._dy = L.empty(0), L.empty(0), L.empty(0)
  self._fused_output = self.output
  self._codes = L.empty(0)  -- which element of each window passed (for the backward pass)
  self._kernel = C.kernel_handle()
  -- (the unfused path's second step, made here so that it moves with the layer: Module:to)
  self._relu_pool = pooling.ReLUMaxPool2d(2)
end

-- With statistics added over processes (nn.SyncBatchNorm), the layers run one by one: bn, then ReLU
-- and pooling.
local function unfused_forward(self, input)
  self._unfused = true
  self.output = self._relu_pool:forward(self.bn:forward(input))
  return self.output
end

local function unfused_backward(self, input, grad_output)
  local bn = self.bn
  local g = self._relu_pool:backward(bn.output, grad_output)
  bn.needs_input_grad = self.needs_input_grad
  local gi = bn:backward(input, g)
  backward_hook.done(bn)
  return gi
end

function BatchNormReLUMaxPool2d:forward(input)
  self._unfused = false
  if self.bn:_reduces_statistics() then return unfused_forward(self, input) end
  self.output = self._fused_output
  local args = self.bn:_forward_args("BatchNormReLUMaxPool2d:forward", input)
  args.handle, args.output, args.codes = self._kernel, self.output, self._codes
  C.bn_relu_pool_forward(args)
  return self.output
end

function BatchNormReLUMaxPool2d:backward(input, grad_output)
  util.check_grad("BatchNormReLUMaxPool2d:backward", grad_output)
  if self._unfused then return unfused_backward(self, input, grad_output) end
  local bn = self.bn
  local gi = self.needs_input_grad and self.grad_input or nil
  C.bn_relu_pool_backward{name = "BatchNormReLUMaxPool2d:backward", handle = self._kernel, grad_input = gi,
    grad_weight = bn.weight and bn.weight.grad, grad_bias = bn.bias and bn.bias.grad, dy = self._dy,
    grad_output = grad_output, output = self.output, codes = self._codes, input = input, weight = bn.weight,
    bias = bn.bias, save_mean = bn._save_mean, save_invstd = bn._save_invstd}
  backward_hook.done(bn)   -- bn's gradients are final (bn is the module that holds them)
  return gi
end

function BatchNormReLUMaxPool2d:extra_repr() return tostring(self.bn) .. ", ReLU, MaxPool2d(2)" end

return BatchNormReLUMaxPool2d
