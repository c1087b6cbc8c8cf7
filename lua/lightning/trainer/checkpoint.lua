--- Checkpoints: everything needed to continue a run, as a table (dump) that the strategy's
-- checkpoint_io writes (lightning.io.safetensors_checkpoint_io: the file format), and the Trainer's side
-- of resuming from one (restore_model, restore_training_state, find_last). The file format's constants
-- and functions are here too under their old names (checkpoint.read, write, read_metadata, FORMAT, ...).
local L = require "lightning"
local class = require "lightning.class"
local fs = require "lightning.util.fs"
local SafetensorsCheckpointIO = require "lightning.io.safetensors_checkpoint_io"
local hooks = require "lightning.trainer.hooks"
local position = require "lightning.trainer.loops.position"
local generators = require "lightning.trainer.generators"

local checkpoint = {}

checkpoint.FORMAT = SafetensorsCheckpointIO.FORMAT
checkpoint.VERSION = SafetensorsCheckpointIO.VERSION
checkpoint.EXTENSION = SafetensorsCheckpointIO.EXTENSION
checkpoint.write = SafetensorsCheckpointIO.write
checkpoint.read_metadata = SafetensorsCheckpointIO.read_metadata
checkpoint.why = SafetensorsCheckpointIO.why

local function fail(path, fmt, ...)
  error(("checkpoint %s: " .. fmt):format(path, ...), 0)
end

local function shown(v)
  return type(v) == "string" and ("%q"):format(v) or tostring(v)
end

--- Checks a checkpoint table's loops section (read from path) and fills in its epoch when an older
-- file left it out; fields of the wrong type are errors naming the file and the field.
function checkpoint.check_loops(ckpt, path)
  if ckpt.loops.epoch == nil then ckpt.loops.epoch = ckpt.epoch end
  position.of(ckpt.loops, path)
  return ckpt
end

--- Reads a checkpoint file (the file format's read, then the loops section checked).
function checkpoint.read(path)
  return checkpoint.check_loops(SafetensorsCheckpointIO.read(path), path)
end

--- The checkpoint as a Lua table (what on_save_checkpoint hooks see and may extend); its loops
-- section is trainer.fit_loop:state_dict(after_fault). Inside an epoch (and after_fault, the
-- checkpoint of a failure or interruption) it is the epoch loop's last good state
-- (lightning.trainer.loops.good_state): the module's buffers as they were then, the global step and
-- the position of that state.
function checkpoint.dump(trainer, after_fault)
  local module = trainer.lightning_module
  local loops = trainer.fit_loop:state_dict(after_fault)
  local good = trainer.fit_loop:saved_good_state(after_fault)
  local global_step = good and good.record.global_step or trainer.global_step
  local state_dict = module:state_dict()
  for name, copy in pairs(good and good:buffers() or {}) do state_dict[name] = copy end
  local ckpt = {
    format = checkpoint.FORMAT,
    format_version = checkpoint.VERSION,
    epoch = trainer.current_epoch,
    global_step = global_step,
    state_dict = state_dict,
    hparams = module.hparams or {},
    optimizer_states = {},
    lr_schedulers = {},
    callbacks = {},
    loops = loops,
    rng_state = L.get_rng_state(),
    cuda_rng_state = generators.device_state(trainer),
    saved_at = os.time(),
  }
  for i, opt in ipairs(trainer.optimizers or {}) do
    if type(opt.state_dict) == "function" then ckpt.optimizer_states[i] = opt:state_dict() end
  end
  for i, config in ipairs(trainer.lr_scheduler_configs or {}) do
    if type(config.scheduler.state_dict) == "function" then ckpt.lr_schedulers[i] = config.scheduler:state_dict() end
  end
  for i, cb in ipairs(trainer.callbacks) do
    if type(cb.state_dict) == "function" then
      local key = checkpoint.state_key(cb, i)
      ckpt.callbacks[key] = cb:state_dict()
    end
  end
  -- the precision plugin's (16-mixed's loss scaler), under its class's name as Lightning saves it
  local plugin = trainer.precision_plugin
  local plugin_state = plugin and plugin:state_dict()
  if plugin_state and next(plugin_state) ~= nil then ckpt[class.name_of(plugin)] = plugin_state end
  return ckpt
end

function checkpoint.state_key(cb, index)
  if type(cb.state_key) == "function" then return cb:state_key() end
  return ("%s[%d]"):format(class.name_of(cb), index)
end

--- Copies the weights into the module and the states into the callbacks (ckpt: what the strategy's
-- load_checkpoint read; path: the file, for errors).
function checkpoint.restore_model(trainer, ckpt, path)
  checkpoint.check_loops(ckpt, path)   -- (first: a malformed loops section is refused before anything is restored)
  local module = trainer.lightning_module
  hooks.call_module(trainer, "on_load_checkpoint", ckpt)
  local ok, err = pcall(module.load_state_dict, module, ckpt.state_dict)
  if not ok then fail(path, "its weights do not fit this model: %s", (tostring(err):gsub("^[^:\n]+:%d+: ", ""))) end
  for i, cb in ipairs(trainer.callbacks) do
    if cb.on_load_checkpoint then hooks.call_callback(trainer, cb, i, "on_load_checkpoint", trainer, module, ckpt) end
    if type(cb.load_state_dict) == "function" then
      local key = checkpoint.state_key(cb, i)
      local state = ckpt.callbacks[key]
      if state ~= nil and type(state) ~= "table" then fail(path, "field callbacks[%q] must be a table, got %s", key, shown(state)) end
      if state then hooks.call_callback(trainer, cb, i, "load_state_dict", state) end
    end
  end
end

-- Each optimizer (scheduler) with load_state_dict takes its state from the list, which must hold
-- one per optimizer (scheduler): a checkpoint without them would resume with fresh ones.
local function restore_states(path, field, states, objects, what)
  local count = 0
  for i, obj in ipairs(objects) do
    if type(obj.load_state_dict) == "function" then
      count = count + 1
      local state = states[i]
      if state == nil then
        fail(path, "field %s has no state for %s %d (it holds %d; this run has %d)", field, what, i, #states, #objects)
      end
      local ok, err = pcall(obj.load_state_dict, obj, state)
      if not ok then fail(path, "field %s[%d] does not fit the %s: %s", field, i, what, tostring(err)) end
    end
  end
  if #states > #objects then fail(path, "field %s holds %d states; this run has %d %ss", field, #states, #objects, what) end
  return count
end

-- A schedule with an end (OneCycleLR's total_steps) that the checkpoint restored shorter than this run
-- would fail at its last step, deep in the run: say so now, and why (the run was made longer since).
local function check_schedule_lengths(trainer, path)
  local steps = trainer.estimated_stepping_batches
  if not steps or steps == math.huge then return end
  for _, config in ipairs(trainer.lr_scheduler_configs) do
    local s = config.scheduler
    local total = type(s) == "table" and rawget(s, "total_steps")
    if config.interval == "step" and math.type(total) == "integer" and total < steps then
      fail(path, "its %s schedule ends after %d steps, but this run goes on to step %d (max_epochs or max_steps " ..
        "grew since it was saved); a schedule with an end cannot be stretched once begun: resume with the length " ..
        "it was made for, or start a new run", class.name_of(s), total, math.tointeger(steps) or steps)
    end
  end
end

--- The optimizers', schedulers' and loops' states, the global step and the generator; returns where the
-- fit loop resumes (lightning.trainer.loops.position).
function checkpoint.restore_training_state(trainer, ckpt, path)
  restore_states(path, "optimizer_states", ckpt.optimizer_states, trainer.optimizers, "optimizer")
  local schedulers = {}
  for i, config in ipairs(trainer.lr_scheduler_configs) do schedulers[i] = config.scheduler end
  restore_states(path, "lr_schedulers", ckpt.lr_schedulers, schedulers, "scheduler")
  check_schedule_lengths(trainer, path)
  trainer.global_step = ckpt.global_step
  local where = trainer.fit_loop:load_state_dict(ckpt.loops, path)
  if ckpt.rng_state ~= nil then
    local ok, err = pcall(L.set_rng_state, ckpt.rng_state)
    if not ok then fail(path, "field rng_state is not a generator state: %s", tostring(err)) end
  end
  if ckpt.cuda_rng_state ~= nil then
    local ok, err = pcall(generators.restore_device, trainer, ckpt.cuda_rng_state)
    if not ok then fail(path, "field cuda_rng_state is not a GPU generator state: %s", tostring(err)) end
  end
  local plugin = trainer.precision_plugin
  local key = plugin and class.name_of(plugin)
  if key and ckpt[key] ~= nil then
    local ok, err = pcall(plugin.load_state_dict, plugin, ckpt[key])
    if not ok then fail(path, "field %s does not fit the precision plugin: %s", key, (tostring(err):gsub("^[^:\n]+:%d+: ", ""))) end
  end
  return where
end

--- The newest of the "last" checkpoints in the given folders: last*.safetensors and the one saved
-- after an exception, ordered by global step, then by the file's own order of writing. A candidate that
-- is there but cannot be read (empty, cut short, a garbage header, a folder, a FIFO, not a lightning
-- checkpoint) is an error naming it, never skipped: resuming must not silently start from scratch or
-- from an older state (as Lightning refuses a corrupt last.ckpt).
function checkpoint.find_last(dirs)
  local best, best_key
  for _, dir in ipairs(dirs) do
    -- on a tie (the same step and second) the one saved after a failure or Ctrl-C, which came later
    local candidates = {"on_exception" .. checkpoint.EXTENSION, "last" .. checkpoint.EXTENSION}
    for v = 1, 9 do candidates[#candidates + 1] = ("last-v%d%s"):format(v, checkpoint.EXTENSION) end
    for _, name in ipairs(candidates) do
      local path = fs.join(dir, name)
      if fs.exists(path) then
        local meta, err = checkpoint.read_metadata(path)
        if meta and meta.format ~= checkpoint.FORMAT then
          meta, err = nil, ("it is not a lightning checkpoint (its metadata has no format = %q)"):format(checkpoint.FORMAT)
        end
        if not meta then
          error(("the last checkpoint %s cannot be read: %s; move it away to resume from an older checkpoint, "
            .. "or give the path of another one"):format(path, err), 0)
        end
        local key = {tonumber(meta.global_step) or -1, tonumber(meta.saved_at) or 0}
        if not best or key[1] > best_key[1] or (key[1] == best_key[1] and key[2] > best_key[2]) then
          best, best_key = path, key
        end
      end
    end
  end
  return best
end

return checkpoint
