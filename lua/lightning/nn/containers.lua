--- nn.Sequential(m1, m2, ...) (or a list): runs its modules in order; net[i] is the i-th module (1-based),
-- net:add(m) appends, #net counts. Children are named "0", "1", ... as in PyTorch, so state_dict keys
-- read "0.weight". nn.Residual(block[, shortcut]): out = block(x) + shortcut(x) (shortcut: identity).
local L = require "lightning"
local class = require "lightning.class"
local options = require "lightning.util.options"
local Module = require "lightning.nn.module"
local backward_hook = require "lightning.nn.backward_hook"

local Sequential = class("Sequential", Module)

function Sequential:__init(...)
  Module.__init(self)
  rawset(self, "_list", {})
  local args = {...}
  if #args == 1 and type(args[1]) == "table" and not class.is_instance(args[1], Module) then args = args[1] end
  for i, m in ipairs(args) do
    if not class.is_instance(m, Module) then
      options.fail("Sequential", "element %d is not a module (got %s)", i, class.name_of(m))
    end
    self:add(m)
  end
end

Sequential.__index = function(self, key)
  if type(key) == "number" then return rawget(self, "_list")[key] end
  return Sequential[key]
end

Sequential.__len = function(self) return #rawget(self, "_list") end

function Sequential:add(m)
  if not class.is_instance(m, Module) then error("Sequential:add: expected a module, got " .. class.name_of(m), 2) end
  local list = rawget(self, "_list")
  list[#list + 1] = m
  self:add_module(tostring(#list - 1), m)
  return self
end

function Sequential:forward(input)
  local x = input
  for _, m in ipairs(self._list) do x = m:forward(x) end
  self.output = x
  return x
end


--- The backward pass, from the last module to the first. When the input needs no gradient
-- (needs_input_grad = false), the modules before the first one that trains are skipped, as autograd
-- skips them: nothing they would compute is used (a frozen stem costs no backward pass).
function Sequential:backward(input, grad_output)
  local list = self._list
  local g = grad_output
  local first = 1
  if self.needs_input_grad == false then
    while first < #list and not list[first]:has_trainable_parameters() do first = first + 1 end
  end
  -- the layer that ran first last time needs its input's gradient now that layers before it run
  local before = self._first_backward
  if before and before ~= first and list[before] then list[before].needs_input_grad = true end
  self._first_backward = first
  if list[first] then list[first].needs_input_grad = self.needs_input_grad ~= false end
  for i = #list, first, -1 do
    local m_input = i > 1 and list[i - 1].output or input
    g = list[i]:backward(m_input, g)
    backward_hook.done(list[i])
  end
  if first > 1 then g = nil end
  self.grad_input = g
  return g
end

local function count(n)
  local s = tostring(n):reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (s:gsub("^,", ""))
end

--- One line per layer: name, output shape of the last forward pass, parameter count.
function Sequential:__tostring()
  local lines, total = {}, 0
  for i, m in ipairs(self._list) do
    local params = m:num_parameters()
    total = total + params
    local desc = tostring(m):gsub("\n", "\n      ")
    local shape = L.is_tensor(m.output) and m.output:numel() > 0 and tostring(m.output:size()) or "-"
    lines[#lines + 1] = ("  (%d): %-48s %-16s %s"):format(i - 1, desc, shape, count(params))
  end
  table.insert(lines, 1, ("Sequential(%d layers, %s parameters)   output shape   params"):format(#self._list, count(total)))
  return table.concat(lines, "\n")
end

local Residual = class("Residual", Module)

function Residual:__init(block, shortcut)
  Module.__init(self)
  if not class.is_instance(block, Module) then options.fail("Residual", "block must be a module") end
  if shortcut ~= nil and not class.is_instance(shortcut, Module) then options.fail("Residual", "shortcut must be a module") end
  self:add_module("block", block)
  if shortcut then self:add_module("shortcut", shortcut) end
  self.output, self.grad_input = L.empty(0), L.empty(0)
end

function Residual:forward(input)
  local a = self.block:forward(input)
  local b = self.shortcut and self.shortcut:forward(input) or input
  if not (a:size() == b:size()) then
    error(("Residual:forward: the block gives %s but the shortcut gives %s"):format(tostring(a:size()),
      tostring(b:size())), 2)
  end
  self.output:resize_as(a):copy(a):add(b)
  return self.output
end

function Residual:backward(input, grad_output)
  local ga = self.block:backward(input, grad_output)
  backward_hook.done(self.block)
  local gb = grad_output
  if self.shortcut then
    gb = self.shortcut:backward(input, grad_output)
    backward_hook.done(self.shortcut)
  end
  self.grad_input:resize_as(input):copy(ga):add(gb)
  return self.grad_input
end

return {Sequential = Sequential, Residual = Residual}
