--- SingleDeviceStrategy (Trainer{strategy = "single"}, and what "auto" picks in one process): training
-- in this one process, on the host. Collectives are trivial: reduce returns its value, broadcast its
-- value, all_gather a list of one, barrier returns at once; this process is global rank 0 of 1.
local class = require "lightning.class"
local Strategy = require "lightning.strategies.strategy"
local options = require "lightning.util.options"

local SingleDeviceStrategy = class("SingleDeviceStrategy", Strategy)
SingleDeviceStrategy.strategy_name = "single"

local REDUCE_OPS = {mean = true, sum = true, max = true, min = true}
local REDUCE_OP = {kind = "string", one_of = {"mean", "sum", "max", "min"}}

function SingleDeviceStrategy:global_rank() return 0 end
function SingleDeviceStrategy:local_rank() return 0 end
function SingleDeviceStrategy:world_size() return 1 end
function SingleDeviceStrategy:is_global_zero() return true end

function SingleDeviceStrategy:reduce(value, reduce_op)
  if reduce_op ~= nil and not REDUCE_OPS[reduce_op] then
    options.check_value("SingleDeviceStrategy:reduce", "", "reduce_op", REDUCE_OP, reduce_op)
  end
  return value
end

function SingleDeviceStrategy:all_gather(value) return {value} end
function SingleDeviceStrategy:broadcast(value, src) return value end
function SingleDeviceStrategy:barrier(name) end
function SingleDeviceStrategy:reduce_boolean_decision(decision, all) return decision end

return SingleDeviceStrategy
