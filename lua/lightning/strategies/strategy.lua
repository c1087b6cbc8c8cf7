--- Strategy: how the Trainer's per-batch work is done, PyTorch Lightning's Strategy. The Trainer never
-- runs the backward pass, clipping, the optimizer step or the checkpoint writer itself: it asks its
-- strategy (trainer.strategy), which works with its precision plugin (strategy.precision_plugin,
-- lightning/precision/). This base class does the work of one process; a subclass says how processes
-- cooperate (single.lua: one process; a data-parallel one averages gradients between processes).
--
-- Life cycle, in the order the Trainer calls it for fit, validate, test and predict:
--   setup_environment()        first: start or join the processes (ranks are known after it); the
--                              accelerator's setup_device
--   connect(module)            the LightningModule of this run
--   model_to_device()          the model (in place) to the accelerator's device, root_device(): fit calls
--                              it before configure_optimizers, so that the optimizers see the parameters
--                              where they train
--   setup(trainer)             after configure_optimizers (fit) or the checkpoint (evaluation): model_to_device,
--                              the plugin's connect; a data-parallel strategy broadcasts the weights here
--   teardown()                 at the end of the run (also after an error)
-- Per batch (every loop), first: batch_to_device(batch, dataloader_idx), through the module's hooks
--   on_before_batch_transfer, transfer_batch_to_device (to root_device()), on_after_batch_transfer.
-- Per training batch (fit loop):
--   optimizer_zero_grad(optimizer, batch_idx)       first batch of an accumulation group:
--                                                   on_before_zero_grad hooks, the module's optimizer_zero_grad
--   backward(loss, optimizer, batch, outputs, sync) pre_backward, the plugin's pre_backward / backward
--                                                   (the module's backward_step), finish_backward, the
--                                                   plugin's post_backward, post_backward;
--                                                   sync: this pass ends an accumulation group (its gradients
--                                                   are the ones stepped on: the moment to reduce them)
--   optimizer_step(optimizer, batch_idx, accumulated) last batch of a group: gradients divided by the
--                                                   accumulated batch count, then the plugin's optimizer_step
--                                                   (on_before_optimizer_step, clipping, the module's optimizer_step)
-- Processes (subclasses implement these; single.lua for one process):
--   global_rank(), local_rank(), world_size(), is_global_zero()
--   reduce(value, reduce_op)   a number (or one-element tensor) combined over processes: "mean", "sum",
--                              "max", "min" (logged values with sync_dist = true go through it)
--   all_gather(value)          the list of every process's value, by rank
--   broadcast(value, src)      process src's value, on every process (src defaults to 0)
--   barrier(name)              waits until every process gets there
--   reduce_boolean_decision(decision, all)  true on every process when all (or, all = false, any) say true
-- Data and files:
--   process_dataloader(loader, kind)  the loader to use ("train", "val", "test", "predict"): a
--                              data-parallel strategy gives each process its shard; a resumed run's
--                              position inside an epoch is set in the training loader's batches here
--   save_checkpoint(ckpt, path)       writes the checkpoint table (global rank 0 only)
--   remove_checkpoint(path)           (global rank 0 only)
--   load_checkpoint(path)             reads one back (every process)
--   (all three through strategy.checkpoint_io, a lightning.io.checkpoint_io: by default the
--   safetensors file format; set another on the strategy to change how the files are written)
-- The Trainer writes logs, checkpoints and plots, and draws the progress bar, only where
-- is_global_zero() is true (trainer.is_global_zero).
local class = require "lightning.class"
local options = require "lightning.util.options"
local SafetensorsCheckpointIO = require "lightning.io.safetensors_checkpoint_io"
local Precision = require "lightning.precision.precision"
local flat = require "lightning.nn.flat"

local Strategy = class("Strategy")

--- The name in Trainer{strategy = ...} (lightning.strategies' registry).
Strategy.strategy_name = "strategy"

--- How checkpoint files are written, read and removed (Lightning's CheckpointIO plugin); an instance
-- may hold its own.
Strategy.checkpoint_io = SafetensorsCheckpointIO()

Strategy.option_specs = {
  precision_plugin = {test = function(v) return class.is_instance(v, Precision) end,
    expected = "a precision plugin (lightning.precision)"},
}

--- Strategy{precision_plugin = plugin}: without one the Trainer gives it the plugin of its precision option.
function Strategy:__init(opts)
  local o = options.check(class.name_of(self), opts, self.option_specs)
  self.precision_plugin = o.precision_plugin
  self.lightning_module, self.trainer = nil, nil
end

--- True for Strategy and its subclasses (the classes, not their objects).
function Strategy.is_strategy_class(cls)
  while type(cls) == "table" do
    if cls == Strategy then return true end
    cls = rawget(cls, "super")
  end
  return false
end

local function not_implemented(self, method)
  options.fail(nil, "%s:%s is not implemented (a strategy says how processes cooperate)", class.name_of(self), method)
end

-- ---- life cycle ----

--- strategy.accelerator: the Trainer's (lightning.accelerators), unless the strategy was given its own.
function Strategy:setup_environment()
  if self.accelerator then self.accelerator:setup_device(self:root_device()) end
end

function Strategy:connect(module)
  self.lightning_module = module
end

function Strategy:setup(trainer)
  self.trainer = trainer
  self._resumed_loops = nil
  self:model_to_device()
  self.precision_plugin:connect(self.lightning_module)
end

--- The device this process computes on: its accelerator's ("cpu", "cuda:0"), the host without one.
function Strategy:root_device()
  return self.accelerator and self.accelerator:device() or "cpu"
end

--- Moves the model to root_device() in place (Module:to: parameters keep their identity).
function Strategy:model_to_device()
  self.lightning_module:to(self:root_device())
end

-- A batch-transfer hook of the module: its result, or the batch as it was when the module has no such
-- hook or the hook returns nothing.
local function transfer_hook(trainer, name, batch, ...)
  local moved = trainer:_call_module_hook(name, batch, ...)
  if moved == nil then return batch end
  return moved
end

--- The batch on root_device(), as Lightning's batch_to_device: the module's hooks on_before_batch_transfer,
-- transfer_batch_to_device (the default moves every tensor of the batch; on the host it returns the
-- batch as it is) and on_after_batch_transfer. dataloader_idx: 0 for the loop's one loader.
function Strategy:batch_to_device(batch, dataloader_idx)
  local trainer = self.lightning_module.trainer
  dataloader_idx = dataloader_idx or 0
  batch = transfer_hook(trainer, "on_before_batch_transfer", batch, dataloader_idx)
  batch = transfer_hook(trainer, "transfer_batch_to_device", batch, self:root_device(), dataloader_idx)
  return transfer_hook(trainer, "on_after_batch_transfer", batch, dataloader_idx)
end

function Strategy:teardown()
  if self.precision_plugin then self.precision_plugin:teardown() end
  self.trainer = nil
end

-- ---- the training step ----

function Strategy:optimizer_zero_grad(optimizer, batch_idx)
  local trainer = self.lightning_module.trainer
  trainer:_call_hook("on_before_zero_grad", optimizer)
  trainer:_call_module_hook("optimizer_zero_grad", trainer.current_epoch, batch_idx, optimizer)
end

--- Hooks for a subclass around the backward pass: pre_backward before it, finish_backward as soon as it
-- has run (before the on_after_backward hooks: a data-parallel strategy completes its gradient
-- reduction there, so that those hooks see the averaged gradients, as after PyTorch DDP's backward),
-- post_backward last.
function Strategy:pre_backward(loss, sync) end
function Strategy:finish_backward(sync) end
function Strategy:post_backward(loss, sync) end

function Strategy:backward(loss, optimizer, batch, outputs, sync)
  local module, plugin = self.lightning_module, self.precision_plugin
  self:pre_backward(loss, sync)
  loss = plugin:pre_backward(loss, module)
  plugin:backward(loss, module, optimizer, batch, outputs)
  self:finish_backward(sync)
  loss = plugin:post_backward(loss, module)
  self:post_backward(loss, sync)
  return loss
end

--- With accumulate_grad_batches = n the gradients add up over n batches; Lightning divides the loss by
-- n, which is done here to the gradients (one pass over the flat gradient when the parameters are flat).
function Strategy:scale_gradients(optimizer, factor)
  for _, g in ipairs(flat.gradients(self.precision_plugin:main_params(optimizer, self.lightning_module))) do
    g:mul(factor)
  end
end

function Strategy:optimizer_step(optimizer, batch_idx, accumulated)
  if accumulated and accumulated > 1 then self:scale_gradients(optimizer, 1 / accumulated) end
  return self.precision_plugin:optimizer_step(optimizer, self.lightning_module, batch_idx)
end

-- ---- processes ----

function Strategy:global_rank() not_implemented(self, "global_rank") end
function Strategy:local_rank() not_implemented(self, "local_rank") end
function Strategy:world_size() not_implemented(self, "world_size") end
function Strategy:is_global_zero() return self:global_rank() == 0 end
function Strategy:reduce(value, reduce_op) not_implemented(self, "reduce") end
function Strategy:all_gather(value) not_implemented(self, "all_gather") end
function Strategy:broadcast(value, src) not_implemented(self, "broadcast") end
function Strategy:barrier(name) not_implemented(self, "barrier") end
function Strategy:reduce_boolean_decision(decision, all) not_implemented(self, "reduce_boolean_decision") end

-- ---- what every process must agree on ----

-- "8 on rank 0 (batch size 8, 64 samples), 6 on ranks 1, 2 (...)": the ranks of each distinct value.
local function by_value(all, i)
  local order, groups, values_differ = {}, {}, false
  for r, values in ipairs(all) do
    local v = values[i]
    values_differ = values_differ or v.value ~= all[1][i].value
    local key = v.value .. "\0" .. (v.detail or "")
    if not groups[key] then
      groups[key] = {value = v.value, detail = v.detail, ranks = {}}
      order[#order + 1] = groups[key]
    end
    table.insert(groups[key].ranks, tostring(r - 1))
  end
  if not values_differ then return nil end
  for k, g in ipairs(order) do
    order[k] = ("%s on rank%s %s%s"):format(g.value, #g.ranks > 1 and "s" or "", table.concat(g.ranks, ", "),
      g.detail and (" (" .. g.detail .. ")") or "")
  end
  return table.concat(order, ", ")
end

--- Refuses processes that disagree on what shapes the loops (the batches of each loop, the options
-- that count epochs, steps and validations): a process with more batches than another would wait for
-- ever in a collective that the other never reaches. values: a list of {name = ..., value = <text>,
-- detail = <text or nil>} in the same order on every process; every process raises the same error,
-- naming the ranks and their values (the Trainer's report says which run: "Trainer:fit failed: ...").
-- One all_gather; nothing with one process.
function Strategy:check_agreement(values)
  if self:world_size() == 1 then return end
  local all = self:all_gather(values)
  local parts = {}
  for i, v in ipairs(values) do
    local differ = by_value(all, i)
    if differ then parts[#parts + 1] = v.name .. ": " .. differ end
  end
  if #parts == 0 then return end
  self._agreed_failure = true   -- (every process fails here alike: none is left waiting)
  error(("the %d processes disagree on what must be the same on each of them: %s; each would wait for ever for " ..
    "the others in a batch they never run (give every process the same data, batch size and Trainer options)")
    :format(self:world_size(), table.concat(parts, "; ")), 0)
end

-- ---- data and files ----

function Strategy:process_dataloader(loader, kind)
  if kind == "train" then self:resume_position(loader) end
  return loader
end

--- A checkpoint's position inside an epoch (one saved after an error) counts batches of the run that
-- saved it; it is kept as samples too (loops.samples_done), so that a run with another number of
-- processes or another batch size resumes at the same sample (at the batch boundary below it).
function Strategy:record_position(ckpt)
  local loops = ckpt.loops
  local loader = self.trainer and self.trainer.train_dataloader
  if type(loops) ~= "table" or not loops.batches_done or type(loader) ~= "table" then return end
  if math.type(loader.batch_size) == "integer" then
    loops.samples_done = loops.batches_done * loader.batch_size * self:world_size()
  end
end

--- The training loader of a resumed run is known (load_checkpoint came first): the position in its batches.
function Strategy:resume_position(loader)
  local loops = self._resumed_loops
  self._resumed_loops = nil
  if loops and loops.samples_done and math.type(loader.batch_size) == "integer" then
    loops.batches_done = loops.samples_done // (loader.batch_size * self:world_size())
  end
end

function Strategy:save_checkpoint(ckpt, path)
  self:record_position(ckpt)
  if self:is_global_zero() then self.checkpoint_io:save_checkpoint(ckpt, path) end
end

function Strategy:remove_checkpoint(path)
  if self:is_global_zero() then self.checkpoint_io:remove_checkpoint(path) end
end

function Strategy:load_checkpoint(path)
  local ckpt = self.checkpoint_io:load_checkpoint(path)
  self._resumed_loops = ckpt.loops
  return ckpt
end

function Strategy:__tostring()
  return ("%s(precision=%s)"):format(class.name_of(self), self.precision_plugin and self.precision_plugin.precision or "?")
end

return Strategy
