--- An optimizer's step inside a CUDA graph's capture (L.cuda.CUDAGraph). A launch runs the updates the
-- capture recorded, and no Lua; so each update reads its step values (every coefficient it computes
-- with: those of the learning rate, the step count, the betas or momentum, optim_ops.h) from a row of a
-- tensor on the GPU, and before each replay the optimizer advances on the host what a step advances
-- (Adam's step counts), computes those values from its groups as they are then (a scheduler's learning
-- rate and momentum) and copies them there, once for all its updates. So a replay takes the step the optimizer would have taken, and its state (state_dict,
-- checkpoints) counts the steps replayed.
-- The state an update needs must exist before the capture (a first step makes it: Adam's moments, SGD's
-- momentum buffer); a capture cannot make it, as it copies zeros from the host.
local L = require "lightning"
local cuda = require "lightning.cuda"
local options = require "lightning.util.options"

local graph_step = {}

--- Whether an update of p is being captured.
function graph_step.capturing(p)
  return cuda.is_current_stream_capturing() and p:device() ~= "cpu"
end

-- The optimizer's plan for the graph being captured: its step values on the GPU (a row per parameter
-- index), their host copy, and what each replay does first, in the order the step did it.
local function plan_of(opt, like)
  local graph = cuda.current_capture()
  local plan = rawget(opt, "_graph_plan")
  if plan and plan.graph == graph then return plan end
  local rows = #opt:_indexed_params()
  local width = L.core.optim.STEP_VALUES
  plan = {graph = graph, host = L.zeros(rows, width), device = like:new_empty(rows, width), advances = {}}
  rawset(opt, "_graph_plan", plan)
  cuda.before_replay(function()
    for _, advance in ipairs(plan.advances) do advance(plan.host) end
    plan.device:copy(plan.host)
  end)
  return plan
end

--- The step values of the update of parameter `index` (p, or a flat group starting at it) being
-- captured: a row on the GPU for the update's step_values. Before each replay advance(host, index) runs:
-- it writes the row of the step about to be replayed (C.*_step_values{..., into = host, row = index})
-- and advances the state. switches() says which kernel the group's options chose (amsgrad, a weight
-- decay or none, ...): the capture recorded that kernel, so a replay after they changed fails.
function graph_step.values(opt, p, index, switches, advance)
  local plan = plan_of(opt, p)
  local advances, captured = plan.advances, switches()
  advances[#advances + 1] = function(host)
    local now = switches()
    if now ~= captured then
      options.fail(opt:_fname("step"), "parameter %d: the options that choose its update's kernel changed after " ..
        "the CUDA graph was captured (%s, now %s): capture it again", index, captured, now)
    end
    advance(host, index)
  end
  return plan.device:select(1, index)
end

--- Runs fn() before each replay, after the updates recorded so far have advanced (flat_step gives the
-- parameters the flat group's advanced state there).
function graph_step.after(opt, p, fn)
  local advances = plan_of(opt, p).advances
  advances[#advances + 1] = function() fn() end
end

--- Fails, naming the optimizer, when the state an update needs was not made before the capture.
function graph_step.require_state(opt, made)
  if not made then
    options.fail(opt:_fname("step"), "its state is made at its first step, which a CUDA graph cannot capture " ..
      "(it copies zeros from the host): step once before the capture")
  end
end

return graph_step
