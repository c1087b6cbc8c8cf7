--- nn.Dropout(p = 0.5): in training, zeroes each element with probability p and scales the others by
-- 1 / (1 - p); the mask comes from the global generator (L.manual_seed), so runs repeat exactly. In
-- evaluation it passes its input through.
local L = require "lightning"
local class = require "lightning.class"
local options = require "lightning.util.options"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"
local C = L.core.nn

local Dropout = class("Dropout", Module)

function Dropout:__init(p)
  Module.__init(self)
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or p < 0 or p > 1 then
    options.fail("Dropout", "p must be a probability between 0 and 1, got %s", options.describe(p))
  end
  self.p = p
  self._output, self._grad_input, self._mask = L.empty(0), L.empty(0), L.empty(0)
end

function Dropout:forward(input)
  util.check_input("Dropout:forward", input)
  self._dropped = self.training and self.p > 0
  if not self._dropped then
    self.output = input
  else
    C.dropout_forward("Dropout:forward", self._output, self._mask, input, self.p)
    self.output = self._output
  end
  return self.output
end

function Dropout:backward(input, grad_output)
  util.check_grad("Dropout:backward", grad_output)
  if not self._dropped then
    self.grad_input = grad_output
  else
    C.dropout_backward("Dropout:backward", self._grad_input, grad_output, self._mask)
    self.grad_input = self._grad_input
  end
  return self.grad_input
end

function Dropout:extra_repr() return ("p=%g"):format(self.p) end

return Dropout
