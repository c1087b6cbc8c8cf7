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

local function words(name)
  local list = {}
  for w in name:gmatch("[^_]+") do list[#list + 1] = w end
  return list
end

-- Whether a and b have as many words and each word of one begins the other's at the same place, in
-- at least two letters ("val_acc" and "val_accuracy").
local function abbreviates(a, b)
  local wa, wb = words(a), words(b)
  if #wa ~= #wb or #wa == 0 then return false end
  for i = 1, #wa do
    local x, y = wa[i], wb[i]
    if math.min(#x, #y) < 2 or (x:sub(1, #y) ~= y and y:sub(1, #x) ~= x) then return false end
  end
  return true
end

-- Whether the words of `name` appear in order among those of `candidate`, which has more of them
-- ("dropout" in "dropout_rate", "rate" in "learning_rate").
local function words_within(name, candidate)
  local wn, wc = words(name), words(candidate)
  if #wn == 0 or #wn >= #wc then return false end
  local j = 1
  for _, w in ipairs(wn) do
    while j <= #wc and wc[j] ~= w do j = j + 1 end
    if j > #wc then return false end
    j = j + 1
  end
  return true
end

-- Whether name is the initials of candidate's words, two or more ("lr" for "learning_rate").
local function initials(name, candidate)
  local wc = words(candidate)
  if #wc < 2 or #name ~= #wc then return false end
  for i, w in ipairs(wc) do
    if w:sub(1, 1) ~= name:sub(i, i) then return false end
  end
  return true
end

-- The one candidate that passes test, or nil when none or several do (a guess between two is no help).
local function only(name, known, test)
  local found
  for candidate in pairs(known) do
    if type(candidate) == "string" and candidate ~= name and test(name, candidate) then
      if found then return nil end
      found = candidate
    end
  end
  return found
end

--- A "did you mean" for a misspelt name: the closest known name within one edit per three letters
-- (at least one, at most three), so that short names get no far-fetched suggestion ("eps" is no "lr");
-- failing that, the one known name that the name abbreviates word by word ("val_accuracy" for
-- "val_acc", and back), or whose words' initials the name is ("learning_rate" for "lr"), or whose
-- words contain the name's ("dropout_rate" for "dropout"). opts (optional): words = false leaves out
-- the last two rules (a monitored "loss" is no misspelt "val_loss": training may log it later).
function closest.suggestion(name, known, opts)
  if type(name) ~= "string" then return nil end
  local near = closest.name(name, known, math.max(1, math.min(3, #name // 3)))
  if near then return near end
  near = only(name, known, abbreviates)
  if near or (opts and opts.words == false) then return near end
  return only(name, known, initials) or only(name, known, words_within)
end

return closest
