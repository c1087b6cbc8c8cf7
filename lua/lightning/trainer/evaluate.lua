--- trainer:validate / test / predict: setup, one pass of the stage's loop (trainer.validate_loop,
-- test_loop, predict_loop: lightning/trainer/loops/evaluation_loop.lua), teardown, and the table of
-- results that validate and test print.
local hooks = require "lightning.trainer.hooks"
local data = require "lightning.trainer.data"
local checkpoint = require "lightning.trainer.checkpoint"
local agreement = require "lightning.trainer.agreement"
local output = require "lightning.util.output"
local class = require "lightning.class"

local evaluate = {}

-- The Trainer's loop of each stage.
local LOOP = {validation = "validate_loop", test = "test_loop", predict = "predict_loop"}

local function print_results(stage, metrics)
  local names = {}
  for name in pairs(metrics) do names[#names + 1] = name end
  if #names == 0 then return end
  table.sort(names)
  local width = #(stage .. " metric")
  for _, name in ipairs(names) do width = math.max(width, #name) end
  local rule = string.rep("-", width + 24)
  output.print(rule)
  output.print(("%-" .. width .. "s    %s"):format(stage:sub(1, 1):upper() .. stage:sub(2) .. " metric", "DataLoader 1"))
  output.print(rule)
  for _, name in ipairs(names) do output.print(("%-" .. width .. "s    %.6g"):format(name, metrics[name])) end
  output.print(rule)
end

--- The body of trainer:validate / test / predict (stage: "validation", "test" or "predict").
function evaluate.run(trainer, stage, resolve_ckpt, opts)
  local module = trainer.lightning_module
  local fn = trainer.state.fn
  local loop = trainer[LOOP[stage]]
  local step = loop.step_name
  if not module[step] then
    error(("%s has no %s"):format(class.name_of(module), step), 0)
  end
  trainer:_add_module_callbacks()
  hooks.call_module(trainer, "prepare_data")
  data.setup(trainer, fn)
  hooks.call(trainer, "setup", fn)
  local ckpt_path = resolve_ckpt()
  if ckpt_path then checkpoint.restore_model(trainer, trainer.strategy:load_checkpoint(ckpt_path), ckpt_path) end
  trainer.ckpt_path = ckpt_path
  hooks.call_module(trainer, "configure_model")
  trainer.strategy:setup(trainer)
  if not loop:setup_data() and not loop.dataloader then
    error(("no %s data: pass a data module with %s_dataloader or a loader"):format(stage, loop.kind), 0)
  end
  agreement.evaluate(trainer, loop)
  local result = loop:run({})
  hooks.call(trainer, "teardown", fn)
  data.teardown(trainer, fn)
  trainer.strategy:teardown()
  trainer:_finalize_loggers("success")
  if stage == "predict" then return result end
  if opts.verbose ~= false then print_results(stage, result) end
  return {result}
end

return evaluate
