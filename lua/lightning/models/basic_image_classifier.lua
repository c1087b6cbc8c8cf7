--- BasicImageClassifier: the reference network of the original project (model.py).
--   4 blocks conv(3x3, padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2): in -> 32 -> 64 -> 128 -> 256
--   fc1 (flat -> 512) -> BatchNorm1d -> ReLU -> dropout, fc2 (512 -> 256) -> BatchNorm1d -> ReLU -> dropout,
--   fc3 (256 -> classes)
-- Parameter and buffer names are PyTorch's (conv1.weight, bn1.running_mean, fc1.weight, bn_fc1.bias, ...),
-- so weights move to and from the PyTorch model with L.save_weights / L.load_weights.
--   local model = L.models.BasicImageClassifier{num_classes = 10, in_channels = 3, image_size = 32,
--                                               dropout_rate = 0.5}
--   local logits = model:forward(x)              -- x: N x in_channels x image_size x image_size
--   model:forward(x, {debug = true})              -- prints the original's FORWARD PASS DEBUG block
--   model:backward(x, grad_logits)                -- accumulates parameter gradients
--   local model = L.models.BasicImageClassifier.load_from_checkpoint("outputs/image_classifier/version_0/checkpoints/last.safetensors")
local L = require "lightning"
local class = require "lightning.class"
local nn = require "lightning.nn"
local util = require "lightning.nn.util"
local backward_hook = require "lightning.nn.backward_hook"
local diagnostics = require "lightning.nn.diagnostics"
local options = require "lightning.util.options"
local ImageClassifier = require "lightning.models.image_classifier"

local BasicImageClassifier = class("BasicImageClassifier", ImageClassifier)

BasicImageClassifier.defaults = {num_classes = 10, in_channels = 3, image_size = 32, dropout_rate = 0.5}
local CHANNELS = {32, 64, 128, 256}

--- Network options: num_classes, in_channels, image_size (divisible by 16), dropout_rate. Options the
-- parent class understands (learning rate, optimizer, debug, ...) pass through to it.
function BasicImageClassifier:__init(opts)
  local o, name = ImageClassifier.__init(self, opts), class.name_of(self)  -- the checked options
  self.num_classes = util.positive_int(name, "num_classes", o.num_classes)
  self.in_channels = util.positive_int(name, "in_channels", o.in_channels)
  self.image_size = util.positive_int(name, "image_size", o.image_size)
  if self.image_size % 16 ~= 0 then
    options.fail(name, "image_size must be a multiple of 16 (four 2x2 poolings), got %d", self.image_size)
  end
  options.check_value(name, "", "dropout_rate", {kind = "number", min = 0, below = 1}, o.dropout_rate)
  self.dropout_rate = o.dropout_rate

  -- registration order = PyTorch's state_dict order
  local cin = self.in_channels
  for i, cout in ipairs(CHANNELS) do
    self:add_module("conv" .. i, nn.Conv2d(cin, cout, 3, {padding = 1}))
    self:add_module("bn" .. i, nn.BatchNorm2d(cout))
    cin = cout
  end
  self.flat_features = 256 * (self.image_size // 16) ^ 2 // 1
  self:add_module("fc1", nn.Linear(self.flat_features, 512))
  self:add_module("bn_fc1", nn.BatchNorm1d(512))
  self:add_module("fc2", nn.Linear(512, 256))
  self:add_module("bn_fc2", nn.BatchNorm1d(256))
  self:add_module("fc3", nn.Linear(256, self.num_classes))
  self:add_module("dropout", nn.Dropout(self.dropout_rate))
  -- stateless pieces, one per use (each keeps what its backward pass needs); ReLU and 2x2 max-pooling
  -- run as one layer (relu(max(x)) = max(relu(x)), nn.ReLUMaxPool2d)
  for i = 1, 4 do self:add_module("relu_pool" .. i, nn.ReLUMaxPool2d(2)) end
  self:add_module("flatten", nn.Flatten())
  self:add_module("relu_fc1", nn.ReLU({inplace = true}))
  self:add_module("relu_fc2", nn.ReLU({inplace = true}))
  self:add_module("dropout_fc2", nn.Dropout(self.dropout_rate))
  -- input images need no gradient: conv1 skips computing it (set true to get d loss / d input)
  self.needs_input_grad = false
  self._steps = self:_pipeline(false)
  self._fused_steps = self:_pipeline(true)
end

-- The forward pass as a list of {module, label}: labels name the points the debug output reports.
-- fused: each block's BatchNorm, ReLU and pooling run as one kernel (nn.BatchNormReLUMaxPool2d over
-- bn1..bn4's parameters; not registered as children, so names and state are those of the layers). The
-- debug report needs the BatchNorm's full-size output, so it runs the layers one by one.
function BasicImageClassifier:_pipeline(fused)
  local steps = {}
  local function add(m, label) steps[#steps + 1] = {m, label} end
  for i = 1, 4 do
    add(self["conv" .. i], "conv")
    if fused then
      add(nn.BatchNormReLUMaxPool2d(self["bn" .. i]), nil)
    else
      add(self["bn" .. i], "bn_relu")   -- reported after the ReLU, which the pooling layer applies
      add(self["relu_pool" .. i], "pool")
    end
  end
  add(self.flatten, "flatten")
  add(self.fc1, "fc")
  add(self.bn_fc1, nil)
  add(self.relu_fc1, "bn_relu")
  add(self.dropout, nil)
  add(self.fc2, "fc")
  add(self.bn_fc2, nil)
  add(self.relu_fc2, "bn_relu")
  add(self.dropout_fc2, nil)
  add(self.fc3, "logits")
  return steps
end

local function fmt(v) return ("%.4f"):format(v == 0 and 0 or v) end   -- (0, not a ReLU's -0.0000)

-- The debug report of one point of the forward pass, in the original's words.
local function report(out, label, index, x)
  if label == "bn_relu" and index.fc == 0 then x = x:float():clone():clamp(0) end  -- the fused ReLU's output
  local s = diagnostics.stats(x)
  if label == "conv" then
    out("")
    out(("After Conv%d: %s"):format(index.conv, diagnostics.shape(x)))
    out(("  Stats - min: %s, max: %s, mean: %s"):format(fmt(s.min), fmt(s.max), fmt(s.mean)))
  elseif label == "bn_relu" then
    local name = index.fc > 0 and ("BN_FC" .. index.fc) or ("BN" .. index.conv)
    out(("After %s+ReLU - mean: %s, std: %s"):format(name, fmt(s.mean), fmt(s.std)))
    out(("  Dead neurons: %d / %d"):format(diagnostics.dead_units(x)))
  elseif label == "pool" then
    out(("After Pool%d: %s"):format(index.conv, diagnostics.shape(x)))
  elseif label == "flatten" then
    out("")
    out(("After Flatten: %s"):format(diagnostics.shape(x)))
  elseif label == "fc" then
    out("")
    out(("After FC%d: %s"):format(index.fc, diagnostics.shape(x)))
    out(("  Stats - min: %s, max: %s, mean: %s, std: %s"):format(fmt(s.min), fmt(s.max), fmt(s.mean), fmt(s.std)))
  elseif label == "logits" then
    out("")
    out(("Final logits: %s"):format(diagnostics.shape(x)))
    out(("  Stats - min: %s, max: %s, mean: %s, std: %s"):format(fmt(s.min), fmt(s.max), fmt(s.mean), fmt(s.std)))
    local preds = x:argmax(2)
    local shown = {}
    for i = 1, math.min(preds:size(1), 16) do shown[i] = ("%d"):format(preds[i]) end
    out(("Predictions (1-based classes): [%s%s]"):format(table.concat(shown, ", "), preds:size(1) > 16 and ", ..." or ""))
    out(("="):rep(60))
  end
end

-- Its forward makes the FORWARD PASS DEBUG report itself, in the original's words (ImageClassifier
-- reports the layers of other networks).
BasicImageClassifier.reports_forward_debug = true

--- The logits for x (N x in_channels x size x size). opts.debug prints the layer-by-layer report through
-- opts.output or self.debug_output (a function taking one line; default: standard output).
-- opts.fused = false runs each block's BatchNorm, ReLU and pooling as separate layers (as debug does),
-- so that each has its own output (the model summary's sizes).
function BasicImageClassifier:forward(x, opts)
  util.check_input("BasicImageClassifier:forward", x, {4})
  if x:size(2) ~= self.in_channels or x:size(3) ~= self.image_size or x:size(4) ~= self.image_size then
    error(("BasicImageClassifier:forward: expected N x %d x %d x %d images, got %s"):format(self.in_channels,
      self.image_size, self.image_size, tostring(x:size())), 2)
  end
  local debug = opts and opts.debug
  local out = opts and opts.output or self.debug_output or diagnostics.print_line
  if debug then
    local s = diagnostics.stats(x)
    out(("="):rep(60))
    out("FORWARD PASS DEBUG")
    out(("="):rep(60))
    out(("Input shape: %s"):format(diagnostics.shape(x)))
    out(("Input stats - min: %s, max: %s, mean: %s"):format(fmt(s.min), fmt(s.max), fmt(s.mean)))
  end
  local index = {conv = 0, fc = 0}
  local h = x
  self._active_steps = (debug or (opts and opts.fused == false)) and self._steps or self._fused_steps
  for _, step in ipairs(self._active_steps) do
    local m, label = step[1], step[2]
    h = m:forward(h)
    if label == "conv" then index.conv = index.conv + 1 elseif label == "fc" then index.fc = index.fc + 1 end
    if debug and label then report(out, label, index, h) end
  end
  self.output = h
  return h
end

--- Backpropagates grad_output (N x classes) through the network, accumulating parameter gradients.
-- Returns the gradient with respect to x when self.needs_input_grad is true, nil otherwise.
function BasicImageClassifier:backward(x, grad_output)
  util.check_grad("BasicImageClassifier:backward", grad_output)
  local steps = self._active_steps or self._fused_steps
  steps[1][1].needs_input_grad = self.needs_input_grad
  local g = grad_output
  for i = #steps, 1, -1 do
    local input = i > 1 and steps[i - 1][1].output or x
    g = steps[i][1]:backward(input, g)
    backward_hook.done(steps[i][1])
  end
  self.grad_input = g
  return g
end

--- BasicImageClassifier.load_from_checkpoint(path[, overrides]): the model of a training checkpoint
-- (hyper-parameters from its metadata, weights loaded); see lightning.models.from_checkpoint.
BasicImageClassifier.load_from_checkpoint = require("lightning.models.from_checkpoint").bind(BasicImageClassifier)

function BasicImageClassifier:extra_repr()
  return ("num_classes=%d, in_channels=%d, image_size=%d, dropout_rate=%g"):format(self.num_classes,
    self.in_channels, self.image_size, self.dropout_rate)
end

return BasicImageClassifier
