--- The Trainer's training step in a CUDA graph (Trainer{cuda_graph = "auto" | true | false}): on a GPU a
-- small model's step is mostly kernel launches, so the whole step (training_step, zero_grad, the
-- backward pass, the optimizer's update) is captured once per batch shape (L.cuda.CUDAGraph) and each
-- later batch of that shape is copied into the graph's inputs and replayed: one launch a step.
--   - The first batch of a shape runs eagerly (the layers make their buffers, the optimizer its state,
--     cuDNN picks its algorithms); the second is captured, then replayed; up to MOST_SHAPES shapes get
--     a graph (the last short batch of an epoch is one more), others run eagerly.
--   - A replay runs no Lua: what training_step logged at the capture is logged again after each replay
--     with that step's values (tensors and metric objects; a number logged there stays the capture's),
--     EpochMetrics adds each replay's loss (lightning.metrics), and the optimizer writes the step's
--     learning rate and count before each replay (lightning/optim/graph_step.lua).
--   - The hooks between training_step and the optimizer step run once, at the capture; so a step is
--     captured only when none of them is the user's (see obstacle()). "auto" captures where that holds,
--     on a GPU, for a module that says its training_step does only device work and logging
--     (module.capturable_training_step = true, or a method (batch, batch_idx) saying so batch by batch:
--     ImageClassifier's is false for the batch its debugging report reads); true captures any module whose
--     step has no obstacle (the user vouches for training_step) and fails naming the obstacle. A batch
--     the method refuses runs eagerly; a capture that fails stops the fit with true, and with "auto" is
--     said once, and the steps go on eagerly.
local L = require "lightning"
local cuda = require "lightning.cuda"
local class = require "lightning.class"
local grad_mode = require "lightning.autograd.mode"
local hooks = require "lightning.trainer.hooks"
local LightningModule = require "lightning.lightning_module"
local Strategy = require "lightning.strategies.strategy"
local Precision = require "lightning.precision.precision"

local graphed_step = {}

local MOST_SHAPES = 4

-- What runs between training_step and the optimizer step (strategies/strategy.lua, precision.lua): each
-- must be the library's own for the capture to stand for every step.
local MODULE_HOOKS = {"on_before_zero_grad", "optimizer_zero_grad", "on_before_backward", "backward_step",
  "on_after_backward", "on_before_optimizer_step", "configure_gradient_clipping", "optimizer_step"}
local CALLBACK_HOOKS = {"on_before_zero_grad", "on_before_backward", "on_after_backward", "on_before_optimizer_step"}
local STRATEGY_METHODS = {"optimizer_zero_grad", "pre_backward", "backward", "finish_backward", "post_backward",
  "optimizer_step", "scale_gradients"}
local PRECISION_METHODS = {"pre_backward", "backward", "post_backward", "optimizer_step"}

--- Why the trainer's training step cannot be captured, or nil.
function graphed_step.obstacle(trainer)
  local module = trainer.lightning_module
  if trainer.strategy:root_device() == "cpu" then return "it trains on the CPU" end
  if module.automatic_optimization == false then return "the module optimizes manually" end
  if trainer.accumulate_grad_batches ~= 1 then return "accumulate_grad_batches is not 1" end
  if trainer.detect_anomaly then return "detect_anomaly reads every loss and gradient" end
  for _, name in ipairs(MODULE_HOOKS) do
    if module[name] ~= LightningModule[name] then return ("%s defines %s"):format(class.name_of(module), name) end
  end
  for i, cb in ipairs(trainer.callbacks) do
    for _, name in ipairs(CALLBACK_HOOKS) do
      if cb[name] then return ("%s has the hook %s"):format(hooks.callback_name(cb, i), name) end
    end
  end
  for _, name in ipairs(STRATEGY_METHODS) do
    if trainer.strategy[name] ~= Strategy[name] then
      return ("the strategy %s has its own %s"):format(class.name_of(trainer.strategy), name)
    end
  end
  for _, name in ipairs(PRECISION_METHODS) do
    if trainer.strategy.precision_plugin[name] ~= Precision[name] then
      return ("the precision plugin %s has its own %s"):format(class.name_of(trainer.strategy.precision_plugin), name)
    end
  end
end

local GraphedStep = {}
GraphedStep.__index = GraphedStep

--- The runner of a fit (nil: every step runs eagerly), from trainer.cuda_graph; fails for true when the
-- step cannot be captured.
function graphed_step.for_fit(trainer)
  local mode = trainer.cuda_graph
  if mode == false then return nil end
  local why = graphed_step.obstacle(trainer)
  if mode == true and why then error(("Trainer: cuda_graph = true, but the training step cannot be captured: %s")
    :format(why), 0) end
  local capturable = trainer.lightning_module.capturable_training_step
  if why or (mode == "auto" and capturable ~= true and type(capturable) ~= "function") then return nil end
  return setmetatable({trainer = trainer, mode = mode, shapes = {}, count = 0, captures = 0, replays = 0},
    GraphedStep)
end

--- Frees the graphs (the end of the fit); trainer.cuda_graph_stats says what they did: {captures,
-- replays} (nil when the fit ran every step eagerly).
function graphed_step.release(trainer)
  local runner = trainer._graphed_step
  trainer._graphed_step = nil
  if not runner then return end
  for _, entry in pairs(runner.shapes) do
    if entry.graph then entry.graph:reset() end
  end
  trainer.cuda_graph_stats = {captures = runner.captures, replays = runner.replays}
end

-- The batch's tensors in a fixed order: {{path, tensor}, ...} (a tensor, or nested tables of them).
local function tensors_of(batch, path, out)
  out = out or {}
  if L.is_tensor(batch) then
    out[#out + 1] = {path or "", batch}
  elseif type(batch) == "table" then
    local keys = {}
    for k in pairs(batch) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do tensors_of(batch[k], (path or "") .. "/" .. tostring(k), out) end
  end
  return out
end

-- The shapes of a batch's tensors, as a key.
local function signature(tensors)
  local parts = {}
  for i, entry in ipairs(tensors) do
    local t = entry[2]
    parts[i] = entry[1] .. ":" .. t:device() .. ":" .. tostring(t:size())
  end
  return table.concat(parts, " ")
end

-- A copy of the batch whose tensors are copies on their device (the graph's inputs).
local function clone_batch(batch)
  if L.is_tensor(batch) then return batch:detach():clone() end
  if type(batch) ~= "table" then return batch end
  local copy = {}
  for k, v in pairs(batch) do copy[k] = clone_batch(v) end
  return copy
end

-- A tensor's copy (on its device, outside autograd), anything else as it is.
local function copy_of(value)
  if L.is_tensor(value) then return value:detach():clone() end
  return value
end

-- The outputs' table (or loss) with each tensor copied.
local function copied_outputs(outputs)
  if type(outputs) ~= "table" or L.is_tensor(outputs) then return copy_of(outputs) end
  local copy = {}
  for k, v in pairs(outputs) do copy[k] = copy_of(v) end
  return copy
end

function GraphedStep:_capture(entry, batch, batch_idx)
  local trainer = self.trainer
  entry.inputs = clone_batch(batch)
  entry.static = tensors_of(entry.inputs)
  local logs = {}
  -- what training_step logs, kept for the replays: a tensor's copy in the graph (the logged tensor may be
  -- another step's by the time it is read)
  rawset(trainer, "record_log", function(_, name, value, opts) logs[#logs + 1] = {name, copy_of(value), opts} end)
  local graph = cuda.CUDAGraph()
  local ok, outputs = pcall(graph.capture, graph, function()
    local out = grad_mode.with_grad_enabled(true, hooks.call_module, trainer, "training_step", entry.inputs, batch_idx)
    if out == nil then error("training_step returned nothing (a step it skips cannot be captured)", 0) end
    local opt, strategy = trainer.optimizers[1], trainer.strategy
    strategy:optimizer_zero_grad(opt, batch_idx)
    strategy:backward(type(out) == "table" and not L.is_tensor(out) and out.loss or out, opt, entry.inputs, out, true)
    strategy:optimizer_step(opt, batch_idx, 1)
    return copied_outputs(out)
  end)
  rawset(trainer, "record_log", nil)
  if not ok then
    -- nothing ran and nothing the step keeps in Lua changed (the logs went to the list above): "auto" goes
    -- on eagerly, after saying why
    local why = ("the training step could not be captured in a CUDA graph: %s"):format(outputs)
    if self.mode == true then error(("Trainer: cuda_graph = true, but %s"):format(why), 0) end
    trainer:print(("cuda_graph: %s; the steps run eagerly"):format(why))
    self.disabled = true
    return false
  end
  entry.graph, entry.outputs, entry.logs = graph, outputs, logs
  self.captures = self.captures + 1
  return true
end

--- Runs the step of this batch in its graph and returns training_step's outputs (copies), or nil when
-- the batch runs eagerly (its shape's first batch, a shape beyond MOST_SHAPES, a batch the module's
-- capturable_training_step refuses).
function GraphedStep:step(batch, batch_idx)
  if self.disabled then return nil end
  local module = self.trainer.lightning_module
  local capturable = module.capturable_training_step
  if type(capturable) == "function" and not capturable(module, batch, batch_idx) then return nil end
  local tensors = tensors_of(batch)
  local key = signature(tensors)
  local entry = self.shapes[key]
  if not entry then
    if self.count >= MOST_SHAPES then return nil end
    self.count = self.count + 1
    entry = {}
    self.shapes[key] = entry
    return nil   -- the warm-up step, eagerly
  end
  if not entry.graph and not self:_capture(entry, batch, batch_idx) then return nil end
  for i, static in ipairs(entry.static) do static[2]:copy(tensors[i][2]) end
  entry.graph:replay()
  self.replays = self.replays + 1
  local trainer = self.trainer
  local previous = trainer._current_fx
  trainer._current_fx = "training_step"
  for _, log in ipairs(entry.logs) do trainer:record_log(log[1], copy_of(log[2]), log[3]) end
  trainer._current_fx = previous
  return copied_outputs(entry.outputs)
end

return graphed_step
