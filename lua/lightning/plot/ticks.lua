--- Axis ticks: "nice" steps (1, 2 or 5 times a power of ten), tick positions, their labels, and the
-- limits an axis gets from its data.
local ticks = {}

local EPS = 1e-9

-- Nice steps are these multiples of a power of ten (matplotlib's default set).
local MULTIPLES = {1, 2, 2.5, 5}

--- The nice step after step: 1 -> 2 -> 2.5 -> 5 -> 10 (times the same power of ten).
function ticks.next_step(step)
  local magnitude = 10 ^ math.floor(math.log(step, 10) + EPS)
  for _, m in ipairs(MULTIPLES) do
    if m * magnitude > step * (1 + EPS) then return m * magnitude end
  end
  return 10 * magnitude
end

--- The multiples of the smallest nice step that leaves at most max_ticks (>= 2) of them within
-- [lo, hi] (integer: whole numbers only). Returns the values and the step.
function ticks.positions(lo, hi, max_ticks, integer)
  max_ticks = math.max(2, max_ticks)
  local span = hi - lo
  if not (span > 0) or span == math.huge then return {}, 1 end
  local step = 10 ^ math.floor(math.log(span / (4 * max_ticks), 10))
  if integer and step < 1 then step = 1 end
  while true do
    local first, last = math.ceil(lo / step - EPS), math.floor(hi / step + EPS)
    if last - first + 1 <= max_ticks and not (integer and step % 1 ~= 0) then
      local values = {}
      for k = first, last do values[#values + 1] = k == 0 and 0 or k * step end
      return values, step
    end
    step = ticks.next_step(step)
  end
end

-- Decimals that tell the multiples of step apart: the fewest d with step * 10^d whole.
local function decimals(step)
  for d = 0, 8 do
    local scaled = step * 10 ^ d
    if math.abs(scaled - math.floor(scaled + 0.5)) < 1e-6 * scaled then return d end
  end
  return 8
end

--- Labels for tick values that are multiples of step: as many decimals as the step needs ("0.25"
-- needs none more than "0.2, 0.4"), no "-0", %g for very large or very small magnitudes.
function ticks.format(value, step)
  if value == 0 then return "0" end
  local magnitude = math.abs(value)
  if magnitude >= 1e6 or step < 1e-6 then return (("%.3g"):format(value):gsub("e%+?(%-?)0*(%d)", "e%1%2")) end
  local s = ("%." .. decimals(step) .. "f"):format(value)
  if s:match("^%-0%.?0*$") then s = s:sub(2) end
  return s
end

function ticks.labels(values, step)
  local out = {}
  for i, v in ipairs(values) do out[i] = ticks.format(v, step) end
  return out
end

--- Limits for data spanning [lo, hi]: widened by margin (a fraction of the span, matplotlib's 5 %)
-- on each side; a single value gets +-5 % of itself (+-0.5 around 0); no data gives 0..1.
function ticks.limits(lo, hi, margin)
  margin = margin or 0.05
  if lo == nil or hi == nil or lo ~= lo or hi ~= hi or lo > hi then return 0, 1 end
  if lo == hi then
    local d = lo == 0 and 0.5 or math.abs(lo) * 0.05
    return lo - d, hi + d
  end
  local d = (hi - lo) * margin
  return lo - d, hi + d
end

return ticks
