--- JSON for checkpoint metadata. Decoding is lua-cjson's; encoding is here because Debian's
-- lua-cjson writes at most 14 significant digits, and a resumed run must get back exactly the
-- doubles it saved (learning rates, scheduler state): numbers are written with the fewest digits
-- that read back as the same double, as Python's repr does. Object keys are sorted.
local cjson = require("cjson").new()

local json = {}

json.null = cjson.null

local ESCAPES = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t"}

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

function json.number(x)
  if math.type(x) == "integer" then return ("%d"):format(x) end
  if x ~= x or x == math.huge or x == -math.huge then
    error("json: cannot encode " .. tostring(x) .. " (JSON has no NaN or infinity)", 0)
  end
  for digits = 1, 17 do
    local text = ("%." .. digits .. "g"):format(x)
    if tonumber(text) == x then return text end
  end
  return ("%.17g"):format(x)
end

local function is_array(t)
  local n = #t
  if n == 0 then return next(t) == nil and false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function encode(v, out)
  local kind = type(v)
  if v == nil or v == cjson.null then
    out[#out + 1] = "null"
  elseif kind == "boolean" then
    out[#out + 1] = tostring(v)
  elseif kind == "number" then
    out[#out + 1] = json.number(v)
  elseif kind == "string" then
    out[#out + 1] = encode_string(v)
  elseif kind == "table" then
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("json: object keys must be strings, got " .. type(k), 0) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ":"
        encode(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    error("json: cannot encode a " .. kind, 0)
  end
end

function json.encode(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

json.decode = cjson.decode

return json
