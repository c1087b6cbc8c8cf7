--- What the operations' derivatives share: sizes as plain lists, and the reduction of a broadcast
-- gradient back to an input's size.
local raw = require "lightning.autograd.raw"

local common = {}

--- The sizes of t as a plain list.
function common.sizes(t)
  local s = {}
  for d = 1, t:dim() do s[d] = t:size(d) end
  return s
end

--- g summed over the dimensions that broadcasting added or stretched, to the sizes given (the
-- gradient of an input that was broadcast). g itself when nothing was broadcast.
function common.sum_to(g, sizes)
  local r = g
  for _ = 1, r:dim() - #sizes do r = raw.sum(r, 1) end
  for d = 1, #sizes do
    if sizes[d] == 1 and r:size(d) ~= 1 then r = raw.sum(r, d, true) end
  end
  return r
end

--- A tensor of the sizes given holding zeros.
function common.zeros(sizes) return raw.L_zeros(sizes) end

--- A dimension as a positive index (negative ones count from the end).
function common.dim_index(d, ndim)
  if d < 0 then return ndim + 1 + d end
  return d
end

return common
