--- Flat parameters: a module's parameters in one contiguous tensor and their gradients in another,
-- every parameter p and its p.grad a view into them (Module:flatten_parameters). The tensors keep
-- their identity (Tensor:set_ retargets each userdata), so optimizers, their state and state_dict()
-- work as before; an all-reduce of the gradients or their global norm is then one call over one buffer.
--   local flat_params, flat_grads = model:flatten_parameters()
--   flat_params.grad == flat_grads    -- so {flat_params} is a parameter list for clip_grad_norm
-- Values are preserved. A parameter registered later, or a gradient replaced (zero_grad(true) sets
-- p.grad = nil), is outside the buffers: flat.flat_of then answers nil until the module is flattened again.
local L = require "lightning"
local options = require "lightning.util.options"
local flat_record = require "lightning.util.flat_record"

local flat = {}

--- The existing flattening of exactly these parameters (in any order) with their gradients still the
-- views it made, or nil (util/flat_record.lua). Allocates nothing: clipping asks at every step.
flat.flat_of = flat_record.of

--- The gradients of params as a list: {the flat gradient} when they are flat (one pass over one buffer),
-- else each p.grad there is.
function flat.gradients(params)
  local rec = flat.flat_of(params)
  if rec then return {rec.flat_grads} end
  local grads = {}
  for _, p in ipairs(params) do
    if p.grad then grads[#grads + 1] = p.grad end
  end
  return grads
end

-- Makes every parameter of rec and its gradient a view of its place in the flat buffers; copy: their
-- values are copied there first.
local function point_at_views(rec, copy)
  local offset = 0
  for i, p in ipairs(rec.params) do
    local n, g = p:numel(), rec.grads[i]
    if n > 0 then
      local pv = rec.flat_params:narrow(1, offset + 1, n):view(p:size())
      local gv = rec.flat_grads:narrow(1, offset + 1, n):view(p:size())
      if copy then
        pv:copy(p)
        gv:copy(g)
      end
      p:set_(pv)
      g:set_(gv)
    end
    offset = offset + n
  end
end

--- Moves the flat buffers of params (when they are flat) to device, and every parameter and gradient
-- with them, still views of the buffers (Module:to: moved one by one they would leave the buffers);
-- returns whether params were flat.
function flat.move(params, device)
  local rec = flat.flat_of(params)
  if not rec then return false end
  rec.flat_params:_move_to_(device)
  rec.flat_grads:_move_to_(device)
  point_at_views(rec, false)
  return true
end

--- Moves params (a list of tensors with gradients p.grad) into two new contiguous tensors, on the
-- parameters' device; returns them (flat_params, whose .grad is flat_grads). Already flat params give
-- their existing buffers.
function flat.flatten(params, fname)
  local rec = flat.flat_of(params)
  if rec then return rec.flat_params, rec.flat_grads end
  local total, seen = 0, {}
  for i, p in ipairs(params) do
    if not L.is_tensor(p) then options.fail(fname, "parameter %d must be a tensor, got %s", i, options.describe(p)) end
    if seen[p] then options.fail(fname, "parameter %d appears twice in the parameter list", i) end
    seen[p] = true
    local g = p.grad
    if not L.is_tensor(g) or g:numel() ~= p:numel() then
      options.fail(fname, "parameter %d needs a gradient tensor p.grad of its size, got %s", i, options.describe(g))
    end
    total = total + p:numel()
  end
  local device = params[1] and params[1]:device() or "cpu"
  local flat_params, flat_grads = L.empty(total):to(device), L.empty(total):to(device)
  rec = {params = {}, grads = {}, index = {}, flat_params = flat_params, flat_grads = flat_grads, mark = {}, stamp = 0}
  for i, p in ipairs(params) do
    rec.params[i], rec.grads[i], rec.index[p], rec.mark[p] = p, p.grad, i, 0
  end
  flat_record.register(rec)
  point_at_views(rec, true)
  flat_params.grad = flat_grads
  return flat_params, flat_grads
end

return flat
