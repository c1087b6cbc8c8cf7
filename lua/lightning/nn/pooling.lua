--- nn.MaxPool2d(kernel_size, {stride = kernel_size, padding = 0}),
-- nn.AvgPool2d(kernel_size, {stride = kernel_size, padding = 0, count_include_pad = true}),
-- nn.AdaptiveAvgPool2d(output_size). Sizes are numbers or {h, w} pairs; outputs keep the input's layout.
local L = require "lightning"
local class = require "lightning.class"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"
local options = require "lightning.util.options"
local C = L.core.nn

local function pool_init(self, name, kernel_size, opts, extra)
  Module.__init(self)
  local specs = {stride = util.PAIR, padding = util.with_default(util.PAIR, 0)}  -- stride: the kernel's
  for k, spec in pairs(extra or {}) do specs[k] = spec end
  local o = util.options(name, opts, specs)
  self.kernel_h, self.kernel_w = util.pair(name, "kernel_size", kernel_size, 1)
  local stride = o.stride
  if stride == nil then self.stride_h, self.stride_w = self.kernel_h, self.kernel_w
  else self.stride_h, self.stride_w = util.pair(name, "stride", stride, 1) end
  self.pad_h, self.pad_w = util.pair(name, "padding", o.padding, 0)
  if self.pad_h * 2 > self.kernel_h or self.pad_w * 2 > self.kernel_w then
    options.fail(name, "padding must be at most half the kernel size")
  end
  self.output, self.grad_input = L.empty(0), L.empty(0)
  self._kernel = C.kernel_handle()
  return o
end

local function pool_repr(self)
  local function p(h, w) return h == w and tostring(h) or ("(%d, %d)"):format(h, w) end
  return ("kernel_size=%s, stride=%s, padding=%s"):format(p(self.kernel_h, self.kernel_w), p(self.stride_h, self.stride_w),
    p(self.pad_h, self.pad_w))
end

local MaxPool2d = class("MaxPool2d", Module)

function MaxPool2d:__init(kernel_size, opts)
  pool_init(self, class.name_of(self), kernel_size, opts)
  self._indices = L.empty(0)
end

function MaxPool2d:forward(input)
  local name = class.name_of(self)
  util.check_input(name .. ":forward", input, {4})
  C.maxpool2d_forward{name = name .. ":forward", handle = self._kernel, output = self.output, indices = self._indices,
    input = input, kernel_h = self.kernel_h, kernel_w = self.kernel_w, stride_h = self.stride_h,
    stride_w = self.stride_w, pad_h = self.pad_h, pad_w = self.pad_w, relu = self._relu}
  return self.output
end

function MaxPool2d:backward(input, grad_output)
  local name = class.name_of(self)
  util.check_grad(name .. ":backward", grad_output)
  C.maxpool2d_backward{name = name .. ":backward", handle = self._kernel, grad_input = self.grad_input,
    grad_output = grad_output, output = self.output, indices = self._indices, input = input, kernel_h = self.kernel_h,
    kernel_w = self.kernel_w, stride_h = self.stride_h, stride_w = self.stride_w, pad_h = self.pad_h,
    pad_w = self.pad_w, relu = self._relu}
  return self.grad_input
end

MaxPool2d.extra_repr = pool_repr

--- nn.ReLUMaxPool2d(kernel_size, opts): ReLU then max pooling as one layer. relu(max(x)) = max(relu(x)),
-- so the ReLU is applied to the pooled values only and its gradient is folded into the pooling's: the
-- same results as nn.ReLU followed by nn.MaxPool2d, without a pass over the full-size activations.
local ReLUMaxPool2d = class("ReLUMaxPool2d", MaxPool2d)
ReLUMaxPool2d._relu = true

local AvgPool2d = class("AvgPool2d", Module)

function AvgPool2d:__init(kernel_size, opts)
  local o = pool_init(self, "AvgPool2d", kernel_size, opts,
    {count_include_pad = {kind = "boolean", default = true}})
  self.count_include_pad = o.count_include_pad
end

function AvgPool2d:forward(input)
  util.check_input("AvgPool2d:forward", input, {4})
  C.avgpool2d_forward{name = "AvgPool2d:forward", handle = self._kernel, output = self.output, input = input,
    kernel_h = self.kernel_h, kernel_w = self.kernel_w, stride_h = self.stride_h, stride_w = self.stride_w,
    pad_h = self.pad_h, pad_w = self.pad_w, count_include_pad = self.count_include_pad}
  return self.output
end

function AvgPool2d:backward(input, grad_output)
  util.check_grad("AvgPool2d:backward", grad_output)
  C.avgpool2d_backward{name = "AvgPool2d:backward", handle = self._kernel, grad_input = self.grad_input,
    grad_output = grad_output, input = input, kernel_h = self.kernel_h, kernel_w = self.kernel_w,
    stride_h = self.stride_h, stride_w = self.stride_w, pad_h = self.pad_h, pad_w = self.pad_w,
    count_include_pad = self.count_include_pad}
  return self.grad_input
end

AvgPool2d.extra_repr = pool_repr

local AdaptiveAvgPool2d = class("AdaptiveAvgPool2d", Module)

function AdaptiveAvgPool2d:__init(output_size)
  Module.__init(self)
  self.out_h, self.out_w = util.pair("AdaptiveAvgPool2d", "output_size", output_size, 1)
  self.output, self.grad_input = L.empty(0), L.empty(0)
  self._kernel = C.kernel_handle()
end

function AdaptiveAvgPool2d:forward(input)
  util.check_input("AdaptiveAvgPool2d:forward", input, {4})
  C.adaptive_avgpool2d_forward{name = "AdaptiveAvgPool2d:forward", handle = self._kernel, output = self.output,
    input = input, out_h = self.out_h, out_w = self.out_w}
  return self.output
end

function AdaptiveAvgPool2d:backward(input, grad_output)
  util.check_grad("AdaptiveAvgPool2d:backward", grad_output)
  C.adaptive_avgpool2d_backward{name = "AdaptiveAvgPool2d:backward", handle = self._kernel,
    grad_input = self.grad_input, grad_output = grad_output, input = input, out_h = self.out_h, out_w = self.out_w}
  return self.grad_input
end

function AdaptiveAvgPool2d:extra_repr()
  return self.out_h == self.out_w and ("output_size=%d"):format(self.out_h) or ("output_size=(%d, %d)"):format(self.out_h, self.out_w)
end

return {MaxPool2d = MaxPool2d, ReLUMaxPool2d = ReLUMaxPool2d, AvgPool2d = AvgPool2d, AdaptiveAvgPool2d = AdaptiveAvgPool2d}
