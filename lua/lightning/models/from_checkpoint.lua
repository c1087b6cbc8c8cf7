--- load_from_checkpoint for the models (PyTorch Lightning's classmethod): a training checkpoint's
-- metadata holds the model's hyper-parameters, so the model can be built again without knowing them:
--   local model = L.models.BasicImageClassifier.load_from_checkpoint("outputs/image_classifier/version_0/checkpoints/last.safetensors")
--   local model = L.models.BasicImageClassifier.load_from_checkpoint(path, {dropout_rate = 0})  -- overrides
-- The hyper-parameters the constructor takes build the model; all of them (the run's configuration,
-- the class names, the normalisation) are then in model.hparams. The weights are loaded strictly. As in
-- Lightning, the model comes back in training mode: call model:eval() before forward (trainer:predict
-- does).
local class = require "lightning.class"
local checkpoint = require "lightning.io.safetensors_checkpoint_io"
local fs = require "lightning.util.fs"

local M = {}

local function fail(fname, fmt, ...) error(fname .. ": " .. fmt:format(...), 0) end

-- The hyper-parameters a model class cannot be built without (its defaults would give another network).
local REQUIRED = {"num_classes", "in_channels", "image_size"}

--- Builds an instance of cls from the checkpoint at path. overrides: hyper-parameters to replace.
function M.load(cls, path, overrides)
  local name = rawget(cls, "__name") or "model"
  local fname = name .. ".load_from_checkpoint"
  if type(path) ~= "string" then fail(fname, "argument 1 must be the path of a checkpoint, got %s", class.name_of(path)) end
  if overrides ~= nil and type(overrides) ~= "table" then
    fail(fname, "argument 2 (overrides) must be a table of hyper-parameters, got %s", type(overrides))
  end
  -- (asks stat, never opens: a FIFO would block an open; checkpoint.read refuses what is not a file)
  if not fs.exists(path) then fail(fname, "checkpoint %s not found", path) end
  local ok, ckpt = pcall(checkpoint.read, path)
  if not ok then
    fail(fname, "%s%s", tostring(ckpt), tostring(ckpt):find("not a lightning checkpoint", 1, true) and
      (": build the model with its options, L.models.%s{num_classes = ..., ...}, then L.load_weights(model, path)")
        :format(name) or "")
  end
  local hp = ckpt.hparams or {}
  local missing = {}
  for _, key in ipairs(REQUIRED) do if hp[key] == nil then missing[#missing + 1] = key end end
  if #missing > 0 then
    fail(fname, "%s holds no hyperparameters %s (a checkpoint from an older version of lightning, or of another "
      .. "model): build the model with the options it was trained with, local model = L.models.%s{num_classes = "
      .. "..., in_channels = ..., image_size = ...}, then load the weights with L.load_weights(model, %q)",
      path, table.concat(missing, ", "), name, path)
  end
  local known = cls.option_names and cls.option_names(cls) or {}
  local opts = {}
  for k, v in pairs(hp) do if known[k] and k ~= "net" then opts[k] = v end end
  for k, v in pairs(overrides or {}) do opts[k] = v end
  local model = cls(opts)
  for k, v in pairs(hp) do if model.hparams[k] == nil then model.hparams[k] = v end end
  local loaded, err = pcall(model.load_state_dict, model, ckpt.state_dict, true)
  if not loaded then fail(fname, "%s: %s", path, (tostring(err):gsub("^[^:\n]+:%d+: ", ""))) end
  model.checkpoint_info = {path = path, epoch = ckpt.epoch, global_step = ckpt.global_step}
  return model
end

--- A load_from_checkpoint for class cls: called as cls.load_from_checkpoint(path[, overrides]), or with
-- a colon on cls or a subclass (Sub:load_from_checkpoint(path)), which builds that class.
function M.bind(cls)
  return function(a, b, c)
    if type(a) == "table" and rawget(a, "__index") == a then return M.load(a, b, c) end
    return M.load(cls, a, b)
  end
end

return M
