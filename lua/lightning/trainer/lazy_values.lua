--- Values logged on a GPU, read back when they are needed rather than when they are logged: reading a
-- GPU's value makes the host wait for the GPU, and a training step that waits cannot be queued while
-- the previous one computes. On the CPU nothing here applies (reading is free): values are numbers as
-- soon as they are logged.
--   lazy_values.is_lazy(v)        a one-element tensor on a device, kept as logged
--   lazy_values.numbers(list)     the values of such tensors (and numbers), read in one copy
--   lazy_values.number(v)         one of them
--   lazy_values.put(t, k, v)      t[k] = v, where a lazy v is read the first time t[k] (or pairs(t)) asks:
--                                 trainer.callback_metrics and progress_bar_metrics are such tables, so
--                                 a callback reading them gets numbers, and a step that nobody reads
--                                 waits for nothing
local L = require "lightning"

local lazy_values = {}

function lazy_values.is_lazy(v)
  return L.is_tensor(v) and v:device() ~= "cpu"
end

--- The numbers of a list of values (numbers, or one-element tensors): the tensors on a device are
-- joined there and copied to the host once.
function lazy_values.numbers(list)
  local out, tensors, at = {}, {}, {}
  for i, v in ipairs(list) do
    if lazy_values.is_lazy(v) then
      tensors[#tensors + 1], at[#tensors + 1] = v:view(1), i
    elseif L.is_tensor(v) then
      out[i] = v:item()
    else
      out[i] = v
    end
  end
  if #tensors > 0 then
    local host = L.no_grad(function() return L.cat(tensors):cpu():totable() end)
    for j, i in ipairs(at) do out[i] = host[j] end
  end
  return out
end

function lazy_values.number(v)
  if L.is_tensor(v) then return v:item() end
  return v
end

-- table -> {key = lazy value} of those not read yet
local pending_of = setmetatable({}, {__mode = "k"})

local function settle(t)
  local pending = pending_of[t]
  local keys, values = {}, {}
  for k, v in pairs(pending) do keys[#keys + 1], values[#values + 1] = k, v end
  if #keys == 0 then return end
  local numbers = lazy_values.numbers(values)
  for i, k in ipairs(keys) do
    pending[k] = nil
    rawset(t, k, numbers[i])
  end
end

local LAZY_TABLE = {
  __index = function(t, k)
    local v = pending_of[t][k]
    if v == nil then return nil end
    v = lazy_values.number(v)
    pending_of[t][k] = nil
    rawset(t, k, v)
    return v
  end,
  __newindex = function(t, k, v)
    pending_of[t][k] = nil
    rawset(t, k, v)
  end,
  __pairs = function(t)
    settle(t)
    return next, t, nil
  end,
}

function lazy_values.put(t, k, v)
  if lazy_values.is_lazy(v) then
    if not pending_of[t] then
      pending_of[t] = {}
      setmetatable(t, LAZY_TABLE)
    end
    rawset(t, k, nil)
    pending_of[t][k] = v
    return
  end
  if pending_of[t] then pending_of[t][k] = nil end
  rawset(t, k, v)
end

return lazy_values
