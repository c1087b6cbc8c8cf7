--- Lookahead: weight averaging in the manner of the Lookahead optimizer (Zhang et al., 2019), as
-- airbench uses it (Keller Jordan, arXiv 2404.00498). It keeps a slow copy of the weights (and of the
-- floating-point buffers: BatchNorm's running statistics); every `every_n_steps` optimizer steps the
-- slow copy moves toward the weights, avg = decay_t * avg + (1 - decay_t) * w, and the weights become
-- the slow copy. decay_t grows over the run, decay * (step / total_steps) ^ decay_power, so that early
-- steps barely average and late ones lean on the average. At the run's last step (global_step =
-- total_steps) the weights take the average itself (final = true).
--   L.callbacks.Lookahead{every_n_steps = 5, decay = 0.95 ^ 5, decay_power = 3, buffers = true,
--                         final = true, total_steps}
-- total_steps defaults to the Trainer's estimated_stepping_batches. Its state (the slow copy and the
-- last step it acted at) is saved in checkpoints, so a resumed run continues the same average.
local grad_mode = require "lightning.autograd.mode"
local class = require "lightning.class"
local Callback = require "lightning.callbacks.callback"
local options = require "lightning.util.options"
local L = require "lightning"

local Lookahead = class("Lookahead", Callback)

function Lookahead:__init(opts)
  local o = options.check("Lookahead", opts, {
    every_n_steps = {kind = "integer", min = 1, default = 5},
    decay = {kind = "number", min = 0, max = 1, default = 0.95 ^ 5},
    decay_power = {kind = "number", min = 0, default = 3},
    buffers = {kind = "boolean", default = true},
    final = {kind = "boolean", default = true},
    total_steps = {kind = "integer", min = 1},
  })
  for k, v in pairs(o) do self[k] = v end
  self._average = nil    -- name -> the slow copy of that tensor
  self._tensors = nil    -- name -> the module's tensor it follows
  self._last_step = 0    -- the global step of the last update
  self._finalized = false
end

-- The tensors averaged: the parameters and, with buffers, the floating-point buffers (not
-- num_batches_tracked, an integer count), by state-dict name.
function Lookahead:_tracked(module)
  local list = {}
  for name, p in module:named_parameters() do list[name] = p end
  if self.buffers then
    for name, b in module:named_buffers() do
      if b.dtype ~= "I64" then list[name] = b end
    end
  end
  return list
end

--- The decay at a global step of a run of total steps.
function Lookahead:decay_at(step, total)
  return self.decay * (math.min(step, total) / total) ^ self.decay_power
end

-- avg = decay * avg + (1 - decay) * w, then w = avg, for every tracked tensor (decay 1: w = avg).
function Lookahead:_update(decay)
  grad_mode.with_grad_enabled(false, self._update_tensors, self, decay)
end

-- (the weights are parameters: updating them is never recorded for autograd)
function Lookahead:_update_tensors(decay)
  for name, w in pairs(self._tensors) do
    local avg = self._average[name]
    if decay < 1 then avg:mul(decay):add(w, 1 - decay) end
    w:copy(avg)
  end
end

function Lookahead:on_train_start(trainer, module)
  self._tensors = self:_tracked(module)
  self._total = self.total_steps or trainer.estimated_stepping_batches
  if type(self._total) ~= "number" or self._total ~= self._total or self._total == math.huge then
    error("Lookahead: the run's number of steps is unknown (set max_epochs or max_steps, or total_steps)", 0)
  elseif self._total < 1 then
    error(("Lookahead: the run takes no optimizer step (the Trainer estimates %s: limit_train_batches, max_steps or "
      .. "the training data gives none), so there is nothing to average"):format(tostring(self._total)), 0)
  end
  local loaded = self._loaded
  self._loaded = nil
  self._average = {}
  for _, name in ipairs(options.sorted_keys(self._tensors)) do   -- (in order: the same error every time)
    local w, saved = self._tensors[name], loaded and loaded[name]
    if loaded and not (saved and saved:numel() == w:numel()) then
      error(("Lookahead: the checkpoint's average has no tensor like %s (%s)"):format(name, tostring(w:size())), 0)
    end
    -- (a checkpoint's average is on the host: it goes where the weight is)
    self._average[name] = saved and saved:to(w:device()):clone():view(w:size()) or w:detach():clone()
  end
end

function Lookahead:on_train_batch_end(trainer, module)
  local step = trainer.global_step
  if step == self._last_step or not self._average then return end   -- no optimizer step since the last call
  self._last_step = step
  if step % self.every_n_steps == 0 then self:_update(self:decay_at(step, self._total)) end
  if self.final and step >= self._total and not self._finalized then
    self:_update(1)
    self._finalized = true
  end
end

function Lookahead:state_dict()
  return {average = self._average or {}, last_step = self._last_step, finalized = self._finalized}
end

function Lookahead:load_state_dict(state)
  local fname = "Lookahead:load_state_dict"
  if type(state) ~= "table" then error(fname .. ": expected a table from state_dict(), got " .. options.describe(state), 0) end
  options.check_entries(fname, "", state, {average = true, last_step = true, finalized = true}, "Lookahead")
  local average = state.average or {}
  if type(average) ~= "table" or L.is_tensor(average) then
    error(("%s: average must be a table of tensors by name (state_dict()'s), got %s"):format(fname,
      options.describe(average)), 0)
  end
  for name, t in pairs(average) do
    if type(name) ~= "string" or not L.is_tensor(t) then
      error(("%s: average[%s] must be a tensor under a parameter's name, got %s"):format(fname, options.describe(name),
        options.describe(t)), 0)
    end
  end
  local last_step = state.last_step == nil and 0 or type(state.last_step) == "number" and math.tointeger(state.last_step)
  if not last_step or last_step < 0 then
    error(("%s: last_step must be an integer >= 0, got %s"):format(fname, options.describe(state.last_step)), 0)
  end
  if state.finalized ~= nil and type(state.finalized) ~= "boolean" then
    error(("%s: finalized must be a boolean, got %s"):format(fname, options.describe(state.finalized)), 0)
  end
  self._loaded = next(average) and average or nil
  self._last_step = last_step
  self._finalized = state.finalized == true
end

return Lookahead
