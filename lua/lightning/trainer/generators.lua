--- The GPU's generator in a run's position. The host's generator (L.get_rng_state: the data's order and
-- augmentation, dropout on the CPU) is saved and restored by the checkpoint and the epoch loop's good
-- state; when the module trains on a GPU, its dropout draws from the GPU's generator
-- (L.cuda.get_rng_state), which they keep beside it, so that a resumed GPU run draws the masks the
-- uninterrupted one would.
local L = require "lightning"

local generators = {}

local function on_gpu(trainer) return trainer.strategy ~= nil and trainer.strategy:root_device() ~= "cpu" end

--- The GPU generator's state when the trainer computes on a GPU, else nil.
function generators.device_state(trainer)
  if on_gpu(trainer) then return L.cuda.get_rng_state() end
  return nil
end

--- Sets the GPU generator to `state` (a checkpoint's) where the run computes on a GPU; a GPU run resumed
-- on the CPU leaves it (the CPU's dropout draws from the host's generator).
function generators.restore_device(trainer, state)
  if state ~= nil and on_gpu(trainer) then L.cuda.set_rng_state(state) end
end

return generators
