--- GradScaler: torch.amp.GradScaler, the dynamic loss scaler of fp16 training ("16-mixed"). fp16 stops
-- at 65504 and loses values below about 6e-8, so small gradients would vanish on their way back through
-- fp16 activations: the loss is multiplied by a large scale before the backward pass, and the gradients
-- divided by it before the optimizer step. A step whose gradients hold an inf or NaN (the scale was too
-- large) is skipped and the scale halves; after growth_interval clean steps it doubles.
--   local scaler = L.amp.GradScaler{init_scale = 2^16, growth_factor = 2, backoff_factor = 0.5,
--                                   growth_interval = 2000, enabled = true}
--   scaler:scale(loss):backward()      (or criterion:backward(output, target, scaler:loss_gradient(output)))
--   scaler:unscale_(optimizer)         (optional: before clipping, so it sees the true gradients)
--   scaler:step(optimizer)             optimizer:step() unless the gradients overflowed
--   scaler:update()
--   scaler:get_scale(), scaler:state_dict(), scaler:load_state_dict(state), scaler:is_enabled()
-- The scale, the growth tracker and the overflow flag are one-element tensors on the loss's device, and
-- the check-and-unscale and the update run there (lightning.optim.amp_unscale, amp_update_scale): only
-- step() reads one number back, to decide whether to skip. A disabled scaler passes everything through.
local L = require "lightning"
local class = require "lightning.class"
local flat = require "lightning.nn.flat"
local options = require "lightning.util.options"

local C = L.core.optim

local GradScaler = class("GradScaler")

GradScaler.option_specs = {
  init_scale = {kind = "number", above = 0, finite = true, default = 2.0 ^ 16},
  growth_factor = {kind = "number", above = 1, finite = true, default = 2.0},
  backoff_factor = {kind = "number", above = 0, below = 1, default = 0.5},
  growth_interval = {kind = "integer", min = 1, max = 2 ^ 24, default = 2000},
  enabled = {kind = "boolean", default = true},
}

-- An optimizer's stage between two update() calls, as PyTorch's OptState.
local READY, UNSCALED, STEPPED = "ready", "unscaled", "stepped"

function GradScaler:__init(opts)
  local o = options.check("GradScaler", opts, self.option_specs)
  self._enabled = o.enabled
  self._init_scale, self._growth_factor, self._backoff_factor = o.init_scale, o.growth_factor, o.backoff_factor
  self._growth_interval = o.growth_interval
  self._init_growth_tracker = 0
  self._scale, self._growth_tracker = nil, nil   -- made on the first scale(), where the loss is
  self._per_optimizer = setmetatable({}, {__mode = "k"})   -- optimizer -> {stage, found_inf}
end

function GradScaler:is_enabled() return self._enabled end

--- Whether scale() or loss_gradient() has made the scale (on their tensor's device).
function GradScaler:has_scale() return self._scale ~= nil end

-- The scale and the tracker as tensors on `like`'s device (made from the initial values once).
local function lazy_init(self, like)
  if self._scale then return end
  self._scale = like:new_ones({1}):mul(self._init_scale)
  self._growth_tracker = like:new_zeros({1}):add(self._init_growth_tracker)
end

local function check_tensor(fname, what, v)
  if not L.is_tensor(v) then options.fail(fname, "%s must be a tensor, got %s", what, options.describe(v)) end
end

--- outputs multiplied by the scale: a tensor (recorded by autograd when it is), or a table of them.
function GradScaler:scale(outputs)
  if not self._enabled then return outputs end
  if type(outputs) == "table" and not L.is_tensor(outputs) then
    local scaled = {}
    for k, v in pairs(outputs) do scaled[k] = self:scale(v) end
    return scaled
  end
  check_tensor("GradScaler:scale", "outputs", outputs)
  lazy_init(self, outputs)
  return outputs * self._scale
end

--- The gradient a backward pass starts from: the scale, a one-element tensor where `like` is (for
-- criterion:backward(output, target, grad) and backward_step's grad_loss); nil when disabled (1).
function GradScaler:loss_gradient(like)
  if not self._enabled then return nil end
  check_tensor("GradScaler:loss_gradient", "like", like)
  lazy_init(self, like)
  return self._scale
end

local function state_of(self, optimizer)
  local st = self._per_optimizer[optimizer]
  if not st then
    st = {stage = READY}
    self._per_optimizer[optimizer] = st
  end
  return st
end

-- The gradients of the optimizer's parameters: the flat gradient when they are flattened.
local function grads_of(optimizer)
  local params = {}
  for _, group in ipairs(optimizer.param_groups or {}) do
    for _, p in ipairs(group.params or {}) do params[#params + 1] = p end
  end
  return flat.gradients(params)
end

--- Divides the optimizer's gradients by the scale, in place, and notes whether one held an inf or NaN.
-- Once per optimizer between two update() calls, and before step().
function GradScaler:unscale_(optimizer)
  if not self._enabled then return end
  local fname = "GradScaler:unscale_"
  if type(optimizer) ~= "table" then options.fail(fname, "expected an optimizer, got %s", options.describe(optimizer)) end
  local st = state_of(self, optimizer)
  if st.stage == UNSCALED then
    options.fail(fname, "unscale_() has already been called on this optimizer since the last update()")
  elseif st.stage == STEPPED then
    options.fail(fname, "unscale_() is being called after step()")
  end
  if not self._scale then options.fail(fname, "call scale() (or loss_gradient()) before unscaling: there is no scale yet") end
  local inv_scale = self._scale:new_ones({1}):div(self._scale)   -- computed where the scale is
  st.found_inf = self._scale:new_zeros({1})
  C.amp_unscale(grads_of(optimizer), inv_scale, st.found_inf)
  st.stage = UNSCALED
end

--- Runs take(...) (the optimizer's step) unless the unscaled gradients held an inf or NaN, unscaling
-- first if unscale_ was not called; returns what take returned (nil for a skipped step). The one place
-- the host waits for the device.
function GradScaler:step_with(optimizer, take, ...)
  if not self._enabled then return take(...) end
  local st = state_of(self, optimizer)
  if st.stage == STEPPED then options.fail("GradScaler:step", "step() has already been called since the last update()") end
  if st.stage == READY then self:unscale_(optimizer) end
  st.stage = STEPPED
  if st.found_inf:item() ~= 0 then return nil end
  return take(...)
end

--- optimizer:step(...) unless the gradients overflowed (see step_with).
function GradScaler:step(optimizer, ...)
  if type(optimizer) ~= "table" or type(optimizer.step) ~= "function" then
    options.fail("GradScaler:step", "expected an optimizer, got %s", options.describe(optimizer))
  end
  return self:step_with(optimizer, function(...) return optimizer:step(...) end, ...)
end

--- The scale for the next step: new_scale (a number, or a one-element tensor) when given; otherwise
-- backed off when a step of this iteration found an inf, grown after growth_interval clean steps.
function GradScaler:update(new_scale)
  if not self._enabled then return end
  local fname = "GradScaler:update"
  if not self._scale then options.fail(fname, "call scale() before update(): there is no scale yet") end
  if new_scale ~= nil then
    if type(new_scale) == "number" then
      if not (new_scale > 0 and new_scale < math.huge) then
        options.fail(fname, "new_scale must be a positive finite number, got %s", options.describe(new_scale))
      end
      self._scale:fill(new_scale)
    else
      check_tensor(fname, "new_scale", new_scale)
      if new_scale:numel() ~= 1 then options.fail(fname, "new_scale must have one element, got %d", new_scale:numel()) end
      self._scale:copy(new_scale:view(1))
    end
  else
    local found = self._scale:new_zeros({1})
    for _, st in pairs(self._per_optimizer) do
      if st.found_inf then found:add(st.found_inf) end
    end
    C.amp_update_scale(self._scale, self._growth_tracker, found, self._growth_factor, self._backoff_factor,
      self._growth_interval)
  end
  self._per_optimizer = setmetatable({}, {__mode = "k"})
end

--- The current scale as a number (reads it back from a GPU); 1 when disabled.
function GradScaler:get_scale()
  if not self._enabled then return 1.0 end
  return self._scale and self._scale:item() or self._init_scale
end

function GradScaler:get_growth_factor() return self._growth_factor end
function GradScaler:get_backoff_factor() return self._backoff_factor end
function GradScaler:get_growth_interval() return self._growth_interval end
local function setter(name)
  return function(self, v)
    self["_" .. name] = options.check_value("GradScaler:set_" .. name, "", name, self.option_specs[name], v)
  end
end
GradScaler.set_growth_factor = setter("growth_factor")
GradScaler.set_backoff_factor = setter("backoff_factor")
GradScaler.set_growth_interval = setter("growth_interval")

--- PyTorch's entries: scale, growth_factor, backoff_factor, growth_interval, _growth_tracker (numbers);
-- empty when disabled.
function GradScaler:state_dict()
  if not self._enabled then return {} end
  return {scale = self:get_scale(), growth_factor = self._growth_factor, backoff_factor = self._backoff_factor,
          growth_interval = self._growth_interval,
          _growth_tracker = self._growth_tracker and math.tointeger(self._growth_tracker:item()) or
            self._init_growth_tracker}
end

local STATE_ENTRIES = {scale = true, growth_factor = true, backoff_factor = true, growth_interval = true,
                       _growth_tracker = true}

-- (a count read back from JSON may come as a float)
local function as_integer(v)
  return math.type(v) == "float" and math.tointeger(v) or v
end

function GradScaler:load_state_dict(state)
  local fname = "GradScaler:load_state_dict"
  if not self._enabled then options.fail(fname, "this GradScaler is disabled: it has no state to load") end
  if type(state) ~= "table" then options.fail(fname, "expected a table, got %s", options.describe(state)) end
  if next(state) == nil then
    options.fail(fname, "the state is empty, possibly because it was saved from a disabled GradScaler")
  end
  options.check_entries(fname, "", state, STATE_ENTRIES, "GradScaler")
  local specs = self.option_specs
  local init_scale = options.check_value(fname, "", "scale", specs.init_scale, state.scale)
  self._growth_factor = options.check_value(fname, "", "growth_factor", specs.growth_factor, state.growth_factor)
  self._backoff_factor = options.check_value(fname, "", "backoff_factor", specs.backoff_factor, state.backoff_factor)
  self._growth_interval = options.check_value(fname, "", "growth_interval", specs.growth_interval,
    as_integer(state.growth_interval))
  local tracker = options.check_value(fname, "", "_growth_tracker", {kind = "integer", min = 0, max = 2 ^ 24},
    as_integer(state._growth_tracker))
  self._init_scale, self._init_growth_tracker = init_scale, tracker
  if self._scale then
    self._scale:fill(init_scale)
    self._growth_tracker:fill(tracker)
  end
end

return GradScaler
