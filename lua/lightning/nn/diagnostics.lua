--- Diagnostics for debugging a network: activation statistics and the gradient-flow report.
local grad_mode = require "lightning.autograd.mode"
local L = require "lightning"
local class = require "lightning.class"
local batchnorm = require "lightning.nn.batchnorm"

local diagnostics = {}

-- Thresholds of the gradient-flow report, as the original project flags them.
diagnostics.VANISHING, diagnostics.EXPLODING = 1e-7, 1e3

--- The default output of debugging text: a line to standard output.
function diagnostics.print_line(line) io.stdout:write(line, "\n") end

--- "[32, 3, 224, 224]"
function diagnostics.shape(t)
  return "[" .. table.concat(t:size(), ", ") .. "]"
end

--- min, max, mean, std of a tensor, and how many elements are exactly zero (dead after a ReLU).
function diagnostics.stats(t)
  t = t:float()  -- a bf16 activation (mixed precision) as float32
  local n = t:numel()
  if n == 0 then return {min = 0 / 0, max = 0 / 0, mean = 0 / 0, std = 0 / 0, zeros = 0, numel = 0} end
  return {min = t:min(), max = t:max(), mean = t:mean(), std = n > 1 and t:std() or 0, zeros = t:eq(0):sum(),
    numel = n}
end

--- Dead units of a batch of activations x (N x ...): the units (for N x C x H x W, each channel, row and
-- column; for N x F, each feature) that are zero for every sample of the batch, as the original
-- project counts "Dead neurons". Returns their number and the number of units (x's size without N).
function diagnostics.dead_units(x)
  x = x:float()
  local n = x:size(1)
  local units = n > 0 and x:numel() // n or 0
  if units == 0 then return 0, 0 end
  local dead = x:max(1):eq(0):cmul(x:min(1):eq(0)):sum()
  return math.tointeger(dead) or dead, units
end

-- Whether m is a BatchNorm layer (BatchNorm1d, BatchNorm2d).
local function is_batchnorm(m)
  return class.is_instance(m, batchnorm.BatchNorm1d.super)
end

--- The names of the biases whose gradient is zero by construction: those of a layer that a BatchNorm
-- follows (the next child in registration order, which is a Sequential's order and the reference
-- model's). BatchNorm subtracts the batch mean, so a constant added before it changes nothing and its
-- gradient is zero up to rounding. Returns a set {name = true}.
function diagnostics.biases_before_batchnorm(model)
  local set = {}
  local function walk(m, prefix)
    if type(m.named_children) ~= "function" then return end
    local children = {}
    for name, child in m:named_children() do children[#children + 1] = {name, child} end
    for i, entry in ipairs(children) do
      local name, child = entry[1], entry[2]
      local after = children[i + 1] and children[i + 1][2]
      if after and is_batchnorm(after) and child.bias ~= nil then set[prefix .. name .. ".bias"] = true end
      walk(child, prefix .. name .. ".")
    end
  end
  walk(model, "")
  return set
end

diagnostics.BEFORE_BATCHNORM_NOTE = "the biases of layers that a BatchNorm follows have a zero gradient by "
  .. "construction (BatchNorm subtracts the batch mean, so they change nothing): not flagged as vanishing"

--- Per parameter: gradient norm, mean |grad|, max |grad|, weight norm, their ratio, and a status ("ok",
-- "vanishing" when the gradient norm is below 1e-7, "exploding" above 1e3 or NaN, "no gradient", and
-- "before batchnorm" for a bias whose gradient is zero by construction, see biases_before_batchnorm).
function diagnostics.gradient_flow(model)
  local rows = {}
  local before_bn = diagnostics.biases_before_batchnorm(model)
  for name, p in model:named_parameters() do
    local row = {name = name, shape = tostring(p:size()), weight_norm = p:norm()}
    if p.grad then
      row.grad_norm = p.grad:norm()
      row.grad_mean_abs = p.grad:numel() > 0 and p.grad:norm(1) / p.grad:numel() or 0
      row.grad_max_abs = p.grad:numel() > 0 and p.grad:norm(math.huge) or 0
      row.ratio = row.weight_norm > 0 and row.grad_norm / row.weight_norm or math.huge
      if row.grad_norm ~= row.grad_norm or row.grad_norm > diagnostics.EXPLODING then row.status = "exploding"
      elseif row.grad_norm < diagnostics.VANISHING then row.status = before_bn[name] and "before batchnorm" or "vanishing"
      else row.status = "ok" end
    else
      row.status = "no gradient"
    end
    rows[#rows + 1] = row
  end
  return rows
end

local function flagged_status(status) return status ~= "ok" and status ~= "before batchnorm" end

--- Prints the gradient-flow report through output (default: standard output), one line per parameter,
-- and returns the rows and the number of flagged parameters.
function diagnostics.print_gradient_flow(model, output)
  output = output or diagnostics.print_line
  local rows = diagnostics.gradient_flow(model)
  local flagged, before_bn = 0, 0
  output(("%-24s %-16s %11s %11s %11s %11s %9s  %s"):format("parameter", "shape", "grad norm", "mean |grad|",
    "max |grad|", "weight norm", "ratio", "status"))
  for _, r in ipairs(rows) do
    local status = r.status == "ok" and "ok" or r.status == "before batchnorm" and "~0 by construction (*)"
      or ("<-- " .. r.status:upper())
    if r.grad_norm then
      output(("%-24s %-16s %11.4e %11.4e %11.4e %11.4e %9.2e  %s"):format(r.name, r.shape, r.grad_norm,
        r.grad_mean_abs, r.grad_max_abs, r.weight_norm, r.ratio, status))
    else
      output(("%-24s %-16s %11s %11s %11s %11.4e %9s  %s"):format(r.name, r.shape, "-", "-", "-", r.weight_norm, "-",
        r.status))
    end
    if flagged_status(r.status) then flagged = flagged + 1 end
    if r.status == "before batchnorm" then before_bn = before_bn + 1 end
  end
  output(("%d of %d parameters flagged (vanishing < %g, exploding > %g)"):format(flagged, #rows,
    diagnostics.VANISHING, diagnostics.EXPLODING))
  if before_bn > 0 then output("(*) " .. diagnostics.BEFORE_BATCHNORM_NOTE) end
  return rows, flagged
end

-- ---- the forward pass report of any network ----

local RULE = ("="):rep(60)
local function fmt(v) return ("%.4f"):format(v == 0 and 0 or v) end   -- (0, not a ReLU's -0.0000)

-- Whether a layer's zeros are dead units (a ReLU's; the original counts "Dead neurons" after each).
local function rectifies(m)
  local name = class.name_of(m)
  return (name:find("ReLU", 1, true) ~= nil and name ~= "LeakyReLU") or m.activation == "relu"
end

-- Whether m is a layer (a module without children), not a container.
local function is_layer(m)
  return type(m) == "table" and type(m.forward) == "function" and type(m._modules) == "table" and #m._modules == 0
end

--- The original's FORWARD PASS DEBUG block for any network: runs run() (which calls root's forward on
-- x) and, as each layer under root (each module without children) returns, prints its output's shape
-- and statistics, and after a ReLU its dead units, in the order the layers run; then the logits (the
-- final output, when it is N x K) and the predicted classes. Layers are named as in root's state_dict
-- ("0 (Conv2d)", "features.3 (ReLU)"). output: a function taking a line. Returns run's results.
function diagnostics.forward_report(root, x, output, run)
  output = output or diagnostics.print_line
  local s = diagnostics.stats(x)
  output(RULE)
  output("FORWARD PASS DEBUG")
  output(RULE)
  output(("Input shape: %s"):format(diagnostics.shape(x)))
  output(("Input stats - min: %s, max: %s, mean: %s"):format(fmt(s.min), fmt(s.max), fmt(s.mean)))
  local saved = {}
  root:_walk(function(prefix, m)
    if not is_layer(m) or saved[m] then return end
    saved[m] = {rawget(m, "forward")}   -- an instance's own forward, or nil for its class's
    local forward, name = m.forward, prefix:sub(1, -2)
    local label = name == "" and class.name_of(m) or ("%s (%s)"):format(name, class.name_of(m))
    m.forward = function(self, ...)
      local out = forward(self, ...)
      if L.is_tensor(out) then
        local st = diagnostics.stats(out)
        output(("After %s: %s"):format(label, diagnostics.shape(out)))
        output(("  Stats - min: %s, max: %s, mean: %s, std: %s"):format(fmt(st.min), fmt(st.max), fmt(st.mean),
          fmt(st.std)))
        if rectifies(self) and out:dim() >= 2 then output(("  Dead neurons: %d / %d"):format(diagnostics.dead_units(out))) end
      end
      return out
    end
  end)
  local results = table.pack(pcall(run))
  for m, old in pairs(saved) do rawset(m, "forward", old[1]) end
  if not results[1] then error(results[2], 0) end
  local logits = results[2]
  if L.is_tensor(logits) and logits:dim() == 2 then
    local st = diagnostics.stats(logits)
    output("")
    output(("Final logits: %s"):format(diagnostics.shape(logits)))
    output(("  Stats - min: %s, max: %s, mean: %s, std: %s"):format(fmt(st.min), fmt(st.max), fmt(st.mean), fmt(st.std)))
    local preds, shown = logits:argmax(2), {}
    for i = 1, math.min(preds:size(1), 16) do shown[i] = ("%d"):format(preds[i]) end
    output(("Predictions (1-based classes): [%s%s]"):format(table.concat(shown, ", "), preds:size(1) > 16 and ", ..." or ""))
  end
  output(RULE)
  return table.unpack(results, 2, results.n)
end

-- Statistics of weights, gradients and activations are plain numbers, never recorded for autograd
-- (a parameter requires grad, and a recorded reduction would give a tensor).
for _, name in ipairs {"stats", "dead_units", "biases_before_batchnorm", "gradient_flow"} do
  local fn = diagnostics[name]
  diagnostics[name] = function(...) return grad_mode.with_grad_enabled(false, fn, ...) end
end

return diagnostics
