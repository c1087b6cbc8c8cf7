--- The base of the loggers, with Lightning's Logger API:
--   logger:log_metrics(metrics, step)       metrics: {name = number or 1-element tensor}
--   logger:log_hyperparams(params[, metrics])
--   logger:log_graph(model[, input])        (nothing to do here)
--   logger:save(), logger:flush(), logger:finalize(status), logger:after_save_checkpoint(callback)
--   fields: name, version, save_dir, root_dir (save_dir/name), log_dir (root_dir/version_N)
-- and the helpers the loggers share: their common options, versions, metric and hyperparameter
-- cleaning, and YAML for hparams.yaml.
local L = require "lightning"
local class = require "lightning.class"
local fsio = L.core.io

local Logger = class("Logger")

function Logger:log_metrics(metrics, step)
  error(class.name_of(self) .. ":log_metrics is not implemented", 2)
end
function Logger:log_hyperparams(params, metrics) end
function Logger:log_graph(model, input) end
function Logger:save() end
function Logger:flush() end
function Logger:finalize(status) self:save() end
function Logger:after_save_checkpoint(checkpoint_callback) end

-- ---- construction ----

--- The options every logger has: where it writes (save_dir/name/version_N) and a prefix of metric names.
function Logger.common_options(defaults)
  return {
    save_dir = {kind = "string", default = "outputs/logs"},
    name = {kind = "string", default = defaults.name},
    version = {kind = {"integer", "string"}, min = 0},  -- nil: the next free version_N
    prefix = {kind = "string", default = ""},
  }
end

function Logger.join(a, b)
  if a == "" then return b end
  return (a:gsub("/+$", "")) .. "/" .. b
end

--- The next free version under root_dir: one more than the largest version_N folder, or 0.
function Logger.next_version(root_dir)
  if fsio.file_type(root_dir) ~= "directory" then return 0 end
  local largest = -1
  for _, name in ipairs(fsio.listdir(root_dir)) do
    local n = name:match("^version_(%d+)$")
    if n and fsio.file_type(Logger.join(root_dir, name)) == "directory" then largest = math.max(largest, tonumber(n)) end
  end
  return largest + 1
end

--- Fills self.save_dir, name, root_dir, version and log_dir the way Lightning does: root_dir is
-- save_dir/name (save_dir when name is empty), version an integer (version_N) or a string (used as is).
function Logger:_init_dirs(save_dir, name, version)
  self.save_dir = save_dir
  self.name = name or ""
  self.root_dir = self.name == "" and save_dir or Logger.join(save_dir, self.name)
  if version == nil then version = Logger.next_version(self.root_dir) end
  if math.type(version) == "float" then version = math.tointeger(version) end
  self.version = version
  self.log_dir = Logger.join(self.root_dir, type(version) == "string" and version or ("version_" .. version))
end

-- ---- metrics ----

--- The metric's value as a number: numbers, and tensors of one element.
function Logger.metric_value(fname, key, value)
  if type(value) == "number" then return value end
  if L.is_tensor(value) and value:numel() == 1 then return value:contiguous():view(1)[1] end
  local what = L.is_tensor(value) and ("a tensor of %d elements"):format(value:numel()) or type(value)
  error(("%s: metric '%s' must be a number or a one-element tensor, got %s"):format(fname, tostring(key), what), 3)
end

--- The metrics as {name = number} (names with the prefix), sorted names in a list.
function Logger.clean_metrics(fname, metrics, prefix, separator)
  if type(metrics) ~= "table" or L.is_tensor(metrics) then
    error(("%s: metrics must be a table {name = value}, got %s"):format(fname, L.is_tensor(metrics) and "tensor" or type(metrics)), 3)
  end
  local out, names = {}, {}
  for key, value in pairs(metrics) do
    if type(key) ~= "string" then
      error(("%s: metric names must be strings, got %s %s"):format(fname, type(key), tostring(key)), 3)
    end
    local name = (prefix and prefix ~= "") and (prefix .. (separator or "-") .. key) or key
    out[name] = Logger.metric_value(fname, key, value)
    names[#names + 1] = name
  end
  table.sort(names)
  return out, names
end

--- A step as an integer (nil allowed: `default`).
function Logger.check_step(fname, step, default)
  if step == nil then return default end
  local s = math.tointeger(step)
  if not s then error(("%s: step must be an integer, got %s"):format(fname, tostring(step)), 3) end
  return s
end

-- ---- hyperparameters ----

local function is_list(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function list_string(t)
  local parts = {}
  for i, v in ipairs(t) do parts[i] = type(v) == "string" and ("'%s'"):format(v) or tostring(v) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

--- Hyperparameters as they are stored and written to hparams.yaml: numbers, strings, booleans and
-- nested tables kept; one-element tensors become numbers, other tensors lists; other values their
-- tostring (as Lightning's _sanitize_params does with str()).
function Logger.sanitize_params(params)
  local out = {}
  for k, v in pairs(params) do
    if L.is_tensor(v) then
      out[k] = v:numel() == 1 and v:contiguous():view(1)[1] or v:totable()
    elseif type(v) == "table" and getmetatable(v) == nil then
      out[k] = Logger.sanitize_params(v)
    elseif type(v) == "number" or type(v) == "string" or type(v) == "boolean" then
      out[k] = v
    else
      out[k] = tostring(v)
    end
  end
  return out
end

--- Nested tables flattened into "a/b" keys, lists written as strings, as Lightning's _flatten_dict
-- and TensorBoardLogger do before writing the HPARAMS summaries. Returns a sorted list of {name, value}.
function Logger.flatten_params(params, separator)
  separator = separator or "/"
  local list = {}
  local function walk(t, prefix)
    for k, v in pairs(t) do
      local name = prefix .. tostring(k)
      if type(v) == "table" and is_list(v) then list[#list + 1] = {name, list_string(v)}
      elseif type(v) == "table" and next(v) ~= nil then walk(v, name .. separator)
      elseif type(v) == "table" then list[#list + 1] = {name, "{}"}
      else list[#list + 1] = {name, v} end
    end
  end
  walk(params, "")
  table.sort(list, function(a, b) return a[1] < b[1] end)
  return list
end

function Logger.merge(into, from)
  for k, v in pairs(from) do into[k] = v end
  return into
end

-- ---- YAML (hparams.yaml) ----

local reserved = {["true"] = true, ["false"] = true, yes = true, no = true, on = true, off = true, null = true,
  ["~"] = true, y = true, n = true}

local function yaml_string(s)
  local plain = s:match("^[%a_][%w_%-%./]*$") and not reserved[s:lower()]
  if plain then return s end
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = {['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r"}
    return named[c] or ("\\x%02x"):format(c:byte())
  end) .. '"'
end

--- A number as Python prints it: integers plainly, floats with a decimal point or exponent.
function Logger.format_number(v)
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" end
  if v == -math.huge then return "-inf" end
  if v == math.floor(v) and math.abs(v) < 1e16 then return ("%.1f"):format(v) end
  for digits = 15, 17 do
    local s = ("%." .. digits .. "g"):format(v)
    if tonumber(s) == v then return s end
  end
end

local function yaml_scalar(v)
  if type(v) == "string" then return yaml_string(v) end
  if type(v) == "boolean" then return tostring(v) end
  if v ~= v then return ".nan" end
  if v == math.huge then return ".inf" end
  if v == -math.huge then return "-.inf" end
  -- YAML 1.1 (PyYAML) reads an exponent as a float only after a decimal point: 1.0e-08, not 1e-08
  return (Logger.format_number(v):gsub("^(-?%d+)(e)", "%1.0%2"))
end

--- YAML for a table of hyperparameters (keys sorted; nested tables as nested mappings, lists as
-- sequences).
function Logger.to_yaml(t)
  local lines = {}
  local function emit(value, indent)
    if is_list(value) then
      for _, v in ipairs(value) do
        if type(v) == "table" and next(v) ~= nil then
          lines[#lines + 1] = indent .. "-"
          emit(v, indent .. "  ")
        else
          lines[#lines + 1] = indent .. "- " .. (type(v) == "table" and "{}" or yaml_scalar(v))
        end
      end
      return
    end
    local keys = {}
    for k in pairs(value) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      local v, key = value[k], yaml_string(tostring(k))
      if type(v) == "table" and next(v) ~= nil then
        lines[#lines + 1] = indent .. key .. ":"
        emit(v, indent .. "  ")
      else
        lines[#lines + 1] = indent .. key .. ": " .. (type(v) == "table" and "{}" or yaml_scalar(v))
      end
    end
  end
  if next(t) == nil then return "{}\n" end
  emit(t, "")
  return table.concat(lines, "\n") .. "\n"
end

--- Writes hparams.yaml into log_dir (atomically).
function Logger.save_hparams_yaml(log_dir, hparams)
  fsio.mkdir(log_dir)
  fsio.write_file(Logger.join(log_dir, "hparams.yaml"), Logger.to_yaml(hparams))
end

return Logger
