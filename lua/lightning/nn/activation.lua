--- nn.ReLU({inplace = false}), nn.LeakyReLU(negative_slope = 0.01, {inplace = false}) and nn.GELU().
-- In place, the layer writes its output over its input (saving memory); the backward pass then uses
-- the output's sign, which equals the input's for non-negative slopes.
local L = require "lightning"
local class = require "lightning.class"
local options = require "lightning.util.options"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"
local C = L.core.nn

local LeakyReLU = class("LeakyReLU", Module)
LeakyReLU._activation = "leaky_relu"  -- the kernel's name (csrc/core/nn/activation.c)

function LeakyReLU:__init(negative_slope, opts)
  Module.__init(self)
  if type(negative_slope) == "table" and opts == nil then negative_slope, opts = nil, negative_slope end
  local o = util.options(self._name or "LeakyReLU", opts, {inplace = {kind = "boolean", default = false}})
  self.negative_slope = negative_slope or 0.01
  if type(self.negative_slope) ~= "number" or self.negative_slope ~= self.negative_slope then
    options.fail("LeakyReLU", "negative_slope must be a number, got %s", options.describe(self.negative_slope))
  end
  if o.inplace and self.negative_slope < 0 then options.fail("LeakyReLU", "inplace needs a non-negative slope") end
  self.inplace = o.inplace
  self.output, self.grad_input = L.empty(0), L.empty(0)
  self._kernel = C.kernel_handle()
end

function LeakyReLU:forward(input)
  local name = class.name_of(self)
  util.check_input(name .. ":forward", input)
  if self.inplace then self.output = input end
  C.activation_forward{name = name .. ":forward", handle = self._kernel, activation = self._activation,
    negative_slope = self.negative_slope, output = self.output, input = input}
  return self.output
end

function LeakyReLU:backward(input, grad_output)
  local name = class.name_of(self)
  util.check_grad(name .. ":backward", grad_output)
  C.activation_backward{name = name .. ":backward", handle = self._kernel, activation = self._activation,
    negative_slope = self.negative_slope, grad_input = self.grad_input, grad_output = grad_output,
    input = self.inplace and self.output or input, output = self.output}
  return self.grad_input
end

function LeakyReLU:extra_repr()
  local s = class.name_of(self) == "ReLU" and "" or ("negative_slope=%g"):format(self.negative_slope)
  if self.inplace then s = s .. (s == "" and "" or ", ") .. "inplace=true" end
  return s
end

local ReLU = class("ReLU", LeakyReLU)
ReLU._name = "ReLU"
ReLU._activation = "relu"

function ReLU:__init(opts)
  LeakyReLU.__init(self, 0, opts)
end

--- nn.GELU(): x * Phi(x), the exact (erf) form, PyTorch's default approximate = "none".
local GELU = class("GELU", LeakyReLU)
GELU._name = "GELU"
GELU._activation = "gelu"

function GELU:__init()
  LeakyReLU.__init(self, 0)
end

function GELU:extra_repr() return "" end

return {ReLU = ReLU, LeakyReLU = LeakyReLU, GELU = GELU}
