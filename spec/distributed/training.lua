-- The training runs the distributed specs compare: N processes at batch B (spec/distributed/worker.lua
-- under mpirun) against one process at N x B (in the spec itself). Same seed, same data, same order.
--   local T = require "distributed.training"
--   local trainer, model = T.fit{kind = "batchnorm", batch = 4, epochs = 2, root = dir, ...}
-- kind: "plain" (convolution, ReLU, linear layers: no BatchNorm), "batchnorm" (a BatchNorm2d run by the
-- fused BatchNorm+ReLU+pool layer, with sync_batchnorm). Images are 8x8.
local L = require "lightning"
local nn = L.nn

local T = {}

T.SAMPLES, T.VAL_SAMPLES, T.CLASSES = 80, 24, 4

-- A data set of images whose class shows in a bright band, fixed by its seed.
function T.dataset(n, seed, size)
  L.manual_seed(seed)
  local list = {}
  for i = 1, n do
    local class = (i * 7) % T.CLASSES + 1
    local x = L.randn(3, size, size):mul(0.5)
    x:narrow(2, class, 2):add(1.5)
    list[i] = {input = x, target = class}
  end
  return list
end

-- A convolution, a BatchNorm2d that the fused BatchNorm+ReLU+pool layer runs (as in the reference
-- model: the fused layer is a step, the BatchNorm the registered module), a linear layer. Unlike the
-- reference model at 16x16 (BatchNorm1d over 8 samples), its training is not chaotic: two runs that
-- differ in float rounding stay together over 20 steps.
local BatchNormNet = L.class("BatchNormNet", L.models.ImageClassifier)

function BatchNormNet:__init(opts)
  L.models.ImageClassifier.__init(self, opts)
  self:add_module("conv", nn.Conv2d(3, 6, 3, {padding = 1}))
  self:add_module("bn", nn.BatchNorm2d(6))
  self:add_module("flatten", nn.Flatten())
  self:add_module("fc", nn.Linear(6 * 4 * 4, T.CLASSES))
  self.steps = {self.conv, nn.BatchNormReLUMaxPool2d(self.bn), self.flatten, self.fc}
end

function BatchNormNet:forward(x)
  for _, m in ipairs(self.steps) do x = m:forward(x) end
  return x
end

function BatchNormNet:backward(x, g)
  for i = #self.steps, 1, -1 do
    g = self.steps[i]:backward(i > 1 and self.steps[i - 1].output or x, g)
    L.nn.backward_hook.done(self.steps[i])
  end
  return g
end

-- Two branches concatenated, written with forward only: autograd records the layers' calls, and DDP's
-- buckets start as each layer's node finishes. (ImageClassifier has a backward for a net it holds; this
-- model takes Module's, which marks a composite.)
local CompositeNet = L.class("CompositeNet", L.models.ImageClassifier)
CompositeNet.backward = nn.Module.backward

function CompositeNet:__init(opts)
  L.models.ImageClassifier.__init(self, opts)
  self:add_module("wide", nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1}), nn.ReLU()))
  self:add_module("thin", nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU()))
  self:add_module("fc", nn.Linear(6 * 4 * 4, T.CLASSES))
  self.pool = nn.MaxPool2d(2)
end

function CompositeNet:forward(x)
  return self.fc(self.pool(L.cat({self.wide(x), self.thin(x)}, 2)):flatten(2))
end

function T.model(kind)
  L.manual_seed(11)
  local hp = {num_classes = T.CLASSES, learning_rate = 0.05, optimizer = "sgd", momentum = 0.9}
  if kind == "batchnorm" then return BatchNormNet(hp) end
  if kind == "composite" then return CompositeNet(hp) end
  hp.net = nn.Sequential(nn.Conv2d(3, 6, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(6 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, T.CLASSES))
  return L.models.ImageClassifier(hp)
end

--- opts: kind, batch (per process), epochs, accumulate, root (default_root_dir), callbacks (more),
-- checkpoint (a ModelCheckpoint with save_last into root/ckpt), loggers (CSV and TensorBoard into
-- root/logs), ckpt_path, early_stopping, bucket_cap_mb, timeout, gradient_dtype (DDPStrategy's), samples (training samples, default T.SAMPLES: 6
-- processes need a multiple of 6), accelerator (the Trainer's, default "cpu"), sync_batchnorm (default:
-- kind "batchnorm"). Returns the trainer and the model.
function T.fit(o)
  local size = 8
  local train = L.data.DataLoader(T.dataset(o.samples or T.SAMPLES, 1, size), {batch_size = o.batch, shuffle = true})
  local val = L.data.DataLoader(T.dataset(T.VAL_SAMPLES, 2, size), {batch_size = o.batch})
  local model = T.model(o.kind)
  local callbacks = {}
  for _, cb in ipairs(o.callbacks or {}) do callbacks[#callbacks + 1] = cb end
  if o.checkpoint then
    callbacks[#callbacks + 1] = L.callbacks.ModelCheckpoint{dirpath = o.root .. "/ckpt", monitor = "val_acc",
      mode = "max", save_top_k = 2, save_last = true}
  end
  if o.early_stopping then
    callbacks[#callbacks + 1] = L.callbacks.EarlyStopping{monitor = "val_loss", patience = o.early_stopping}
  end
  local logger = false
  if o.loggers then
    local tb = L.loggers.TensorBoardLogger{save_dir = o.root .. "/logs", name = "run"}
    logger = {tb, L.loggers.CSVLogger{save_dir = o.root .. "/logs", name = "run", version = tb.version}}
  end
  local strategy = "auto"
  if o.bucket_cap_mb or o.timeout or o.gradient_dtype then
    strategy = L.strategies.DDPStrategy{bucket_cap_mb = o.bucket_cap_mb, timeout = o.timeout,
      gradient_dtype = o.gradient_dtype}
  end
  local trainer = L.Trainer{max_epochs = o.epochs, default_root_dir = o.root, logger = logger,
    enable_checkpointing = o.checkpoint == true, enable_progress_bar = false, enable_model_summary = false,
    callbacks = callbacks, accumulate_grad_batches = o.accumulate or 1, num_sanity_val_steps = 0, strategy = strategy,
    sync_batchnorm = o.sync_batchnorm == nil and o.kind == "batchnorm" or o.sync_batchnorm == true,
    accelerator = o.accelerator or "cpu", precision = o.precision}
  L.manual_seed(5)
  trainer:fit(model, train, val, {ckpt_path = o.ckpt_path})
  return trainer, model
end

--- One process at the global batch, here, in o.root: what a job's processes are compared with.
function T.single(o)
  local trainer, model = T.fit(o)
  return {trainer = trainer, weights = model:state_dict(), summary = T.summary(trainer), dir = o.root}
end

--- What a run leaves to compare: the metrics, the step and epoch, the world size, the reductions.
function T.summary(trainer)
  local metrics = {}
  for k, v in pairs(trainer.callback_metrics) do metrics[k] = v end
  local stats = trainer.strategy.reduction_stats and trainer.strategy:reduction_stats()
  return {metrics = metrics, global_step = trainer.global_step, epoch = trainer.current_epoch,
    world_size = trainer.world_size, rank = trainer.global_rank, reductions = stats and stats.steps,
    buckets = stats and stats.buckets, precision_state = trainer.precision_plugin:state_dict()}
end

return T
