--- Which flattening a parameter belongs to (Module:flatten_parameters, nn/flat.lua, makes them): a
-- registry of plain tables, below nn and optim, so that the optimizers' flat step (optim/flat_step.lua)
-- finds a flattening without depending on the layers.
--   rec = {params = list, grads = list, index = {[p] = i}, flat_params = tensor, flat_grads = tensor,
--          mark = {}, stamp = n}
local flat_record = {}

-- parameter tensor -> the flattening it belongs to (weak: a dropped model takes its record with it)
local owner = setmetatable({}, {__mode = "k"})

--- Records rec as the flattening of each of its parameters.
function flat_record.register(rec)
  for _, p in ipairs(rec.params) do owner[p] = rec end
end

--- The existing flattening of exactly these parameters (in any order) with their gradients still the
-- views it made, or nil. Allocates nothing: clipping and the optimizers ask at every step.
function flat_record.of(params)
  local first = params[1]
  local rec = first ~= nil and owner[first]
  if not rec or #params ~= #rec.params then return nil end
  rec.stamp = rec.stamp + 1
  local stamp = rec.stamp
  for _, p in ipairs(params) do
    local i = owner[p] == rec and rec.index[p]
    if not i or rec.mark[p] == stamp or p.grad ~= rec.grads[i] then return nil end
    rec.mark[p] = stamp
  end
  return rec
end

return flat_record
