--- "Did you mean": the known name closest to a misspelt one.
--   local closest = require "lightning.util.closest"
--   closest.name("max_epoch", {max_epochs = true, min_epochs = true})   --> "max_epochs"
local closest = {}

--- Edit distance between two strings: insertions, deletions, substitutions and swaps of two
-- neighbouring letters count one each (optimal string alignment), so "bais" is one edit from "bias".
function closest.distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = {[0] = i} end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local best = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        best = math.min(best, d[i - 2][j - 2] + 1)
      end
      d[i][j] = best
    end
  end
  return d[#a][#b]
end

--- The name among the keys of `known` closest to `name` (within max_distance edits, default 3; ties go
-- to the first in alphabetical order), or nil.
function closest.name(name, known, max_distance)
  if type(name) ~= "string" then return nil end
  local best, best_d = nil, (max_distance or 3) + 1
  for candidate in pairs(known) do
    if type(candidate) == "string" then
      local d = closest.distance(name, candidate)
      if d < best_d or (d == best_d and best and candidate < best) then best, best_d = candidate, d end
    end
  end
  return best
end

--- A "did you mean" for a misspelt name: the closest known name within one edit per three letters
-- (at least one, at most three), so that short names get no far-fetched suggestion ("eps" is no "lr").
function closest.suggestion(name, known)
  if type(name) ~= "string" then return nil end
  return closest.name(name, known, math.max(1, math.min(3, #name // 3)))
end

return closest
