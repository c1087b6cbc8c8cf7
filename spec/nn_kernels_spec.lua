-- The seam between the Lua layers and the kernels (csrc/core/kernel/kernel.h, csrc/lua/l_fields.c): each layer's
-- kernel handle, the tables of named fields the bindings take, and the activations chosen by name.
local L = require "lightning"
local H = require "helpers"
local nn = L.nn
local C = L.core.nn

describe("a layer's kernel handle", function()
  it("says which operation, implementation and precision it runs, once it has run", function()
    local conv = nn.Conv2d(3, 4, 3, {padding = 1})
    assert.same({op = "none", implementation = "none", precision = "fp32", requested = "fp32", forwarded = false},
      conv._kernel:info())
    local was = L.set_fp32_onednn(false)   -- the im2col path (float32 may otherwise take oneDNN's)
    local ok, err = pcall(conv.forward, conv, L.randn(2, 3, 5, 5))
    L.set_fp32_onednn(was)
    assert(ok, err)
    assert.same({op = "conv2d", implementation = "cpu", precision = "fp32", requested = "fp32", forwarded = true},
      conv._kernel:info())
    assert.equal("KernelHandle(conv2d: cpu, fp32)", tostring(conv._kernel))
  end)

  it("asked for bf16, runs fp32 where no implementation computes bf16", function()
    local h = C.kernel_handle("bf16")
    local out, x = L.empty(0), L.randn(2, 3)
    C.softmax_forward{handle = h, output = out, input = x, dim = 1}
    local info = h:info()
    assert.equal("bf16", info.requested)
    assert.equal("fp32", info.precision)
    assert.equal("cpu", info.implementation)
    local ref = L.empty(0)
    C.softmax_forward{handle = C.kernel_handle(), output = ref, input = x, dim = 1}
    H.assert_close(out, ref, 0)
    assert.matches("precision must be \"fp32\", \"bf16\" or \"fp16\", got \"fp8\"", H.error_of(C.kernel_handle, "fp8"))
  end)

  it("serves one operation: another one's call is an error", function()
    local h = C.kernel_handle()
    C.activation_forward{handle = h, activation = "relu", output = L.empty(0), input = L.randn(3)}
    local msg = H.error_of(C.softmax_forward, {handle = h, output = L.empty(0), input = L.randn(3), dim = 1})
    assert.matches("the kernel handle serves activation, not softmax: give each layer its own", msg)
  end)
end)

describe("the bindings' named fields", function()
  local function conv_args()
    return {name = "Conv2d:forward", handle = C.kernel_handle(), output = L.empty(0), cols = L.empty(0),
      input = L.randn(1, 2, 4, 4), weight = L.randn(3, 2, 3, 3), kernel_h = 3, kernel_w = 3, stride_h = 1,
      stride_w = 1, pad_h = 1, pad_w = 1}
  end

  it("compute what the positional calls computed", function()
    local a = conv_args()
    C.conv2d_forward(a)
    assert.same({1, 3, 4, 4}, a.output:size())
  end)

  it("name a field that is missing or of the wrong type", function()
    local a = conv_args()
    a.weight = nil
    assert.matches("Conv2d:forward: weight must be a tensor, got nil", H.error_of(C.conv2d_forward, a))
    a = conv_args()
    a.kernel_h = "3"
    assert.matches("Conv2d:forward: kernel_h must be an integer, got string", H.error_of(C.conv2d_forward, a))
    a = conv_args()
    a.kernel_w = 2.5
    assert.matches("Conv2d:forward: kernel_w must be an integer, got 2.5", H.error_of(C.conv2d_forward, a))
    a = conv_args()
    a.handle = L.empty(0)
    assert.matches("Conv2d:forward: handle must be a kernel handle", H.error_of(C.conv2d_forward, a))
  end)

  it("refuse a field the function does not read, so that a misspelt name is caught", function()
    local a = conv_args()
    a.wieght = a.weight
    local msg = H.error_of(C.conv2d_forward, a)
    assert.matches("Conv2d:forward: unknown field 'wieght' %(this call reads: bias, cols, handle, input, kernel_h, "
      .. "kernel_w, output, pad_h, pad_w, stride_h, stride_w, weight%)", msg)
    a = conv_args()
    a.grad_output = L.randn(1, 3, 4, 4)  -- a backward field given to the forward pass
    assert.matches("unknown field 'grad_output'", H.error_of(C.conv2d_forward, a))
    assert.matches("expected a table of named arguments, got tensor", H.error_of(C.conv2d_forward, L.randn(2)))
  end)

  it("catch tensors in the wrong role by their shapes", function()
    local a = conv_args()
    a.input, a.weight = a.weight, a.input
    assert.matches("Conv2d:forward: weight must be out x in x 3 x 3, got 1x2x4x4", H.error_of(C.conv2d_forward, a))
    a = conv_args()
    a.cols = a.input  -- scratch that is the input: im2col would write over what it reads
    assert.matches("Conv2d:forward: cols shares its storage with input; give the layer its own cols",
      H.error_of(C.conv2d_forward, a))
    local lin = nn.Linear(3, 3)
    local x = L.randn(2, 3)
    lin.output = x
    assert.matches("Linear:forward: output shares its storage with input", H.error_of(lin.forward, lin, x))
  end)

  it("serve the optimizers too", function()
    local p = L.randn(3)
    local a = {param = p, grad = L.ones(3), lr = 0.5, momentum = 0, dampening = 0, weight_decay = 0}
    local before = p:clone()
    C = L.core.optim
    C.sgd_step(a)
    H.assert_close(p, before - 0.5, 1e-6)
    a.lerning_rate = 1
    assert.matches("lightning.optim.SGD:step: unknown field 'lerning_rate'", H.error_of(C.sgd_step, a))
    a.lerning_rate, a.grad = nil, nil
    assert.matches("lightning.optim.SGD:step: grad must be a tensor, got nil", H.error_of(C.sgd_step, a))
    C = L.core.nn
  end)
end)

describe("activations by name", function()
  it("are the kernels' names, and an unknown one lists the known ones", function()
    assert.equal("relu", nn.ReLU()._activation)
    assert.equal("leaky_relu", nn.LeakyReLU()._activation)
    local msg = H.error_of(C.activation_forward, {name = "SiLU:forward", handle = C.kernel_handle(), activation = "silu",
      output = L.empty(0), input = L.randn(3)})
    assert.matches("SiLU:forward: unknown activation 'silu' %(known: relu, leaky_relu, gelu%)", msg)
  end)

  it("give the same numbers through either name at slope 0, -0 and NaN included", function()
    local x = L.tensor{-2, -0.0, 0, 1.5, 0 / 0, math.huge, -math.huge}
    local relu, leaky = nn.ReLU(), nn.LeakyReLU(0)
    local a, b = relu:forward(x):clone(), leaky:forward(x):clone()
    for i = 1, x:size(1) do
      assert.equal(string.pack("f", b[i]), string.pack("f", a[i]))
    end
    assert.equal("-0.0", tostring(a[1]))
  end)

  it("run in place on a view with gaps, and give the same numbers as out of place", function()
    L.manual_seed(3)
    local base = L.randn(4, 6)
    local view = base:narrow(2, 2, 3)   -- rows of 3 out of 6: not dense
    local out_of_place = nn.LeakyReLU(0.1)
    local expected = out_of_place:forward(view):clone()
    local g = L.randn(4, 3)
    local expected_grad = out_of_place:backward(view, g):clone()
    local relu = nn.LeakyReLU(0.1, {inplace = true})
    relu:forward(view)
    H.assert_close(view, expected, 0)
    H.assert_close(base:narrow(2, 2, 3), expected, 0)
    H.assert_close(relu:backward(view, g), expected_grad, 0)
  end)
end)

describe("the fronts' layouts", function()
  -- the kernels take contiguous tensors; the fronts copy others (the losses once read a transposed
  -- input's log-probabilities as if they were contiguous)
  for _, c in ipairs{
    {name = "CrossEntropyLoss", make = function() return nn.CrossEntropyLoss{label_smoothing = 0.1} end},
    {name = "NLLLoss", make = function() return nn.NLLLoss() end},
  } do
    it(c.name .. " gives a transposed input's numbers as for its contiguous copy", function()
      L.manual_seed(3)
      local x, t = L.randn(3, 5):t(), L.tensor{1, 3, 2, 2, 1}
      local a, b = c.make(), c.make()
      assert.equal(b:forward(x:contiguous(), t), a:forward(x, t))
      H.assert_close(a:backward(x, t), b:backward(x:contiguous(), t), 0)
    end)
  end

  it("Softmax and MSELoss too", function()
    L.manual_seed(4)
    local x, y = L.randn(4, 6):t(), L.randn(6, 4)
    local a, b = nn.LogSoftmax(1), nn.LogSoftmax(1)
    H.assert_close(a:forward(x), b:forward(x:contiguous()), 0)
    local g = L.randn(6, 4)
    H.assert_close(a:backward(x, g:t():contiguous():t()), b:backward(x:contiguous(), g), 0)
    local m1, m2 = nn.MSELoss(), nn.MSELoss()
    assert.equal(m2:forward(x:contiguous(), y), m1:forward(x, y))
    H.assert_close(m1:backward(x, y), m2:backward(x:contiguous(), y), 0)
  end)
end)
