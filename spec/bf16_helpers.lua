-- Shared by the bf16 specs: whether this build and CPU compute bf16, channels-last bf16 inputs, and
-- the comparison within bf16's precision.
local L = require "lightning"
local B = {}

local info = L.info().mixed_precision
B.runs = info ~= nil and info.bf16_supported

--- A test function that is busted's it(name, fn) where bf16 kernels exist, else a pending test that
-- says why: local needs_bf16 = B.needs_bf16(it, pending) (busted's functions are the spec file's).
function B.needs_bf16(it_fn, pending_fn)
  return function(name, fn)
    if B.runs then it_fn(name, fn) else pending_fn(name .. " (no bf16 kernels in this build or on this CPU)") end
  end
end

--- A channels-last bf16 (or `scalar_type`, "float16") copy of x (N, C, H, W): what a mixed-precision
-- convolution hands the next layer.
function B.channels_last(x, scalar_type)
  local cl = x:permute(1, 3, 4, 2):contiguous()
  return (scalar_type == "float16" and cl:half() or cl:bfloat16()):permute(1, 4, 2, 3)
end

--- bf16 keeps 8 significant bits: results within a few of its steps of the float32 ones, relative
-- to the largest magnitude (the sums of a convolution or BatchNorm add up rounding).
function B.assert_close(got, want, what, tol)
  got, want = got:float(), want:float()
  local scale = math.max(want:clone():abs():max(), 1e-6)   -- (abs works in place)
  local d = (got - want):abs():max() / scale
  assert(d <= (tol or 0.02), ("%s: max difference %.3g of the largest value exceeds %.3g"):format(what, d, tol or 0.02))
end

return B
