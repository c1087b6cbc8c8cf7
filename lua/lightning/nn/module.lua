--- nn.Module: the protocol every layer follows (Torch7's, with PyTorch's names).
--   output = m:forward(input)                 -- the module owns `output` and reuses it next call
--   grad_input = m:backward(input, grad_output) -- accumulates parameter gradients into p.grad
--   m:parameters(), m:named_parameters(), m:state_dict(), m:load_state_dict(sd), m:train(), m:eval()
--   m:flatten_parameters() --> flat_params, flat_grads (all parameters in one tensor, gradients in another)
--   m:to(device), m:cuda(), m:cpu(), m:device()  (in place: the tensors keep their identity)
-- A layer registers its parameters and buffers under PyTorch's names, and its children in order, so
-- that state_dict keys read "conv1.weight", "bn1.running_mean", "0.weight" (inside Sequential).
local L = require "lightning"
local class = require "lightning.class"
local flat = require "lightning.nn.flat"
local module_node = require "lightning.autograd.module_node"
local mode = require "lightning.autograd.mode"

local Module = class("Module")

--- forward, as a subclass defines it, refuses a tensor tracked by autograd (the module must be called,
-- m(x), to be recorded: lightning/autograd/module_node.lua).
function Module.__on_define(_, key, value)
  if key == "forward" and type(value) == "function" then return module_node.checked_forward(value, Module) end
  return value
end

function Module:__init()
  self.training = true
  self._parameters = {}   -- ordered list of names
  self._buffers = {}
  self._modules = {}
end

--- Registers a parameter tensor under `name` (self[name] = t) with a zeroed gradient t.grad.
function Module:register_parameter(name, t)
  if self[name] == nil then table.insert(self._parameters, name) end
  self[name] = t
  if t and not t.grad then t.grad = L.zeros(t:size()):to(t:device()) end   -- (on the parameter's device)
  if t and t.requires_grad == nil then t.requires_grad = true end
  return t
end

--- Registers a buffer (state that is saved but not trained, such as BatchNorm's running mean).
function Module:register_buffer(name, t)
  if self[name] == nil then table.insert(self._buffers, name) end
  self[name] = t
  return t
end

--- Registers a child module under `name` (a string, or an index for containers).
function Module:add_module(name, m)
  name = tostring(name)
  for _, n in ipairs(self._modules) do
    if n == name then self[name] = m return m end
  end
  table.insert(self._modules, name)
  self[name] = m
  return m
end

--- Child modules in registration order: an iterator of (name, module).
function Module:named_children()
  local i = 0
  return function()
    i = i + 1
    local name = self._modules[i]
    if name then return name, self[name] end
  end
end

function Module:children()
  local list = {}
  for _, m in self:named_children() do list[#list + 1] = m end
  return list
end

-- Walks this module and its descendants depth-first; visit(prefix, module).
function Module:_walk(visit, prefix)
  prefix = prefix or ""
  visit(prefix, self)
  for name, m in self:named_children() do m:_walk(visit, prefix .. name .. ".") end
end

local function named(self, kind)
  local list = {}
  self:_walk(function(prefix, m)
    for _, name in ipairs(m[kind]) do
      if m[name] then list[#list + 1] = {prefix .. name, m[name]} end
    end
  end)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

--- Iterator of ("conv1.weight", tensor) pairs, in registration order.
function Module:named_parameters() return named(self, "_parameters") end
function Module:named_buffers() return named(self, "_buffers") end

--- The list of parameter tensors (each carries its gradient as p.grad).
function Module:parameters()
  local list = {}
  for _, p in self:named_parameters() do list[#list + 1] = p end
  return list
end

--- Whether a parameter of the module (or of its children) trains (requires_grad not false).
function Module:has_trainable_parameters()
  for _, p in ipairs(self:parameters()) do
    if p.requires_grad ~= false then return true end
  end
  return false
end

function Module:buffers()
  local list = {}
  for _, b in self:named_buffers() do list[#list + 1] = b end
  return list
end

--- Every module of the tree, this one first.
function Module:modules()
  local list = {}
  self:_walk(function(_, m) list[#list + 1] = m end)
  return list
end

function Module:apply(fn)
  for _, m in ipairs(self:modules()) do fn(m) end
  return self
end

--- The precision the layers compute in from their next call on: "fp32", "bf16" or "fp16" (mixed
-- precision: bf16 or fp16 where an implementation computes the layer's shape in it, float32 elsewhere;
-- fp16 has implementations on a GPU only; see docs/nn.md). Parameters, their gradients and buffers
-- stay float32.
function Module:set_precision(precision)
  if precision ~= "fp32" and precision ~= "bf16" and precision ~= "fp16" then
    error(("Module:set_precision: precision must be \"fp32\", \"bf16\" or \"fp16\", got %s"):format(tostring(precision)), 2)
  end
  for _, m in ipairs(self:modules()) do
    if m._kernel then m._kernel:set_precision(precision) end
    m.precision = precision
  end
  return self
end

-- Moves with t:_move_to_(device) every tensor field (and its gradient t.grad) of the module, of its
-- children and of the modules it holds without registering them: a layer's helper, or the fused layers
-- of a model's list of steps (modules are looked for inside plain tables too; tensors there, such as a
-- data set a module refers to, stay where they are). Objects of other classes (the Trainer, metrics)
-- are not walked.
local function move_tensors(root, device)
  local seen = {}
  local function visit(t, is_module)
    if seen[t] then return end
    seen[t] = true
    for _, value in pairs(t) do
      if L.is_tensor(value) then
        if is_module then
          value:_move_to_(device)
          if L.is_tensor(value.grad) then value.grad:_move_to_(device) end
        end
      elseif type(value) == "table" then
        if class.is_instance(value, Module) then visit(value, true)
        elseif getmetatable(value) == nil then visit(value, false) end
      end
    end
  end
  visit(root, true)
end

--- Moves the module to device ("cpu", "cuda", "cuda:0") in place, as PyTorch's module.to: every
-- tensor it keeps (parameters and their gradients, buffers such as BatchNorm's running statistics,
-- outputs and scratch such as a convolution's columns) moves with t:_move_to_, so each keeps its
-- identity and an optimizer made before still holds the parameters. Returns self.
function Module:to(device)
  flat.move(self:parameters(), device)   -- (flattened parameters move with their buffers, still views of them)
  move_tensors(self, device)
  return self
end

function Module:cuda() return self:to("cuda") end
function Module:cpu() return self:to("cpu") end

--- Where the module's parameters are ("cpu", "cuda:0"); "cpu" for a module without parameters.
function Module:device()
  local first = self:parameters()[1]
  return first and first:device() or "cpu"
end

function Module:train(mode)
  if mode == nil then mode = true end
  for _, m in ipairs(self:modules()) do m.training = mode end
  return self
end

function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do
    if p.grad then p.grad:zero() end
  end
end

--- Parameters and buffers by PyTorch name: {["conv1.weight"] = tensor, ...}. The tensors are the
-- module's own (not copies), as PyTorch's state_dict shares storage.
function Module:state_dict()
  local sd = {}
  for name, p in self:named_parameters() do sd[name] = p end
  for name, b in self:named_buffers() do sd[name] = b end
  return sd
end

--- Ordered names of the state dict: parameters and buffers module by module, as PyTorch orders them.
function Module:state_dict_keys()
  local keys = {}
  self:_walk(function(prefix, m)
    for _, name in ipairs(m._parameters) do if m[name] then keys[#keys + 1] = prefix .. name end end
    for _, name in ipairs(m._buffers) do if m[name] then keys[#keys + 1] = prefix .. name end end
  end)
  return keys
end

--- Copies values from sd into the module's tensors. strict (default true): every key must match and
-- shapes must agree; the error lists what is missing and what is unexpected.
local function load_state_dict(self, sd, strict)
  if strict == nil then strict = true end
  local own = self:state_dict()
  local missing, unexpected, mismatched = {}, {}, {}
  for _, name in ipairs(self:state_dict_keys()) do
    local src, dst = sd[name], own[name]
    if src == nil then
      missing[#missing + 1] = name
    elseif not L.is_tensor(src) then
      mismatched[#mismatched + 1] = ("%s (expected a tensor, got %s)"):format(name, type(src))
    elseif src:numel() ~= dst:numel() or (src:dim() ~= dst:dim() and src:numel() ~= 1) then
      mismatched[#mismatched + 1] = ("%s (checkpoint %s, model %s)"):format(name, tostring(src:size()),
        tostring(dst:size()))
    end
  end
  for name in pairs(sd) do
    if own[name] == nil then unexpected[#unexpected + 1] = name end
  end
  table.sort(unexpected)
  if #mismatched > 0 then
    error("load_state_dict: size mismatch for " .. table.concat(mismatched, ", "), 2)
  end
  if strict and (#missing > 0 or #unexpected > 0) then
    local parts = {}
    if #missing > 0 then parts[#parts + 1] = "missing keys: " .. table.concat(missing, ", ") end
    if #unexpected > 0 then parts[#parts + 1] = "unexpected keys: " .. table.concat(unexpected, ", ") end
    error("load_state_dict: " .. table.concat(parts, "; "), 2)
  end
  for name, dst in pairs(own) do
    local src = sd[name]
    if src ~= nil then
      src = src:view(dst:size())
      -- values read on the host into a model on the GPU (or the reverse) go to the model's device
      if src:device() ~= dst:device() then src = src:to(dst:device()) end
      dst:copy(src)
    end
  end
  return {missing_keys = missing, unexpected_keys = unexpected}
end

--- Copies sd's tensors into the module's parameters and buffers (never recorded for autograd).
function Module:load_state_dict(sd, strict)
  return mode.with_grad_enabled(false, load_state_dict, self, sd, strict)
end

--- Number of parameter elements (trainable weights).
function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

--- Moves the parameters into one contiguous tensor and their gradients into another (each parameter and
-- p.grad becomes a view into them; values, optimizers and state_dict are unaffected) and returns the two
-- flat tensors, so that an all-reduce or a global gradient norm is one call over one buffer. Calling it
-- again returns the same buffers while the parameters are unchanged. See lightning/nn/flat.lua.
function Module:flatten_parameters()
  return flat.flatten(self:parameters(), class.name_of(self) .. ":flatten_parameters")
end

--- The buffers of flatten_parameters (flat_params, flat_grads) while they still hold every parameter
-- and gradient of the module, else nil.
function Module:flat_parameters()
  local rec = flat.flat_of(self:parameters())
  if rec then return rec.flat_params, rec.flat_grads end
  return nil
end

function Module:forward(input)
  error(class.name_of(self) .. ":forward is not implemented", 2)
end

function Module:backward(input, grad_output)
  error(class.name_of(self) .. ":backward is not implemented", 2)
end

--- The module's backward pass as autograd calls it: args are the forward's arguments, g the gradient
-- of its output. A criterion passes the target through (nn/loss.lua).
function Module:_autograd_backward(args, g)
  return self:backward(args[1], g)
end

-- A module without parameters (a loss, an activation, pooling) computes where its input is, as
-- PyTorch's do: called on a tensor of another device, its scratch and outputs move there first. One with
-- parameters refuses an input elsewhere, naming the devices (nothing copies weights behind the user's back).
local function follow_input_device(self, x)
  if not L.is_tensor(x) then return end
  local d = x:device()
  if self._input_device == d then return end
  self._input_device = d
  if #self:parameters() == 0 then self:to(d) end
end

--- m(x) is m:forward(x), recorded by autograd (as PyTorch's module call): a layer with a backward
-- pass of its own is one node of the graph. A class whose call differs from its Torch7 forward names
-- it _tensor_forward (a loss: a one-element tensor where the input is, where forward gives a number).
function Module:__call(x, ...)
  follow_input_device(self, x)
  return module_node.call_with(self, Module, self._tensor_forward or self.forward, x, ...)
end

--- Calls fn(self, ...) in place of forward, recorded as m(...) is (for a forward with options, such as a
-- model's debugging pass).
function Module:call_with(fn, ...) return module_node.call_with(self, Module, fn, ...) end

--- One line describing the layer, such as "Conv2d(3, 32, kernel_size=3, padding=1)".
function Module:extra_repr() return "" end

function Module:__tostring()
  local name = class.name_of(self)
  if #self._modules == 0 then return name .. "(" .. self:extra_repr() .. ")" end
  local lines = {name .. "("}
  for child_name, m in self:named_children() do
    local text = tostring(m):gsub("\n", "\n  ")
    lines[#lines + 1] = "  (" .. child_name .. "): " .. text
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

return Module
