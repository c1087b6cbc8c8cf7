--- The flat form of an optimizer's state dict, for checkpoints that hold named tensors plus JSON
-- metadata (safetensors):
--   local tensors, meta = L.optim.flatten_state_dict(opt:state_dict(), "optimizer.")
--     tensors["optimizer.state.3.exp_avg"] = tensor        -- one entry per state tensor
--     meta = {param_groups = {...}, state = {["3"] = {step = 5}}}   -- numbers, strings and booleans only
--   opt:load_state_dict(L.optim.unflatten_state_dict(tensors, meta, "optimizer."))
-- meta's state is keyed by strings so that a JSON encoder writes it as an object; tensors may hold other
-- entries (the model's weights): only names that start with prefix .. "state." are read.
local L = require "lightning"
local check = require "lightning.util.options"

local M = {}

local fail = check.fail

function M.flatten(sd, prefix)
  local fname = "lightning.optim.flatten_state_dict"
  prefix = prefix or ""
  if type(sd) ~= "table" or type(sd.state) ~= "table" or type(sd.param_groups) ~= "table" then
    fail(fname, "expected an optimizer state dict (a table with state and param_groups), got %s", check.describe(sd))
  end
  if type(prefix) ~= "string" then fail(fname, "the prefix must be a string, got %s", check.describe(prefix)) end
  local tensors, meta = {}, {param_groups = check.copy(sd.param_groups), state = {}}
  for index, entry in pairs(sd.state) do
    local numbers = {}
    for key, value in pairs(entry) do
      if L.is_tensor(value) then
        tensors[("%sstate.%s.%s"):format(prefix, tostring(index), key)] = value
      else
        numbers[key] = value
      end
    end
    if next(numbers) ~= nil then meta.state[tostring(index)] = numbers end
  end
  return tensors, meta
end

function M.unflatten(tensors, meta, prefix)
  local fname = "lightning.optim.unflatten_state_dict"
  prefix = prefix or ""
  if type(tensors) ~= "table" then fail(fname, "argument 1 (tensors) must be a table, got %s", check.describe(tensors)) end
  if type(meta) ~= "table" or type(meta.param_groups) ~= "table" then
    fail(fname, "argument 2 (meta) must be a table with param_groups, got %s", check.describe(meta))
  end
  local sd = {param_groups = check.copy(meta.param_groups), state = {}}
  local function entry(index)
    local i = math.tointeger(tonumber(index))
    if i == nil then fail(fname, "state key %s is not a parameter index", check.describe(index)) end
    sd.state[i] = sd.state[i] or {}
    return sd.state[i]
  end
  for index, numbers in pairs(meta.state or {}) do
    if type(numbers) ~= "table" then fail(fname, "meta.state[%s] must be a table, got %s", tostring(index), check.describe(numbers)) end
    local e = entry(index)
    for key, value in pairs(numbers) do e[key] = value end
  end
  local head = prefix .. "state."
  for name, t in pairs(tensors) do
    if type(name) == "string" and name:sub(1, #head) == head then
      local index, key = name:sub(#head + 1):match("^(%d+)%.(.+)$")
      if not index then fail(fname, "tensor name %q is not of the form %s<index>.<name>", name, head) end
      entry(index)[key] = t
    end
  end
  return sd
end

return M
