--- Model weights as safetensors files under PyTorch's names, so that weights move both ways:
--   L.save_weights(model, "model.safetensors")   -- then in Python:
--     model.load_state_dict(safetensors.torch.load_file("model.safetensors"))
--   L.load_weights(model, "from_pytorch.safetensors")   -- written by safetensors.torch.save_file(m.state_dict())
-- Tensors keep the dtype they ask for (t.dtype, t.scalar): BatchNorm's num_batches_tracked is written as
-- PyTorch's 0-dimensional int64.
local L = require "lightning"
local core = require "lightning.core"
local checkpoint = require "lightning.io.safetensors_checkpoint_io"

local M = {}

local function strip_position(msg)
  return (tostring(msg):gsub("^[^:\n]+:%d+: ", ""))
end

local function check_model(model, fname)
  if type(model) ~= "table" or type(model.state_dict) ~= "function" then
    local hint = type(model) == "string" and (" (the model comes first: %s(model, path))"):format(fname) or ""
    error(("%s: argument 1 must be a module (with state_dict), got %s%s"):format(fname,
      L.is_tensor(model) and "tensor" or type(model), hint), 3)
  end
end

local function check_path(path, fname)
  if type(path) ~= "string" then
    error(("%s: argument 2 must be a path (a string), got %s"):format(fname, L.is_tensor(path) and "tensor" or type(path)), 3)
  end
end

--- Writes model:state_dict() to path (atomically). metadata: {string = string}; "format" = "pt" is added
-- unless given, as safetensors.torch.save_model does (Hugging Face loaders expect it).
function M.save_weights(model, path, metadata)
  local fname = "lightning.save_weights"
  check_model(model, fname)
  check_path(path, fname)
  if metadata ~= nil and type(metadata) ~= "table" then
    error(("%s: argument 3 (metadata) must be a table of strings, got %s"):format(fname, type(metadata)), 2)
  end
  local meta = {format = "pt"}
  for k, v in pairs(metadata or {}) do meta[k] = v end
  local ok, err = pcall(L.save_safetensors, path, checkpoint.on_host(model:state_dict()), meta)
  if not ok then error((strip_position(err):gsub("^lightning%.save_safetensors", fname)), 2) end
end

--- Reads a safetensors file into the model through load_state_dict: a weights file (save_weights,
-- safetensors.torch.save_file) or a training checkpoint (ModelCheckpoint's), whose optimizer, scheduler,
-- callback and loop states are left out. opts.strict (default true): every key must match. Returns
-- {missing_keys = {...}, unexpected_keys = {...}, metadata = {...}} and, for a checkpoint, hparams,
-- epoch and global_step.
function M.load_weights(model, path, opts)
  local fname = "lightning.load_weights"
  check_model(model, fname)
  check_path(path, fname)
  if opts ~= nil and type(opts) ~= "table" then
    error(("%s: argument 3 must be a table of options ({strict = true}), got %s"):format(fname, type(opts)), 2)
  end
  opts = opts or {}
  local strict = opts.strict
  if strict == nil then strict = true end
  -- the header alone: is it a training checkpoint? (Only a regular file is opened here: a FIFO would
  -- block the read; anything else goes on to load_safetensors, which refuses it with a clear error.)
  local header = core.io.file_type(path) == "file" and checkpoint.read_metadata(path)
  local tensors, metadata, ckpt
  if header and header.format == checkpoint.FORMAT then
    local ok, read = pcall(checkpoint.read, path)
    if not ok then error(("%s: %s"):format(fname, strip_position(read)), 2) end
    ckpt, tensors, metadata = read, read.state_dict, header
  else
    local ok, t, m = pcall(L.load_safetensors, path)
    if not ok then error((strip_position(t):gsub("^lightning%.load_safetensors", fname)), 2) end
    tensors, metadata = t, m
  end
  local ok2, result = pcall(model.load_state_dict, model, tensors, strict)
  if not ok2 then error(("%s: %s: %s"):format(fname, path, strip_position(result)), 2) end
  result = result or {}
  result.metadata = metadata
  if ckpt then result.hparams, result.epoch, result.global_step = ckpt.hparams, ckpt.epoch, ckpt.global_step end
  return result
end

return M
