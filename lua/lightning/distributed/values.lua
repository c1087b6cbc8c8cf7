--- Lua values as bytes for broadcast and all_gather between processes: the library's JSON, with what
-- JSON drops kept: integers stay integers ({"__int__": "42"}: lua-cjson reads every number as a float),
-- NaN and infinities come back ({"__number__": "nan"}), and every float comes back as the same double.
-- Tables are lists or string-keyed maps; functions, userdata and tensors cannot travel.
local json = require "lightning.util.json"

local values = {}

local NONFINITE = {nan = 0 / 0, inf = math.huge, ["-inf"] = -math.huge}

local function tag(v, where)
  local kind = type(v)
  if kind == "number" then
    if math.type(v) == "integer" then return {__int__ = ("%d"):format(v)} end
    if v ~= v then return {__number__ = "nan"} end
    if v == math.huge then return {__number__ = "inf"} end
    if v == -math.huge then return {__number__ = "-inf"} end
    return v
  elseif kind == "string" or kind == "boolean" or kind == "nil" then
    return v
  elseif kind == "table" then
    local out = {}
    local n = #v
    for k, x in pairs(v) do
      local key_ok = type(k) == "string" or (math.type(k) == "integer" and k >= 1 and k <= n)
      if not key_ok then
        error(("%s: a table with a key %s cannot be sent (lists and string-keyed tables only)")
          :format(where, tostring(k)), 0)
      end
      out[k] = tag(x, where)
    end
    if n > 0 and next(v, nil) ~= nil then
      for k in pairs(v) do
        if type(k) == "string" then error(("%s: a table mixes list and string keys"):format(where), 0) end
      end
    end
    return out
  end
  error(("%s: a %s cannot be sent between processes"):format(where, kind), 0)
end

local function untag(v)
  if type(v) ~= "table" then
    if v == json.null then return nil end
    return v
  end
  if v.__int__ then return math.tointeger(tonumber(v.__int__)) end
  if v.__number__ then return NONFINITE[v.__number__] end
  local out = {}
  for k, x in pairs(v) do out[k] = untag(x) end
  return out
end

--- The bytes for value; `where` names the caller in errors.
function values.encode(value, where)
  return json.encode(tag(value, where or "lightning.distributed"))
end

function values.decode(bytes)
  return untag(json.decode(bytes))
end

return values
