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
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then   -- (NaN fails both comparisons)
    options.fail("Dropout", "p must be a probability between 0 and 1, got %s", options.describe(p))
  end
  self.p = p
  self._output, self._grad_input, self._mask = L.empty(0), L.empty(0), L.empty(0)
  self._kernel = C.kernel_handle()
end

function Dropout:forward(input)
  util.check_input("Dropout:forward", input)
  -- the kernel returns the tensor that holds the result: input itself outside training or with p = 0
  self.output = C.dropout_forward{name = "Dropout:forward", handle = self._kernel, p = self.p, training = self.training,
    output = self._output, mask = self._mask, input = input}
  return self.output
end

function Dropout:backward(input, grad_output)
  util.check_grad("Dropout:backward", grad_output)
  self.grad_input = C.dropout_backward{name = "Dropout:backward", handle = self._kernel, p = self.p,
    grad_input = self._grad_input, grad_output = grad_output, mask = self._mask, input = input}
  return self.grad_input
end

function Dropout:extra_repr() return ("p=%g"):format(self.p) end

return Dropout
