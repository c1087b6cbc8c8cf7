--- lightning.nn: layers, containers and losses with PyTorch's names and Torch7's forward/backward
-- protocol (see module.lua). Kernels are in C (fronts in csrc/core/nn/, CPU implementations in csrc/core/cpu/).
local nn = {}

nn.Module = require "lightning.nn.module"
nn.Linear = require "lightning.nn.linear"
nn.Conv2d = require "lightning.nn.conv"
nn.Dropout = require "lightning.nn.dropout"
nn.BatchNormReLUMaxPool2d = require "lightning.nn.fused"
nn.SyncBatchNorm = require "lightning.nn.sync_batchnorm"
nn.backward_hook = require "lightning.nn.backward_hook"   -- (a container reports each child's backward pass)
nn.BatchNormAct2d = require "lightning.nn.batchnorm_act"
nn.MulConstant = require "lightning.nn.mul_constant"
nn.init = require "lightning.nn.initializers"   -- dirac_, whitening_, patch_covariance

local function merge(t) for k, v in pairs(t) do nn[k] = v end end
merge(require "lightning.nn.batchnorm")
merge(require "lightning.nn.activation")
merge(require "lightning.nn.pooling")
merge(require "lightning.nn.shape")
merge(require "lightning.nn.containers")
merge(require "lightning.nn.loss")

local diagnostics = require "lightning.nn.diagnostics"
nn.gradient_flow = diagnostics.gradient_flow
nn.print_gradient_flow = diagnostics.print_gradient_flow

return nn
