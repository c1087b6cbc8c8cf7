--- The Trainer's options: names, defaults and checks (PyTorch Lightning's names and meanings).
local hooks = require "lightning.trainer.hooks"

local options = {}

local function is_integer(v) return math.type(v) == "integer" end

-- A count of batches (integer >= 0) or a fraction of them (a float in [0, 1]); 1.0 means all.
local function check_limit(name, v)
  if type(v) ~= "number" or (is_integer(v) and v < 0) or (not is_integer(v) and (v < 0 or v > 1)) then
    return ("%s must be a number of batches (an integer >= 0) or a fraction (a float in [0.0, 1.0]), got %s")
      :format(name, tostring(v))
  end
end

local function integer_at_least(min)
  return function(name, v)
    if not is_integer(v) or v < min then
      return ("%s must be an integer >= %d, got %s"):format(name, min, tostring(v))
    end
  end
end

local function optional(check)
  return function(name, v) if v ~= nil then return check(name, v) end end
end

local function kind(expected)
  return function(name, v)
    if type(v) ~= expected then return ("%s must be a %s, got %s"):format(name, expected, type(v)) end
  end
end

local function one_of(...)
  local allowed = {...}
  return function(name, v)
    for _, a in ipairs(allowed) do if v == a then return end end
    local names = {}
    for i, a in ipairs(allowed) do names[i] = ("%q"):format(tostring(a)) end
    return ("%s must be one of %s, got %s"):format(name, table.concat(names, ", "), tostring(v))
  end
end

-- name -> {default, check}
local SPEC = {
  max_epochs = {nil, optional(integer_at_least(-1))},
  min_epochs = {nil, optional(integer_at_least(0))},
  max_steps = {-1, integer_at_least(-1)},
  min_steps = {nil, optional(integer_at_least(0))},
  limit_train_batches = {1.0, check_limit},
  limit_val_batches = {1.0, check_limit},
  limit_test_batches = {1.0, check_limit},
  limit_predict_batches = {1.0, check_limit},
  check_val_every_n_epoch = {1, integer_at_least(1)},
  num_sanity_val_steps = {2, integer_at_least(-1)},
  log_every_n_steps = {50, integer_at_least(1)},
  gradient_clip_val = {nil, optional(function(name, v)
    if type(v) ~= "number" or v < 0 then return ("%s must be a number >= 0, got %s"):format(name, tostring(v)) end
  end)},
  gradient_clip_algorithm = {nil, optional(one_of("norm", "value"))},
  accumulate_grad_batches = {1, integer_at_least(1)},
  deterministic = {nil, optional(function(name, v)
    if type(v) ~= "boolean" and v ~= "warn" then return ("%s must be true, false or \"warn\", got %s"):format(name, tostring(v)) end
  end)},
  default_root_dir = {".", kind("string")},
  fast_dev_run = {false, function(name, v)
    if type(v) ~= "boolean" and not (is_integer(v) and v >= 0) then
      return ("%s must be a boolean or an integer >= 0, got %s"):format(name, tostring(v))
    end
  end},
  enable_progress_bar = {true, kind("boolean")},
  enable_checkpointing = {true, kind("boolean")},
  enable_model_summary = {true, kind("boolean")},
  callbacks = {nil, optional(kind("table"))},
  logger = {nil, optional(function(name, v)
    if type(v) ~= "boolean" and type(v) ~= "table" then
      return ("%s must be a logger, a list of loggers, true or false, got %s"):format(name, type(v))
    end
  end)},
  precision = {"32", function(name, v)
    if v == "32" or v == 32 or v == "32-true" then return end
    return ("precision %s is not supported: the library computes in float32, use precision = \"32\""):format(
      type(v) == "string" and ("%q"):format(v) or tostring(v))
  end},
  detect_anomaly = {false, kind("boolean")},
  accelerator = {"auto", one_of("auto", "cpu")},
  devices = {"auto", function(name, v)
    if v ~= "auto" and v ~= 1 then return ("%s: only one device (the CPU) is supported, got %s"):format(name, tostring(v)) end
  end},
  benchmark = {nil, optional(kind("boolean"))},
  -- a fraction of the training epoch (a float in (0, 1]) or a number of training batches (an integer)
  val_check_interval = {nil, optional(function(name, v)
    if type(v) ~= "number" or (is_integer(v) and v < 1) or (not is_integer(v) and not (v > 0 and v <= 1)) then
      return ("%s must be a fraction of the training epoch (a float in (0.0, 1.0]) or a number of training " ..
        "batches (an integer >= 1), got %s"):format(name, tostring(v))
    end
  end)},
}

--- Checks the options and returns them with the defaults filled in. Unknown names are errors.
function options.resolve(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error(("Trainer: expected a table of options, got %s"):format(type(opts)), 0) end
  local known = {}
  for name in pairs(SPEC) do known[name] = true end
  for name in pairs(opts) do
    if type(name) ~= "string" or not SPEC[name] then
      local near = type(name) == "string" and hooks.closest(name, known)
      error(("Trainer: unknown option %s%s"):format(tostring(name), near and (" (did you mean " .. near .. "?)") or ""), 0)
    end
  end
  local out = {}
  for name, spec in pairs(SPEC) do
    local v = opts[name]
    if v == nil then v = spec[1] end
    local problem = spec[2](name, v)
    if problem then error("Trainer: " .. problem, 0) end
    out[name] = v
  end
  if out.max_epochs == nil then out.max_epochs = out.max_steps == -1 and 1000 or -1 end
  if out.fast_dev_run then
    -- Lightning: n batches of each loop, one epoch, no sanity check, no logging or checkpoints
    local n = out.fast_dev_run == true and 1 or out.fast_dev_run
    if n > 0 then
      out.limit_train_batches, out.limit_val_batches, out.limit_test_batches, out.limit_predict_batches = n, n, n, n
      out.max_steps, out.max_epochs, out.num_sanity_val_steps, out.check_val_every_n_epoch = n, 1, 0, 1
    else
      out.fast_dev_run = false
    end
  end
  return out
end

options.check_limit = check_limit

return options
