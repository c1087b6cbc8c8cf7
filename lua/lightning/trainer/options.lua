--- The Trainer's options: names, defaults and checks (PyTorch Lightning's names and meanings).
local options = require "lightning.util.options"
local precision = require "lightning.precision"
local strategies = require "lightning.strategies"
local accelerators = require "lightning.accelerators"

local trainer_options = {}

-- A count of batches (integer >= 0) or a fraction of them (a float in [0, 1]); 1.0 means all.
local function is_limit(v)
  if type(v) ~= "number" then return false end
  if math.type(v) == "integer" then return v >= 0 end
  return v >= 0 and v <= 1
end
local function limit(default)
  return {test = is_limit, expected = "a number of batches (an integer >= 0) or a fraction (a float in [0.0, 1.0])",
    default = default}
end

-- name -> spec (lightning.util.options)
local SPEC = {
  max_epochs = {kind = "integer", min = -1},
  min_epochs = {kind = "integer", min = 0},
  max_steps = {kind = "integer", min = -1, default = -1},
  min_steps = {kind = "integer", min = 0},
  limit_train_batches = limit(1.0),
  limit_val_batches = limit(1.0),
  limit_test_batches = limit(1.0),
  limit_predict_batches = limit(1.0),
  check_val_every_n_epoch = {kind = "integer", min = 1, default = 1},
  num_sanity_val_steps = {kind = "integer", min = -1, default = 2},
  log_every_n_steps = {kind = "integer", min = 1, default = 50},
  gradient_clip_val = {kind = "number", min = 0},
  gradient_clip_algorithm = {kind = "string", one_of = {"norm", "value"}},
  accumulate_grad_batches = {kind = "integer", min = 1, default = 1},
  deterministic = {test = function(v) return type(v) == "boolean" or v == "warn" end,
    expected = 'true, false or "warn"'},
  default_root_dir = {kind = "string", default = "."},
  fast_dev_run = {test = function(v) return type(v) == "boolean" or (math.type(v) == "integer" and v >= 0) end,
    expected = "a boolean or an integer >= 0", default = false},
  enable_progress_bar = {kind = "boolean", default = true},
  enable_checkpointing = {kind = "boolean", default = true},
  enable_model_summary = {kind = "boolean", default = true},
  callbacks = {kind = "table"},
  logger = {kind = {"boolean", "table"}, expected = "a logger, a list of loggers, true or false"},
  precision = {check = precision.problem, default = "32"},   -- lightning.precision knows the plugins
  strategy = {check = strategies.problem, default = "auto"},  -- lightning.strategies knows the strategies
  sync_batchnorm = {kind = "boolean", default = false},        -- (data-parallel: nn.SyncBatchNorm)
  detect_anomaly = {kind = "boolean", default = false},
  -- lightning.accelerators knows the hardware ("auto": the GPU when there is one)
  accelerator = {kind = "string", one_of = accelerators.NAMES, default = "auto"},
  devices = {check = accelerators.devices_problem, default = "auto"},
  benchmark = {kind = "boolean"},
  -- the training step in a CUDA graph (lightning/trainer/graphed_step.lua)
  cuda_graph = {test = function(v) return type(v) == "boolean" or v == "auto" end, expected = 'true, false or "auto"',
    default = "auto"},
  -- a fraction of the training epoch (a float in (0, 1]) or a number of training batches (an integer)
  val_check_interval = {test = function(v)
    if type(v) ~= "number" then return false end
    if math.type(v) == "integer" then return v >= 1 end
    return v > 0 and v <= 1
  end, expected = "a fraction of the training epoch (a float in (0.0, 1.0]) or a number of training batches " ..
    "(an integer >= 1)"},
}

--- Checks the options and returns them with the defaults filled in. Unknown names are errors.
function trainer_options.resolve(opts)
  local out = options.check("Trainer", opts, SPEC)
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

return trainer_options
