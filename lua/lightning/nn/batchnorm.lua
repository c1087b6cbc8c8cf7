--- nn.BatchNorm1d(num_features, opts) for (N, C) or (N, C, L) inputs and nn.BatchNorm2d(num_features, opts)
-- for (N, C, H, W); opts: eps = 1e-5, momentum = 0.1 (false: cumulative average, PyTorch's None),
-- affine = true, track_running_stats = true. Training mode normalises with the batch's statistics and
-- updates the running ones; evaluation mode uses the running ones.
local L = require "lightning"
local class = require "lightning.class"
local cuda = require "lightning.cuda"
local Module = require "lightning.nn.module"
local util = require "lightning.nn.util"
local C = L.core.nn

local BatchNorm = class("BatchNorm", Module)

-- extra_specs: options of a subclass beside BatchNorm's (nn.BatchNormAct2d's activation); the checked
-- options are returned.
function BatchNorm:__init(num_features, opts, name, dims, extra_specs)
  Module.__init(self)
  self._name, self._dims = name, dims
  local specs = {
    eps = {kind = "number", min = 0, default = 1e-5},
    momentum = {test = function(v) return v == false or (type(v) == "number" and v >= 0 and v <= 1) end,
      expected = "a number in [0, 1] or false (cumulative average)", default = 0.1},
    affine = {kind = "boolean", default = true},
    track_running_stats = {kind = "boolean", default = true},
  }
  for k, spec in pairs(extra_specs or {}) do specs[k] = spec end
  local o = util.options(name, opts, specs)
  self.num_features = util.positive_int(name, "num_features", num_features)
  self.eps, self.momentum, self.affine = o.eps, o.momentum, o.affine
  self.track_running_stats = o.track_running_stats
  if self.affine then
    self:register_parameter("weight", L.ones(num_features))
    self:register_parameter("bias", L.zeros(num_features))
  end
  if self.track_running_stats then
    self:register_buffer("running_mean", L.zeros(num_features))
    self:register_buffer("running_var", L.ones(num_features))
    local count = L.zeros(1)
    count.dtype, count.scalar = "I64", true   -- PyTorch's 0-dimensional int64 buffer
    self:register_buffer("num_batches_tracked", count)
  end
  self.needs_input_grad = true
  self.output, self.grad_input = L.empty(0), L.empty(0)
  self._save_mean, self._save_invstd = L.empty(0), L.empty(0)
  self._kernel = C.kernel_handle()
  return o
end

--- Whether this pass adds its batch statistics over processes (nn.SyncBatchNorm in a data-parallel run);
-- layers that fuse a BatchNorm with others run it unfused then.
function BatchNorm:_reduces_statistics() return false end

-- Batch statistics in training, and in evaluation when there are no running statistics.
function BatchNorm:_uses_batch_stats()
  return self.training or not self.track_running_stats
end

--- Checks the input, counts the batch, and returns the fields of a forward kernel's call but its handle
-- and outputs: input, weight, bias, running statistics, whether to use the batch's, momentum, eps,
-- num_batches_tracked, and the tensors that keep the batch's statistics. Shared with the fused
-- nn.BatchNormReLUMaxPool2d.
-- One more batch in num_batches_tracked; returns the new count. The count is kept in Lua as well, valid
-- while the buffer's version (t:_version(), which every write through a tensor method moves on: fill,
-- copy, load_state_dict, to) is the one it was read at, so that on a GPU the buffer is read through the
-- host only after something else wrote it, not at every training step.
function BatchNorm:_count_batch()
  local buffer = self.num_batches_tracked
  if cuda.is_current_stream_capturing() and buffer:device() ~= "cpu" then return self:_count_in_graph() end
  local known = self._tracked_version == buffer:_version() and self._tracked_count
  local count = (known or buffer[1]) + 1
  buffer:fill(count)
  self._tracked_count, self._tracked_version = count, buffer:_version()   -- two numbers: no table per step
  return count
end

-- In a CUDA graph's capture: the count goes on before each replay, on the host (a fill recorded in the
-- graph would write the capture's count at every replay). A cumulative average (momentum = false) divides
-- by the count in the kernel, which the graph would record: refused.
function BatchNorm:_count_in_graph()
  if not self.momentum then
    error(("%s: a cumulative moving average (momentum = false) divides by the count of batches, which a CUDA " ..
      "graph would record as it is now"):format(self._name), 0)
  end
  cuda.before_replay(function() self:_count_batch() end)
  return (self._tracked_count or 0) + 1   -- (unread with a momentum)
end

function BatchNorm:_forward_args(fname, input)
  util.check_input(fname, input, self._dims)
  if input:size(2) ~= self.num_features then
    error(("%s: input has %d channels but the layer expects %d (input %s)"):format(fname, input:size(2),
      self.num_features, tostring(input:size())), 3)
  end
  local batch_stats = self:_uses_batch_stats()
  local count = 0
  if self.training and self.track_running_stats then
    count = self:_count_batch()
  end
  local rm, rv
  if self.track_running_stats and (self.training or not batch_stats) then rm, rv = self.running_mean, self.running_var end
  return {name = fname, input = input, weight = self.weight, bias = self.bias, running_mean = rm, running_var = rv,
    training = batch_stats, momentum = self.momentum or nil, eps = self.eps, num_batches_tracked = math.tointeger(count),
    save_mean = self._save_mean, save_invstd = self._save_invstd}
end

function BatchNorm:forward(input)
  local args = self:_forward_args(self._name .. ":forward", input)
  args.handle, args.output = self._kernel, self.output
  C.batchnorm_forward(args)
  return self.output
end

--- The gradient tensors of the backward pass: p.grad of each affine parameter that trains (a frozen
-- one, p.requires_grad = false, gets none: the kernel skips it).
function BatchNorm:_grad_fields()
  local w, b = self.weight, self.bias
  return w and w.requires_grad ~= false and w.grad or nil, b and b.requires_grad ~= false and b.grad or nil
end

function BatchNorm:backward(input, grad_output)
  util.check_grad(self._name .. ":backward", grad_output)
  local gi = self.needs_input_grad and self.grad_input or nil
  local gw, gb = self:_grad_fields()
  C.batchnorm_backward{name = self._name .. ":backward", handle = self._kernel, grad_input = gi,
    grad_weight = gw, grad_bias = gb, grad_output = grad_output,
    input = input, weight = self.weight, save_mean = self._save_mean, save_invstd = self._save_invstd}
  return gi
end

function BatchNorm:extra_repr()
  local s = ("%d, eps=%g, momentum=%s"):format(self.num_features, self.eps, tostring(self.momentum or "None"))
  if not self.affine then s = s .. ", affine=false" end
  if not self.track_running_stats then s = s .. ", track_running_stats=false" end
  return s
end

local BatchNorm1d = class("BatchNorm1d", BatchNorm)
function BatchNorm1d:__init(num_features, opts) BatchNorm.__init(self, num_features, opts, "BatchNorm1d", {2, 3}) end

local BatchNorm2d = class("BatchNorm2d", BatchNorm)
function BatchNorm2d:__init(num_features, opts) BatchNorm.__init(self, num_features, opts, "BatchNorm2d", {4}) end

return {BatchNorm1d = BatchNorm1d, BatchNorm2d = BatchNorm2d}
