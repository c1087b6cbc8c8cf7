--- lightning.optim.Optimizer: what SGD, Adam and AdamW share (PyTorch's torch.optim.Optimizer).
--   opt.param_groups[i]  a table per group: params (a list of tensors) and the group's options (lr, ...)
--   opt.state[p]         the state of parameter p (its momentum buffer or moments), made at its first step
--   opt:zero_grad([set_to_none]), opt:step([closure]), opt:add_param_group(group)
--   opt:state_dict(), opt:load_state_dict(sd)
-- A subclass sets `options` (the spec of each option: see lightning/util/options.lua), `state_keys` (the names and
-- kinds of its per-parameter state) and `_update(p, grad, group, state, index)`.
local L = require "lightning"
local class = require "lightning.class"
local check = require "lightning.util.options"
local flat_step = require "lightning.optim.flat_step"

local Optimizer = class("Optimizer")

-- Keys that schedulers add to parameter groups (PyTorch's names): allowed beside an optimizer's options.
Optimizer.scheduler_keys = {initial_lr = true, max_lr = true, min_lr = true, base_momentum = true,
  max_momentum = true}
-- Keys a parameter group may hold beside the optimizer's options.
local group_keys = {params = true}
for key in pairs(Optimizer.scheduler_keys) do group_keys[key] = true end

local fail, describe, copy_value = check.fail, check.describe, check.copy

--- The name errors use: "lightning.optim.Adam".
function Optimizer:_fname(method)
  return "lightning.optim." .. class.name_of(self) .. (method and ":" .. method or "")
end

--- The first problem with a group's options (the message), or nil. Allocates nothing when all is
-- well, as step() runs it on every call. allow_missing: absent options are no problem (the defaults).
-- Names are checked in sorted order: the same problem is reported whatever the table's order.
function Optimizer:_options_problem(group, allow_missing)
  for _, name in ipairs(check.sorted_names(self.options)) do
    local value = group[name]
    if value == nil then
      if not allow_missing then return name .. " is missing" end
    else
      local problem = check.problem(self.options[name], value, name)
      if problem then return problem end
    end
  end
  return self:_combination_problem(group)
end

-- Raises on the first problem; `where` prefixes the message ("parameter group 2: ").
function Optimizer:_check_options(group, fname, where, allow_missing)
  local problem = self:_options_problem(group, allow_missing)
  if problem then fail(fname, "%s%s", where, problem) end
end

--- Rules across options of a subclass (SGD: nesterov needs momentum): a message, or nil.
function Optimizer:_combination_problem(group) end

function Optimizer:_check_known(t, fname, where, extra) check.check_names(fname, where, t, self.options, extra) end

function Optimizer:__init(params, options)
  local fname = self:_fname()
  options = check.check_table(fname, options)
  self:_check_known(options, fname, "")
  self.defaults = {}
  for name, spec in pairs(self.options) do
    local value = options[name]
    if value == nil then value = spec.default end
    self.defaults[name] = copy_value(value)
  end
  self:_check_options(self.defaults, fname, "", true)
  self.state = {}
  self.param_groups = {}

  if type(params) ~= "table" then
    fail(fname, "argument 1 (params) must be a list of tensors or of parameter groups, got %s", describe(params))
  end
  if #params == 0 then fail(fname, "got an empty parameter list") end
  if L.is_tensor(params[1]) then
    self:_add_group({params = params}, fname, "")
  else
    for i = 1, #params do
      if type(params[i]) ~= "table" then
        fail(fname, "params[%d] must be a parameter group (a table with params) like params[1], got %s", i, describe(params[i]))
      end
      self:_add_group(params[i], fname, ("parameter group %d: "):format(i))
    end
  end
end

--- Adds a group {params = {...}, lr = ..., ...}; options it leaves out take the optimizer's defaults.
function Optimizer:add_param_group(group)
  self:_add_group(group, self:_fname("add_param_group"), ("parameter group %d: "):format(#self.param_groups + 1))
end

-- where: the prefix of messages about this group ("parameter group 2: ", or "" for a plain list).
function Optimizer:_add_group(group, fname, where)
  if type(group) ~= "table" then fail(fname, "%sexpected a table with params, got %s", where, describe(group)) end
  local params = group.params
  if L.is_tensor(params) then params = {params} end
  if type(params) ~= "table" then fail(fname, "%sparams must be a tensor or a list of tensors, got %s", where, describe(params)) end
  self:_check_known(group, fname, where, group_keys)

  local seen = {}
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do seen[p] = true end
  end
  local list = {}
  for i = 1, #params do
    local p = params[i]
    if not L.is_tensor(p) then fail(fname, "%sparams[%d] must be a tensor, got %s", where, i, describe(p)) end
    if not p:is_contiguous() then
      fail(fname, "%sparams[%d] is not contiguous (optimizers update parameters in place)", where, i)
    end
    if seen[p] then fail(fname, "%sparams[%d] appears more than once in the optimizer's parameters", where, i) end
    seen[p] = true
    list[i] = p
  end
  if #list == 0 then fail(fname, "%sparams is empty", where) end

  local new = {}
  for key, value in pairs(group) do new[key] = copy_value(value) end
  new.params = list
  for name, value in pairs(self.defaults) do
    if new[name] == nil then new[name] = copy_value(value) end
  end
  for name, spec in pairs(self.options) do
    if new[name] == nil and spec.required then
      fail(fname, "%soption %s is required (it has no default)", where, name)
    end
  end
  self:_check_options(new, fname, where)
  self.param_groups[#self.param_groups + 1] = new
end

--- Sets every gradient to zero (or to nil with set_to_none = true, PyTorch's option).
function Optimizer:zero_grad(set_to_none)
  for _, group in ipairs(self.param_groups) do
    if set_to_none or not flat_step.zero_grad(group) then self:_zero_grads(group, set_to_none) end
  end
end

function Optimizer:_zero_grads(group, set_to_none)
  for _, p in ipairs(group.params) do
    local grad = p.grad
    if grad ~= nil then
      if set_to_none then p.grad = nil else grad:zero() end
    end
  end
end

--- One update of every parameter that has a gradient (p.grad); others are skipped, as in PyTorch, and
-- so are frozen parameters (p.requires_grad = false: PyTorch's autograd leaves their grad None), which
-- get no update, no weight decay and no momentum while frozen. closure, if given, is called first and
-- its result returned.
function Optimizer:step(closure)
  local loss
  if closure ~= nil then loss = closure() end
  local index = 0
  for gi, group in ipairs(self.param_groups) do
    local problem = self:_options_problem(group)
    if problem then fail(self:_fname("step"), "parameter group %d: %s", gi, problem) end
    -- flat parameters (Module:flatten_parameters): the whole group in one update (optim/flat_step.lua)
    if not flat_step.step(self, group, index + 1) then self:_step_each(group, index) end
    index = index + #group.params
  end
  return loss
end

-- The group's parameters one by one; index: the number of parameters in the groups before it.
function Optimizer:_step_each(group, index)
  for _, p in ipairs(group.params) do
    index = index + 1
    local grad = p.grad
    if grad ~= nil and p.requires_grad ~= false then
      if not L.is_tensor(grad) then
        fail(self:_fname("step"), "parameter %d: p.grad must be a tensor or nil, got %s", index, describe(grad))
      end
      local state = self.state[p]
      if state == nil then
        state = {}
        self.state[p] = state
      end
      self:_update(p, grad, group, state, index)
    end
  end
end

function Optimizer:_update(p, grad, group, state, index)
  error(self:_fname("step") .. ": not implemented", 0)
end

--- Parameters in order across groups: list of tensors, and tensor -> 1-based index.
function Optimizer:_indexed_params()
  local list, index_of = {}, {}
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      list[#list + 1] = p
      index_of[p] = #list
    end
  end
  return list, index_of
end

--- The optimizer's state as plain tables (PyTorch's layout, with 1-based parameter indices):
--   {state = {[i] = {step = 3, exp_avg = tensor, ...}, ...},   -- only parameters that have state
--    param_groups = {{lr = ..., betas = {...}, ..., params = {1, 2, 3}}, ...}}
-- The tensors are the optimizer's own, as in PyTorch: clone them to keep a snapshot.
function Optimizer:state_dict()
  local _, index_of = self:_indexed_params()
  local groups = {}
  for gi, group in ipairs(self.param_groups) do
    local packed = {}
    for key, value in pairs(group) do
      if key ~= "params" then packed[key] = copy_value(value) end
    end
    packed.params = {}
    for i, p in ipairs(group.params) do packed.params[i] = index_of[p] end
    groups[gi] = packed
  end
  local state = {}
  for p, s in pairs(self.state) do
    if next(s) ~= nil then
      local entry = {}
      for key, value in pairs(s) do entry[key] = value end
      state[index_of[p]] = entry
    end
  end
  return {state = state, param_groups = groups}
end

local function shape_str(t) return table.concat(t:size(), "x") end

local function same_shape(a, b)
  if a:dim() ~= b:dim() then return false end
  for d = 1, a:dim() do
    if a:size(d) ~= b:size(d) then return false end
  end
  return true
end

-- Checks one parameter's saved state; returns the state to install (tensors copied).
function Optimizer:_load_param_state(fname, index, p, saved)
  local where = ("state for parameter %d: "):format(index)
  if type(saved) ~= "table" then fail(fname, "%sexpected a table, got %s", where, describe(saved)) end
  check.check_entries(fname, where, saved, self.state_keys, class.name_of(self))
  local state = {}
  for _, key in ipairs(check.sorted_keys(saved)) do  -- sorted: the same error whatever the table's order
    local value, kind = saved[key], self.state_keys[key]
    if kind == "tensor" then
      if not L.is_tensor(value) then fail(fname, "%s%s must be a tensor, got %s", where, key, describe(value)) end
      if not same_shape(value, p) then
        fail(fname, "%s%s has shape %s, expected %s (the parameter's)", where, key, shape_str(value), shape_str(p))
      end
      -- a copy on the parameter's device (a checkpoint is read on the host, the model may be on the GPU)
      local moved = value:to(p:device())
      state[key] = moved == value and value:clone() or moved
    else
      if math.type(value) ~= "integer" and not (type(value) == "number" and value == math.floor(value) and value >= 0) then
        fail(fname, "%s%s must be a non-negative integer, got %s", where, key, describe(value))
      end
      state[key] = math.tointeger(value)
    end
  end
  return state
end

--- Loads what state_dict() returned (or the same tables after a trip through a checkpoint). The
-- number of groups and of parameters in each, and the state tensors' shapes, must match; nothing
-- changes when they do not. Tensors are copied, so sd stays independent of the optimizer.
function Optimizer:load_state_dict(sd)
  local fname = self:_fname("load_state_dict")
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table" then
    fail(fname, "expected a table with state and param_groups (from state_dict()), got %s", describe(sd))
  end
  local saved_groups = sd.param_groups
  if #saved_groups ~= #self.param_groups then
    fail(fname, "the state dict has %d parameter group(s), the optimizer has %d", #saved_groups, #self.param_groups)
  end
  local groups = {}
  for gi, group in ipairs(self.param_groups) do
    local saved = saved_groups[gi]
    local where = ("parameter group %d: "):format(gi)
    if type(saved) ~= "table" or type(saved.params) ~= "table" then
      fail(fname, "%sexpected a table with params, got %s", where, describe(saved))
    end
    if #saved.params ~= #group.params then
      fail(fname, "%sthe state dict has %d parameter(s), the optimizer has %d", where, #saved.params, #group.params)
    end
    self:_check_known(saved, fname, where, group_keys)
    local new = {}
    for key, value in pairs(group) do new[key] = value end
    for key, value in pairs(saved) do
      if key ~= "params" then new[key] = copy_value(value) end
    end
    self:_check_options(new, fname, where)
    groups[gi] = new
  end

  local params = self:_indexed_params()
  local indices = {}
  for key in pairs(sd.state) do
    local index = math.tointeger(tonumber(key))
    if index == nil or params[index] == nil then
      fail(fname, "state key %s is not a parameter index (1..%d)", describe(key), #params)
    end
    indices[#indices + 1] = {index, key}
  end
  table.sort(indices, function(a, b) return a[1] < b[1] end)
  local state = {}
  for _, e in ipairs(indices) do
    local index, key = e[1], e[2]
    state[params[index]] = self:_load_param_state(fname, index, params[index], sd.state[key])
  end
  self.param_groups = groups
  self.state = state
end

function Optimizer:__tostring()
  local lines = {class.name_of(self) .. " ("}
  for gi, group in ipairs(self.param_groups) do
    lines[#lines + 1] = ("Parameter Group %d"):format(gi)
    for _, key in ipairs(check.sorted_keys(group)) do
      if key ~= "params" then
        local v = group[key]
        if type(v) == "table" then v = "{" .. table.concat(v, ", ") .. "}" end
        lines[#lines + 1] = ("    %s: %s"):format(key, tostring(v))
      end
    end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

return Optimizer
