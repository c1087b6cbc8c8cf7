--- Progress counters of a loop, in the shape of PyTorch Lightning's loops/progress.py: how many
-- items (epochs, batches) were made ready, started, processed and completed, over the loop's whole
-- life (total) and in its current run (current: an epoch's batches, a validation pass's batches).
--   local p = progress.Progress()       p:increment_ready(); p:increment_started(); ...
--   local b = progress.BatchProgress()  adds is_last_batch
-- state_dict() / load_state_dict() give and take the counters as plain tables.
local class = require "lightning.class"

local progress = {}

local STAGES = {"ready", "started", "processed", "completed"}

local function counters()
  return {ready = 0, started = 0, processed = 0, completed = 0}
end

local function copy(from, to)
  for _, stage in ipairs(STAGES) do to[stage] = from[stage] or 0 end
  return to
end

local Progress = class("Progress")
progress.Progress = Progress

function Progress:__init()
  self.total, self.current = counters(), counters()
end

-- (one function per stage, as Lightning's increment_ready/started/processed/completed)
for _, stage in ipairs(STAGES) do
  Progress["increment_" .. stage] = function(self)
    self.total[stage] = self.total[stage] + 1
    self.current[stage] = self.current[stage] + 1
  end
end

--- A new run of the loop (an epoch, a validation pass): the current counters start again.
function Progress:reset_on_run()
  copy({}, self.current)
end

--- Sets the current counters to n items all completed (a run resumed after n items), and the total
-- ones to at least that.
function Progress:set_completed(n)
  for _, stage in ipairs(STAGES) do
    self.current[stage] = n
    if self.total[stage] < n then self.total[stage] = n end
  end
end

function Progress:state_dict()
  return {total = copy(self.total, {}), current = copy(self.current, {})}
end

function Progress:load_state_dict(state)
  copy(state.total or {}, self.total)
  copy(state.current or {}, self.current)
end

local BatchProgress = class("BatchProgress", Progress)
progress.BatchProgress = BatchProgress

function BatchProgress:__init()
  Progress.__init(self)
  self.is_last_batch = false
end

function BatchProgress:reset_on_run()
  Progress.reset_on_run(self)
  self.is_last_batch = false
end

function BatchProgress:state_dict()
  local state = Progress.state_dict(self)
  state.is_last_batch = self.is_last_batch
  return state
end

function BatchProgress:load_state_dict(state)
  Progress.load_state_dict(self, state)
  self.is_last_batch = state.is_last_batch == true
end

return progress
