--- CheckpointIO: how a strategy writes, reads and removes checkpoint files (Lightning's plugin,
-- lightning/fabric/plugins/io/checkpoint_io.py). The strategy holds one as strategy.checkpoint_io and
-- decides which process calls it; the Trainer decides what goes into the checkpoint table
-- (lightning.trainer.checkpoint). A subclass implements save_checkpoint and load_checkpoint;
-- lightning.io.safetensors_checkpoint_io is the default.
local class = require "lightning.class"

local CheckpointIO = class("CheckpointIO")

--- Writes the checkpoint table ckpt to path.
function CheckpointIO:save_checkpoint(ckpt, path)
  error(("%s:save_checkpoint is not implemented"):format(class.name_of(self)), 2)
end

--- Reads the checkpoint at path back into a table.
function CheckpointIO:load_checkpoint(path)
  error(("%s:load_checkpoint is not implemented"):format(class.name_of(self)), 2)
end

--- Removes the checkpoint at path (nothing when path is nil or empty).
function CheckpointIO:remove_checkpoint(path)
  if path and path ~= "" then os.remove(path) end
end

return CheckpointIO
