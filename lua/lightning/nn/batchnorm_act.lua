--- nn.BatchNormAct2d(num_features, {activation = "relu" | "gelu", eps, momentum, affine, track_running_stats}):
-- BatchNorm2d followed by an activation, as timm's BatchNormAct2d. Its parameters and buffers are the
-- BatchNorm's, under the BatchNorm's names (weight, bias, running_mean, running_var,
-- num_batches_tracked), so that it saves and loads the state of a PyTorch BatchNorm2d.
-- On a channels-last input in a mixed-precision run (a bf16 or fp16 input, or the layer set to one)
-- the two run as one kernel (csrc/core/nn/batchnorm_channels_last.c): the activation is applied to the
-- normalised values as they are written, and its gradient is folded into the BatchNorm's backward
-- pass, so the normalised tensor is never stored. On any other input (float32 runs) the BatchNorm runs, then the
-- activation's own kernel (as nn.ReLU or nn.GELU computes it), both in float32.
local L = require "lightning"
local class = require "lightning.class"
local util = require "lightning.nn.util"
local batchnorm = require "lightning.nn.batchnorm"
local C = L.core.nn

local BatchNorm2d = batchnorm.BatchNorm2d
local BatchNormAct2d = class("BatchNormAct2d", BatchNorm2d)

function BatchNormAct2d:__init(num_features, opts)
  local o = BatchNorm2d.super.__init(self, num_features, opts, "BatchNormAct2d", {4},
    {activation = {kind = "string", one_of = {"relu", "gelu"}, default = "relu"}})
  self.activation = o.activation
  self._act_kernel = C.kernel_handle()   -- the activation's, when the two run apart (float32)
  self._normed = L.empty(0)        -- the BatchNorm's output when the two run apart
  self._act_output, self._act_grad = L.empty(0), L.empty(0)
  self._fused_output = L.empty(0)  -- the output when they run as one kernel
  self._fused = nil                -- how the last forward pass ran
end

-- Whether the C front takes its channels-last branch for x, where it fuses the activation: a 4-D
-- (N, H, W, C)-strided input with bf16 or fp16 involved (lt_bn_goes_channels_last,
-- csrc/core/nn/batchnorm_channels_last.c).
local HALF = {bfloat16 = true, float16 = true}

function BatchNormAct2d:_fuses(x)
  if x:dim() ~= 4 or ((self.precision or "fp32") == "fp32" and not HALF[x:scalar_type()]) then return false end
  local n, c, h, w = x:size(1), x:size(2), x:size(3), x:size(4)
  local s = x:stride()
  return (c <= 1 or s[2] == 1) and (w <= 1 or s[4] == c) and (h <= 1 or s[3] == w * c) and (n <= 1 or s[1] == h * w * c)
end

function BatchNormAct2d:forward(input)
  local args = self:_forward_args("BatchNormAct2d:forward", input)
  args.handle = self._kernel
  self._fused = self:_fuses(input)
  if self._fused then
    args.output, args.activation = self._fused_output, self.activation
    C.batchnorm_forward(args)
    self.output = self._fused_output
  else
    args.output = self._normed
    C.batchnorm_forward(args)
    C.activation_forward{name = "BatchNormAct2d:forward", handle = self._act_kernel, activation = self.activation,
      negative_slope = 0, output = self._act_output, input = self._normed}
    self.output = self._act_output
  end
  return self.output
end

function BatchNormAct2d:backward(input, grad_output)
  util.check_grad("BatchNormAct2d:backward", grad_output)
  local gi = self.needs_input_grad and self.grad_input or nil
  local gw, gb = self:_grad_fields()
  local g = grad_output
  -- (before any forward pass _fused is nil: the front's check raises the usual error)
  if self._fused == false then
    C.activation_backward{name = "BatchNormAct2d:backward", handle = self._act_kernel, activation = self.activation,
      negative_slope = 0, grad_input = self._act_grad, grad_output = grad_output, input = self._normed,
      output = self._act_output}
    g = self._act_grad
  end
  C.batchnorm_backward{name = "BatchNormAct2d:backward", handle = self._kernel, grad_input = gi, grad_weight = gw,
    grad_bias = gb, grad_output = g, input = input, weight = self.weight, bias = self.bias,
    activation = self._fused and self.activation or nil, save_mean = self._save_mean, save_invstd = self._save_invstd}
  return gi
end

function BatchNormAct2d:extra_repr()
  return BatchNorm2d.extra_repr(self) .. ", activation=" .. self.activation
end

return BatchNormAct2d
