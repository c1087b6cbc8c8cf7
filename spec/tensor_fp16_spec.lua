-- float16 tensors on the host: the conversions (fp16.h, exhaustively checked against the compiler's
-- _Float16 when written), printing, and the refusals, as for bfloat16. They hold 16-mixed's activations
-- on a GPU; the host converts at the boundaries.
local L = require "lightning"
local H = require "helpers"

describe("float16 tensors", function()
  it("round to nearest even, overflow past 65504 to infinity, keep subnormals, NaN and signed zero", function()
    local cases = {
      {1, 1}, {-2.5, -2.5}, {65504, 65504}, {65519.99, 65504}, {65520, math.huge}, {-1e6, -math.huge},
      {2049, 2048}, {2051, 2052}, {2050, 2050},                 -- steps of 2 above 2048: ties to even
      {2 ^ -24, 2 ^ -24}, {2 ^ -25, 0}, {2 ^ -25 * 1.5, 2 ^ -24},  -- the smallest subnormal and the half-way
      {2 ^ -14, 2 ^ -14}, {6.1e-5, 1023 * 2 ^ -24}, {0.1, 0.0999755859375}, {1 / 3, 0.333251953125},
    }
    local input, want = {}, {}
    for i, c in ipairs(cases) do input[i], want[i] = c[1], c[2] end
    local back = L.tensor(input):half():float():totable()
    for i, w in ipairs(want) do assert.equal(w, back[i], ("%s -> %s"):format(input[i], back[i])) end
    local special = L.tensor{0 / 0, -0.0, math.huge}:half():float():totable()
    assert.is_true(special[1] ~= special[1])
    assert.equal("-0.0", tostring(special[2]))
    assert.equal(math.huge, special[3])
  end)

  it("print as float16, convert both ways through any layout, and are refused where a float32 is needed", function()
    local h = L.tensor{{1, 2}, {3, 4}}:t():half()
    assert.equal("float16", h:scalar_type())
    assert.matches("%[float16 Tensor of size 2x2%]", tostring(h))
    H.assert_close(h:float(), L.tensor{{1, 3}, {2, 4}}, 0)
    assert.equal(h, h:half())
    local b = h:bfloat16()                        -- fp16 -> bf16 directly
    H.assert_close(b:float(), L.tensor{{1, 3}, {2, 4}}, 0)
    local into = L.zeros(2, 2):copy(h)
    H.assert_close(into, L.tensor{{1, 3}, {2, 4}}, 0)
    assert.matches("Tensor:sum: self is a float16 tensor %(an activation of a mixed%-precision layer%): call :float%(%) first",
      H.error_of(h.sum, h))
  end)

  it("a layer set to fp16 on the host computes in float32: the host has no fp16 kernels", function()
    local conv = L.nn.Conv2d(3, 4, 3)
    conv:set_precision("fp16")
    local y = conv:forward(L.randn(2, 3, 6, 6))
    assert.equal("float32", y:scalar_type())
    assert.equal("fp32", conv._kernel:info().precision)
    assert.equal("fp16", conv._kernel:info().requested)
  end)
end)
