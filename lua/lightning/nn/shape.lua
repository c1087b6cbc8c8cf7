--- nn.Flatten({start_dim = 2, end_dim = -1}) (1-based: the default keeps the batch dimension) and
-- nn.Identity().
local L = require "lightning"
local class = require "lightning.class"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"

local Flatten = class("Flatten", Module)

function Flatten:__init(opts)
  Module.__init(self)
  local o = util.options("Flatten", opts, {start_dim = {kind = "integer", default = 2},
    end_dim = {kind = "integer", default = -1}})
  self.start_dim, self.end_dim = o.start_dim, o.end_dim
  self._buffer = L.empty(0)
end

local function norm_dim(d, n) if d < 0 then return d + n + 1 end return d end

function Flatten:forward(input)
  util.check_input("Flatten:forward", input)
  local n = input:dim()
  local s, e = norm_dim(self.start_dim, n), norm_dim(self.end_dim, n)
  if s < 1 or e > n or s > e then
    error(("Flatten:forward: dimensions %d..%d are out of range for a %d-D input"):format(self.start_dim,
      self.end_dim, n), 2)
  end
  local size, merged = {}, 1
  for d = 1, n do
    if d < s or d > e then size[#size + 1] = input:size(d)
    else
      merged = merged * input:size(d)
      if d == e then size[#size + 1] = merged end
    end
  end
  if input:is_contiguous() and input:scalar_type() == "float32" then
    self.output = input:view(size)
  else  -- copy into a buffer the layer owns (no allocation once warm); a bf16 activation becomes float32
    self._buffer:resize(input:size()):copy(input)
    self.output = self._buffer:view(size)
  end
  return self.output
end

function Flatten:backward(input, grad_output)
  util.check_grad("Flatten:backward", grad_output)
  self.grad_input = grad_output:reshape(input:size())
  return self.grad_input
end

function Flatten:extra_repr() return ("start_dim=%d, end_dim=%d"):format(self.start_dim, self.end_dim) end

local Identity = class("Identity", Module)

function Identity:forward(input)
  self.output = input
  return input
end

function Identity:backward(input, grad_output)
  self.grad_input = grad_output
  return grad_output
end

return {Flatten = Flatten, Identity = Identity}
