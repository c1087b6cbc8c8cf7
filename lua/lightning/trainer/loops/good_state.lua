--- The training epoch loop's last good state: where a checkpoint saved inside an epoch goes back to.
-- At the start of each epoch and after each optimizer step the epoch loop marks it: the epoch, the
-- batches done, the generator's state at the epoch's start and now, the global step, the epoch's
-- running sums (the training Results: logged means and metric objects' states) and a copy of the
-- module's buffers (BatchNorm's running statistics and num_batches_tracked, which each training
-- forward pass moves, also of a batch that then fails). A checkpoint saved inside an epoch (after an
-- error or an interruption, or by a validation inside the epoch) holds that state, so that resuming
-- from it replays no batch twice, the epoch's train metrics cover all of its batches, and the run ends
-- bit for bit where the uninterrupted one ends.
--   local good = GoodState()
--   good:start_epoch(loop, batches_done, epoch_start_rng)   good:mark(loop, batches_done)
--   good.record: {epoch, batches_done, epoch_start_rng, rng, device_rng, global_step, validated, results,
--                 buffers} (device_rng: the GPU's generator, when the module trains there)
local L = require "lightning"
local class = require "lightning.class"
local generators = require "lightning.trainer.generators"

local GoodState = class("GoodState")

function GoodState:__init()
  self:reset()
end

--- A new run: no good state yet (`record` nil until the first epoch starts).
function GoodState:reset()
  self.record, self.spare = nil, nil
end

-- The buffers to keep a copy of: {name, tensor, copy} for each of the module's buffers.
local function buffer_copies(module, previous)
  local list, old = {}, {}
  for _, b in ipairs(previous or {}) do old[b.name] = b end
  for name, t in module:named_buffers() do
    local b = old[name]
    if not (b and b.tensor == t and b.copy:size() == t:size()) then b = {name = name, tensor = t, copy = t:clone()} end
    list[#list + 1] = b
  end
  return list
end

-- Two records used in turn, so that the good state is replaced in one assignment.
local function fill(record, loop, batches_done, epoch_start_rng)
  local trainer = loop.trainer
  record.epoch, record.batches_done, record.epoch_start_rng = trainer.current_epoch, batches_done, epoch_start_rng
  record.rng, record.global_step, record.validated = L.get_rng_state(), trainer.global_step, false
  record.device_rng = generators.device_state(trainer)
  record.results = loop.results:state_dict()
  for _, b in ipairs(record.buffers) do b.copy:copy(b.tensor) end
  return record
end

--- At the start of an epoch of `loop` (after skipping what a checkpoint had done): the first good state.
function GoodState:start_epoch(loop, batches_done, epoch_start_rng)
  local module = loop.trainer.lightning_module
  local spare = self.spare or {}
  spare.buffers = buffer_copies(module, spare.buffers)
  local good = self.record or {}
  good.buffers = buffer_copies(module, good.buffers)
  self.spare = good
  self.record = fill(spare, loop, batches_done, epoch_start_rng)
end

--- After an optimizer step: batches_done batches of the epoch are done.
function GoodState:mark(loop, batches_done)
  local good = self.record
  self.record = fill(self.spare, loop, batches_done, good.epoch_start_rng)
  self.spare = good
end

--- After a validation inside the epoch that followed batch batches_done: when nothing was trained since
-- the good state, that validation is part of it (with the generator as the validation left it).
function GoodState:validated(batches_done, trainer)
  local good = self.record
  if good and good.batches_done == batches_done then
    good.validated, good.rng, good.device_rng = true, L.get_rng_state(), generators.device_state(trainer)
  end
end

--- The module's buffers as the good state holds them: {name = tensor}.
function GoodState:buffers()
  local buffers = {}
  for _, b in ipairs(self.record.buffers) do buffers[b.name] = b.copy end
  return buffers
end

return GoodState
