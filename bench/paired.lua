--- Paired measurement, the one way the benchmarks compare us with a peer. This machine's speed drifts
-- by 2x within minutes, so a single timed run of each proves nothing: ours and the peer run
-- alternately in short rounds (a pair), each pair gives a ratio, and the report is the median of the
-- per-pair ratios with their range.
--   local paired = dofile("bench/paired.lua")
--   local result = paired.run(5, function() return {train = 812} end, function() return {train = 640} end)
--   paired.report(result, {"train", "eval"}, {ours = "lightning", peer = "PyTorch 2.15"})
-- A measurement function returns a table of named figures where larger is better (images/s); a figure
-- missing from either side of a pair leaves that pair out of that figure's ratio.
local paired = {}

function paired.median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

--- Runs n pairs: ours() then peer() (the order alternates from pair to pair, so that neither side
-- always runs on a machine warmed or cooled by the other). Returns {pairs = {{ours = t, peer = t}, ...}}.
function paired.run(n, ours, peer)
  assert(n >= 1, "paired.run: at least one pair")
  local result = {pairs = {}}
  for i = 1, n do
    local a, b
    if i % 2 == 1 then a = ours() b = peer() else b = peer() a = ours() end
    result.pairs[i] = {ours = a, peer = b}
  end
  return result
end

--- The per-pair ratios ours/peer of one figure, their median, lowest and highest.
function paired.ratios(result, key)
  local ratios = {}
  for _, p in ipairs(result.pairs) do
    local a, b = p.ours and p.ours[key], p.peer and p.peer[key]
    if a and b and b > 0 then ratios[#ratios + 1] = a / b end
  end
  if #ratios == 0 then return ratios end
  return ratios, paired.median(ratios), math.min(table.unpack(ratios)), math.max(table.unpack(ratios))
end

--- Prints each pair and, per figure, the median of the per-pair ratios with their range.
function paired.report(result, keys, names, unit)
  unit = unit or "img/s"
  for i, p in ipairs(result.pairs) do
    local cells = {}
    for _, key in ipairs(keys) do
      local a, b = p.ours and p.ours[key], p.peer and p.peer[key]
      cells[#cells + 1] = ("%s %s %s / %s %s%s"):format(key, a and ("%.0f"):format(a) or "-", unit,
        b and ("%.0f"):format(b) or "-", unit, a and b and b > 0 and (" (%.2fx)"):format(a / b) or "")
    end
    print(("pair %d: %s"):format(i, table.concat(cells, ", ")))
  end
  for _, key in ipairs(keys) do
    local ratios, med, lo, hi = paired.ratios(result, key)
    if med then
      print(("%s: %s over %s, median of %d pairs %.2fx (pairs %.2f-%.2fx)"):format(key, names.ours, names.peer,
        #ratios, med, lo, hi))
    end
  end
end

return paired
