--- An optimizer's step over flat parameters (Module:flatten_parameters) as one update: when a parameter
-- group holds exactly the parameters of one flattening, the optimizer's _update runs once, on the flat
-- parameters and gradients, with its state in flat buffers of which every parameter's state tensor is a
-- view. On a GPU that is one kernel for the group instead of one per parameter (PyTorch's foreach and
-- fused optimizers' reason). The updates are elementwise, so the values are the bits of the step
-- parameter by parameter; state_dict() and load_state_dict() still see a tensor per parameter.
-- A group falls back to the step parameter by parameter whenever its state is not uniform (parameters
-- with different step counts, some with a tensor of state and some without) or a parameter is frozen or
-- empty.
local flat_record = require "lightning.util.flat_record"
local graph_step = require "lightning.optim.graph_step"

local flat_step = {}

-- rec (a flattening) -> {state = the flat record, views = {key = {[i] = view}}}: one per optimizer
local function records(opt)
  local r = rawget(opt, "_flat_records")
  if not r then
    r = setmetatable({}, {__mode = "k"})
    rawset(opt, "_flat_records", r)
  end
  return r
end

-- Whether every parameter's state still is what the flat record holds: the same step, and views of the
-- flat buffers (load_state_dict, or a step outside the flat path, replaces them).
local function intact(opt, rec, fr)
  for i, p in ipairs(rec.params) do
    local s = opt.state[p]
    if s == nil then return false end
    for key, kind in pairs(opt.state_keys) do
      if kind == "tensor" then
        if s[key] ~= (fr.views[key] and fr.views[key][i]) then return false end
      elseif s[key] ~= fr.state[key] then
        return false
      end
    end
  end
  return true
end

-- A tensor key's views: each parameter's part of the flat buffer, in its shape.
local function make_views(rec, buffer)
  local views, offset = {}, 0
  for i, p in ipairs(rec.params) do
    local n = p:numel()
    views[i] = buffer:narrow(1, offset + 1, n):view(p:size())
    offset = offset + n
  end
  return views
end

-- Gathers the parameters' state into a flat record (their tensors copied into flat buffers, and each
-- parameter's state tensor made a view of its part), or nil (nothing changed) when it is not uniform.
local function gather(opt, rec)
  local first = opt.state[rec.params[1]] or {}
  for _, p in ipairs(rec.params) do
    local s = opt.state[p] or {}
    for key, kind in pairs(opt.state_keys) do
      if kind == "tensor" then
        if (s[key] == nil) ~= (first[key] == nil) then return nil end
      elseif s[key] ~= first[key] then
        return nil
      end
    end
  end
  local fr = {state = {}, views = {}}
  for key, kind in pairs(opt.state_keys) do
    if kind == "tensor" and first[key] ~= nil then
      local buffer = rec.flat_grads:clone()   -- the flat size, on the parameters' device
      local views = make_views(rec, buffer)
      for i, p in ipairs(rec.params) do
        local t = opt.state[p][key]
        views[i]:copy(t)
        t:set_(views[i])   -- the same tensor, now a view of the buffer (as flatten_parameters does)
        views[i] = t
      end
      fr.state[key], fr.views[key] = buffer, views
    elseif kind ~= "tensor" then
      fr.state[key] = first[key]
    end
  end
  return fr
end

-- After the update: state tensors the update made (a first step) get their views, and every parameter
-- the record's step.
local function scatter(opt, rec, fr)
  for key, kind in pairs(opt.state_keys) do
    local v = fr.state[key]
    if kind == "tensor" then
      if v ~= nil and not fr.views[key] then fr.views[key] = make_views(rec, v) end
    end
    for i, p in ipairs(rec.params) do
      local s = opt.state[p]
      if s == nil then
        s = {}
        opt.state[p] = s
      end
      if kind == "tensor" then s[key] = fr.views[key] and fr.views[key][i] or nil else s[key] = v end
    end
  end
end

-- Whether the group can take the flat step: its parameters are one flattening's, none frozen or empty.
local function flattening_of(group)
  local rec = flat_record.of(group.params)
  if not rec then return nil end
  for _, p in ipairs(rec.params) do
    if p.requires_grad == false or p:numel() == 0 then return nil end
  end
  return rec
end

--- Steps a group in one update when it can (returns true), else returns false and leaves everything as
-- it was. index: the 1-based index of the group's first parameter (for messages).
function flat_step.step(opt, group, index)
  local rec = flattening_of(group)
  if not rec then return false end
  local all = records(opt)
  local fr = all[rec]
  if not (fr and intact(opt, rec, fr)) then
    fr = gather(opt, rec)
    if not fr then return false end
    all[rec] = fr
  end
  opt:_update(rec.flat_params, rec.flat_grads, group, fr.state, index)
  scatter(opt, rec, fr)
  -- in a CUDA graph the update's state advances before each replay: the parameters' with it
  if graph_step.capturing(rec.flat_params) then
    graph_step.after(opt, rec.flat_params, function() scatter(opt, rec, fr) end)
  end
  return true
end

--- Zeroes a group's gradients in one fill when they are one flattening's; returns whether it did.
function flat_step.zero_grad(group)
  local rec = flat_record.of(group.params)
  if not rec then return false end
  rec.flat_grads:zero()
  return true
end

return flat_step
