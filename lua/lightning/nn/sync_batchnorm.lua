--- nn.SyncBatchNorm(num_features, opts): batch normalisation whose training statistics are those of the
-- whole batch, over every process of a data-parallel run (PyTorch's SyncBatchNorm), for (N, C, ...)
-- inputs; the options are BatchNorm's (eps, momentum, affine, track_running_stats).
--   nn.SyncBatchNorm.convert_sync_batchnorm(model)   -- every BatchNorm1d/2d of model becomes one, in place
--                                                     (Trainer{sync_batchnorm = true} does this under "ddp")
-- In training, with more than one process (lightning.distributed), the forward pass adds every process's
-- per-channel sums of x and x^2 and its element count (one all-reduce of float64 sums), normalises with
-- the global mean and variance and updates the running statistics with them; the backward pass adds
-- the sums of dy and dy * (x - mean) likewise before the input gradient. The weight and bias gradients
-- stay this process's part: the strategy's gradient averaging combines them. Otherwise (evaluation,
-- one process) it is BatchNorm. Every process must run the layer's passes in the same order.
local L = require "lightning"
local class = require "lightning.class"
local batchnorm = require "lightning.nn.batchnorm"
local util = require "lightning.nn.util"
local distributed = require "lightning.distributed"
local C = L.core.nn

local BatchNorm = batchnorm.BatchNorm1d.super
local SyncBatchNorm = class("SyncBatchNorm", BatchNorm)

function SyncBatchNorm:__init(num_features, opts)
  BatchNorm.__init(self, num_features, opts, "SyncBatchNorm", {2, 3, 4, 5})
end

--- Whether this pass adds statistics over processes: training, and more than one process running.
function SyncBatchNorm:_reduces_statistics()
  return self.training and distributed.is_initialized() and distributed.world_size() > 1
end

-- The layer's float64 buffer of 2C + 1 sums (reused every pass).
local function sums_of(self)
  local n = 2 * self.num_features + 1
  if not self._sums or #self._sums ~= n then self._sums = L.buffer("float64", n) end
  return self._sums
end

function SyncBatchNorm:forward(input)
  self._reduced_count = nil
  if not self:_reduces_statistics() then return BatchNorm.forward(self, input) end
  local args = self:_forward_args(self._name .. ":forward", input)
  args.handle, args.output, args.sums = self._kernel, self.output, sums_of(self)
  C.batchnorm_statistics(args)
  distributed.all_reduce(args.sums, "sum")
  C.batchnorm_normalize(args)
  self._reduced_count = math.tointeger(args.sums[#args.sums])
  return self.output
end

function SyncBatchNorm:backward(input, grad_output)
  if not self._reduced_count then return BatchNorm.backward(self, input, grad_output) end
  local fname = self._name .. ":backward"
  util.check_grad(fname, grad_output)
  local gi = self.needs_input_grad and self.grad_input or nil
  local args = {name = fname, handle = self._kernel, grad_input = gi, grad_weight = self.weight and self.weight.grad,
    grad_bias = self.bias and self.bias.grad, grad_output = grad_output, input = input, weight = self.weight,
    save_mean = self._save_mean, save_invstd = self._save_invstd, sums = sums_of(self)}
  C.batchnorm_grad_sums(args)
  if gi then   -- (every process skips this alike: needs_input_grad is the model's, not the data's)
    distributed.all_reduce(args.sums, "sum")
    args.count = self._reduced_count
    C.batchnorm_grad_input(args)
  end
  return gi
end

--- Makes every BatchNorm1d and BatchNorm2d of module (itself included) a SyncBatchNorm, keeping its
-- parameters, buffers and names (layers that use it, such as nn.BatchNormReLUMaxPool2d, follow);
-- returns module.
function SyncBatchNorm.convert_sync_batchnorm(module)
  for _, m in ipairs(module:modules()) do
    local mt = getmetatable(m)
    if mt == batchnorm.BatchNorm1d or mt == batchnorm.BatchNorm2d then setmetatable(m, SyncBatchNorm) end
  end
  return module
end

return SyncBatchNorm
