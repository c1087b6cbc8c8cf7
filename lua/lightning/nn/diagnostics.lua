--- Diagnostics for debugging a network: activation statistics and the gradient-flow report.
local L = require "lightning"

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
  local n = t:numel()
  if n == 0 then return {min = 0 / 0, max = 0 / 0, mean = 0 / 0, std = 0 / 0, zeros = 0, numel = 0} end
  return {min = t:min(), max = t:max(), mean = t:mean(), std = n > 1 and t:std() or 0, zeros = t:eq(0):sum(),
    numel = n}
end

--- Per parameter: gradient norm, mean |grad|, weight norm, their ratio, and a status ("ok",
-- "vanishing" when the gradient norm is below 1e-7, "exploding" above 1e3, "no gradient").
function diagnostics.gradient_flow(model)
  local rows = {}
  for name, p in model:named_parameters() do
    local row = {name = name, shape = tostring(p:size()), weight_norm = p:norm()}
    if p.grad then
      row.grad_norm = p.grad:norm()
      row.grad_mean_abs = p.grad:numel() > 0 and p.grad:norm(1) / p.grad:numel() or 0
      row.ratio = row.weight_norm > 0 and row.grad_norm / row.weight_norm or math.huge
      if row.grad_norm ~= row.grad_norm or row.grad_norm > diagnostics.EXPLODING then row.status = "exploding"
      elseif row.grad_norm < diagnostics.VANISHING then row.status = "vanishing"
      else row.status = "ok" end
    else
      row.status = "no gradient"
    end
    rows[#rows + 1] = row
  end
  return rows
end

--- Prints the gradient-flow report through output (default: standard output), one line per parameter,
-- and returns the rows and the number of flagged parameters.
function diagnostics.print_gradient_flow(model, output)
  output = output or diagnostics.print_line
  local rows = diagnostics.gradient_flow(model)
  local flagged = 0
  output(("%-24s %-16s %12s %12s %12s %10s  %s"):format("parameter", "shape", "grad norm", "mean |grad|",
    "weight norm", "ratio", "status"))
  for _, r in ipairs(rows) do
    if r.grad_norm then
      output(("%-24s %-16s %12.4e %12.4e %12.4e %10.3e  %s"):format(r.name, r.shape, r.grad_norm, r.grad_mean_abs,
        r.weight_norm, r.ratio, r.status == "ok" and "ok" or ("<-- " .. r.status:upper())))
    else
      output(("%-24s %-16s %12s %12s %12.4e %10s  %s"):format(r.name, r.shape, "-", "-", r.weight_norm, "-", r.status))
    end
    if r.status ~= "ok" then flagged = flagged + 1 end
  end
  output(("%d of %d parameters flagged (vanishing < %g, exploding > %g)"):format(flagged, #rows,
    diagnostics.VANISHING, diagnostics.EXPLODING))
  return rows, flagged
end

return diagnostics
