--- nn.Conv2d(in_channels, out_channels, kernel_size, {stride = 1, padding = 0, bias = true}).
-- kernel_size, stride and padding are numbers or {h, w} pairs. The output comes in the batch-folded
-- layout (see csrc/core/nn/nn.h): an ordinary N x C x H x W tensor that is not contiguous; use
-- reshape() or contiguous() rather than view() on it.
local L = require "lightning"
local class = require "lightning.class"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"
local C = L.core.nn

local Conv2d = class("Conv2d", Module)

function Conv2d:__init(in_channels, out_channels, kernel_size, opts)
  Module.__init(self)
  local o = util.options("Conv2d", opts, {stride = util.with_default(util.PAIR, 1), padding = util.with_default(util.PAIR, 0),
    bias = {kind = "boolean", default = true}})
  self.in_channels = util.positive_int("Conv2d", "in_channels", in_channels)
  self.out_channels = util.positive_int("Conv2d", "out_channels", out_channels)
  self.kernel_h, self.kernel_w = util.pair("Conv2d", "kernel_size", kernel_size, 1)
  self.stride_h, self.stride_w = util.pair("Conv2d", "stride", o.stride, 1)
  self.pad_h, self.pad_w = util.pair("Conv2d", "padding", o.padding, 0)
  self:register_parameter("weight", L.empty(out_channels, in_channels, self.kernel_h, self.kernel_w))
  if o.bias then self:register_parameter("bias", L.empty(out_channels)) end
  self.needs_input_grad = true
  self.output, self.grad_input = L.empty(0), L.empty(0)
  -- scratch: the threads' im2col buffers, and grad_output in the batch-folded layout when it arrives in
  -- another one
  self._cols, self._dy = L.empty(0), L.empty(0)
  self._kernel = C.kernel_handle()
  self:reset_parameters()
end

function Conv2d:reset_parameters()
  util.reset_uniform(self.weight, self.bias, self.in_channels * self.kernel_h * self.kernel_w)
end

function Conv2d:forward(input)
  util.check_input("Conv2d:forward", input, {4})
  C.conv2d_forward{name = "Conv2d:forward", handle = self._kernel, output = self.output, cols = self._cols,
    input = input, weight = self.weight, bias = self.bias, kernel_h = self.kernel_h, kernel_w = self.kernel_w,
    stride_h = self.stride_h, stride_w = self.stride_w, pad_h = self.pad_h, pad_w = self.pad_w}
  return self.output
end

-- The weight gradient's tensor: p.grad, or for a frozen weight (requires_grad = false) a zeroed
-- scratch tensor, since the kernel computes it whenever it runs; p.grad stays untouched.
function Conv2d:_weight_grad()
  local w = self.weight
  if w.requires_grad ~= false then return w.grad end
  if self._frozen_grad == nil or self._frozen_grad:numel() ~= w:numel() then
    self._frozen_grad = L.zeros(w:size()):to(w:device())
  end
  return self._frozen_grad:zero()
end

function Conv2d:backward(input, grad_output)
  util.check_grad("Conv2d:backward", grad_output)
  local gi = self.needs_input_grad and self.grad_input or nil
  local bias = self.bias
  local gb = bias and bias.requires_grad ~= false and bias.grad or nil
  if gi == nil and gb == nil and self.weight.requires_grad == false then return nil end  -- nothing to compute
  C.conv2d_backward{name = "Conv2d:backward", handle = self._kernel, grad_input = gi,
    grad_weight = self:_weight_grad(), grad_bias = gb, grad_output = grad_output,
    input = input, weight = self.weight, cols = self._cols, dy = self._dy, kernel_h = self.kernel_h,
    kernel_w = self.kernel_w, stride_h = self.stride_h, stride_w = self.stride_w, pad_h = self.pad_h,
    pad_w = self.pad_w}
  return gi
end

local function pair_repr(h, w) return h == w and tostring(h) or ("(%d, %d)"):format(h, w) end

function Conv2d:extra_repr()
  local s = ("%d, %d, kernel_size=%s"):format(self.in_channels, self.out_channels,
    pair_repr(self.kernel_h, self.kernel_w))
  if self.stride_h ~= 1 or self.stride_w ~= 1 then s = s .. ", stride=" .. pair_repr(self.stride_h, self.stride_w) end
  if self.pad_h ~= 0 or self.pad_w ~= 0 then s = s .. ", padding=" .. pair_repr(self.pad_h, self.pad_w) end
  if not self.bias then s = s .. ", bias=false" end
  return s
end

return Conv2d
