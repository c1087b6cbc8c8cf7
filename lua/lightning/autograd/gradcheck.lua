--- L.autograd.gradcheck(fn, inputs[, opts]): compares the gradients autograd computes for fn with
-- central finite differences, as torch.autograd.gradcheck. fn(...) takes the inputs (tensors, and
-- other values passed through) and returns a tensor; the check reduces it to the number
-- s = sum(out * w) with fixed random weights w, so every output element counts, and compares ds/dx
-- for every element of every input tensor. Tensors are float32: the perturbed outputs are summed in
-- double precision, eps defaults to 3e-3 and the tolerance to |numeric - analytic| <= atol + rtol |numeric|
-- with atol = 1e-3, rtol = 1e-2. opts: eps, atol, rtol, raise (default true: an error naming the worst
-- element; false: returns ok, report).
-- Returns true (and the report: {worst = {input, index, numeric, analytic, error}, checked = n}).
local core = require "lightning.core"
local raw = require "lightning.autograd.raw"
local mode = require "lightning.autograd.mode"

local function flat_index_to_text(t, k)
  local index, rest = {}, k - 1
  for d = t:dim(), 1, -1 do
    local s = t:size(d)
    index[d] = s > 0 and rest % s + 1 or 1
    rest = s > 0 and rest // s or 0
  end
  return "[" .. table.concat(index, ", ") .. "]"
end

-- fn's output reduced to one number with the check's weights, unrecorded.
local function weighted_sum(fn, inputs, n, w)
  return raw.sum(raw.__mul(fn(table.unpack(inputs, 1, n)), w))
end

return function(fn, inputs, opts)
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 3e-3, opts.atol or 1e-3, opts.rtol or 1e-2
  if type(fn) ~= "function" then error("autograd.gradcheck: argument 1 must be a function", 2) end
  if type(inputs) ~= "table" then error("autograd.gradcheck: argument 2 must be a list of inputs", 2) end
  local n = #inputs
  local leaves, before = {}, {}
  for i = 1, n do
    local x = inputs[i]
    if core.is_tensor(x) then
      if x.grad_fn then error(("autograd.gradcheck: input %d was made by %s: pass leaf tensors (x:detach())")
        :format(i, x.grad_fn.name), 2) end
      leaves[i] = x
      before[i] = {x.requires_grad, x.grad}
      x.requires_grad, x.grad = true, nil
    end
  end
  local out = fn(table.unpack(inputs, 1, n))
  if not core.is_tensor(out) then error("autograd.gradcheck: fn must return a tensor, got " .. type(out), 2) end
  if out.requires_grad ~= true then
    error("autograd.gradcheck: fn's result does not depend on any input through recorded operations", 2)
  end
  local w = raw.uniform(core.empty(out:size()), 0.5, 1.5)
  out:backward(w)

  local worst, checked = nil, 0
  for i = 1, n do
    local x = leaves[i]
    if x then
      local analytic = x.grad and raw.contiguous(x.grad) or raw.L_zeros(x:size())
      local flat_a = raw.reshape(analytic, {x:numel()})
      -- perturb a contiguous copy, then write it back: x may be a view
      local work = raw.clone(x)
      local flat = raw.reshape(work, {x:numel()})
      for k = 1, x:numel() do
        local v = flat[k]
        local function at(value)
          flat[k] = value
          raw.copy(x, work)
          return mode.no_grad(weighted_sum, fn, inputs, n, w)
        end
        local numeric = (at(v + eps) - at(v - eps)) / (2 * eps)
        flat[k] = v
        raw.copy(x, work)
        local a = flat_a[k]
        local err = math.abs(numeric - a)
        local excess = err - (atol + rtol * math.abs(numeric))
        checked = checked + 1
        if not worst or excess > worst.excess then
          worst = {input = i, index = flat_index_to_text(x, k), numeric = numeric, analytic = a, error = err,
            excess = excess}
        end
      end
    end
  end
  for i, x in pairs(leaves) do x.requires_grad, x.grad = before[i][1], before[i][2] end
  local ok = worst == nil or worst.excess <= 0 and worst.analytic == worst.analytic
  local report = {worst = worst, checked = checked}
  if not ok and opts.raise ~= false then
    error(("autograd.gradcheck: input %d element %s: numeric gradient %.6g, autograd %.6g (difference %.3g > " ..
      "atol %g + rtol %g x |numeric|)"):format(worst.input, worst.index, worst.numeric, worst.analytic, worst.error,
      atol, rtol), 2)
  end
  return ok, report
end
