--- Metric objects over every process of a data-parallel run, as torchmetrics syncs its states before
-- compute(): the state of one object (state_dict()) is gathered from every process and merged in rank
-- order (load_state_dict of rank 0's, then merge_state of each other's), fn() runs on that merged
-- state, and the process's own state goes back (torchmetrics' unsync), so that what fn computes covers
-- all the data and is the same, bit for bit, on every process.
--   local scores = dist_metrics.synced(model.epoch_metrics.val, trainer.strategy, function()
--     return model.epoch_metrics.val:compute()
--   end)
-- In one process, or for an object without state_dict, load_state_dict and merge_state, fn() runs on
-- the process's own state. Every process must call it at the same point (a collective: one
-- all_gather of the state).
local dist_metrics = {}

--- Whether an object's state can be merged over processes.
function dist_metrics.can_sync(owner)
  return type(owner) == "table" and type(owner.state_dict) == "function" and type(owner.load_state_dict) == "function"
    and type(owner.merge_state) == "function"
end

--- Loads the merge of states (a list, in rank order) into owner.
function dist_metrics.load_merged(owner, states)
  owner:load_state_dict(states[1])
  for i = 2, #states do owner:merge_state(states[i]) end
end

--- fn()'s results computed on the merged state of owner over every process of strategy.
function dist_metrics.synced(owner, strategy, fn)
  if not strategy or strategy:world_size() == 1 or not dist_metrics.can_sync(owner) then return fn() end
  local mine = owner:state_dict()
  local states = strategy:all_gather(mine)
  dist_metrics.load_merged(owner, states)
  local results = table.pack(pcall(fn))
  owner:load_state_dict(mine)
  if not results[1] then error(results[2], 0) end
  return table.unpack(results, 2, results.n)
end

return dist_metrics
