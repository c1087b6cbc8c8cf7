--- nn.MulConstant(scale): the input times a constant (Torch7's name; PyTorch writes `x * scale` in a
-- forward method). airbench scales its logits by 1/9 with it.
local L = require "lightning"
local class = require "lightning.class"
local options = require "lightning.util.options"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"

local MulConstant = class("MulConstant", Module)

function MulConstant:__init(scale)
  Module.__init(self)
  if type(scale) ~= "number" or scale ~= scale or math.abs(scale) == math.huge then
    options.fail("MulConstant", "scale must be a finite number, got %s", options.describe(scale))
  end
  self.scale = scale
  self.output, self.grad_input = L.empty(0), L.empty(0)
end

function MulConstant:forward(input)
  util.check_input("MulConstant:forward", input)
  self.output:resize_as(input):copy(input):mul(self.scale)
  return self.output
end

function MulConstant:backward(input, grad_output)
  util.check_grad("MulConstant:backward", grad_output)
  self.grad_input:resize_as(grad_output):copy(grad_output):mul(self.scale)
  return self.grad_input
end

function MulConstant:extra_repr() return ("%g"):format(self.scale) end

return MulConstant
