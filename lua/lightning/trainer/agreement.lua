--- What the processes of a data-parallel run must agree on before their loops start (checked by the
-- strategy's check_agreement in one all_gather): every batch ends in collectives (the gradients'
-- all-reduce, the interruption check), so a process with more batches, epochs or validations than
-- another waits for ever for it. Compared: each loop's batch count (with the batch size and data set
-- size that gave it, to say why) and the options that shape the loops.
local options = require "lightning.util.options"

local agreement = {}

-- "batch size 8, 64 samples" for a loader, or nil.
local function loader_detail(loader)
  if type(loader) ~= "table" then return nil end
  local parts = {}
  if math.type(loader.batch_size) == "integer" then parts[#parts + 1] = "batch size " .. loader.batch_size end
  local ok, n = pcall(function() return #loader.dataset end)
  if ok and math.type(n) == "integer" then parts[#parts + 1] = n .. " samples" end
  return #parts > 0 and table.concat(parts, ", ") or nil
end

local function value(name, v, detail)
  return {name = name, value = options.describe(v), detail = detail}
end

local function check(trainer, values)
  local strategy = trainer.strategy
  if type(strategy.check_agreement) == "function" then strategy:check_agreement(values) end
end

-- The options that count the fit loop's epochs, steps, batches and validations.
local FIT_OPTIONS = {"max_epochs", "min_epochs", "max_steps", "min_steps", "accumulate_grad_batches",
  "limit_train_batches", "limit_val_batches", "val_check_interval", "check_val_every_n_epoch", "num_sanity_val_steps"}

--- At the start of fit, once the loaders are known (before the sanity check).
function agreement.fit(trainer)
  local values = {
    value("training batches per epoch", trainer.num_training_batches, loader_detail(trainer.train_dataloader)),
    value("validation batches", trainer.validate_loop.enabled and trainer.num_val_batches or 0,
      loader_detail(trainer.validate_loop.dataloader)),
  }
  for _, name in ipairs(FIT_OPTIONS) do values[#values + 1] = value(name, trainer[name]) end
  check(trainer, values)
end

local LIMIT = {validation = "limit_val_batches", test = "limit_test_batches", predict = "limit_predict_batches"}

--- At the start of validate, test or predict: the stage's loop (trainer.validate_loop, ...) knows its
-- batches.
function agreement.evaluate(trainer, loop)
  local stage = loop.stage
  check(trainer, {
    value(stage .. " batches", loop.num_batches, loader_detail(loop.dataloader)),
    value(LIMIT[stage], trainer[LIMIT[stage]]),
  })
end

return agreement
