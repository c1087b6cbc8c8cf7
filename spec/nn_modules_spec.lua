-- The module protocol: parameters and their names, state dicts, modes, containers, initialisation,
-- and constructor errors.
local L = require "lightning"
local H = require "helpers"
local nn = L.nn

local function small_net()
  return nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(4 * 2 * 2, 5), nn.BatchNorm1d(5), nn.Dropout(0.5), nn.Linear(5, 2))
end

describe("nn.Module", function()
  it("lists parameters with PyTorch's names, each with a gradient", function()
    local net = small_net()
    local names = {}
    for name, p in net:named_parameters() do
      names[#names + 1] = name
      assert.equal(tostring(p:size()), tostring(p.grad:size()))
    end
    assert.same({"0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias", "6.weight", "6.bias", "8.weight",
      "8.bias"}, names)
    assert.equal(10, #net:parameters())
    assert.equal(3 * 4 * 9 + 4 + 4 + 4 + 16 * 5 + 5 + 5 + 5 + 5 * 2 + 2, net:num_parameters())
  end)

  it("has state_dict keys for parameters and buffers in PyTorch's order", function()
    local keys = small_net():state_dict_keys()
    assert.same({"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
      "1.num_batches_tracked", "5.weight", "5.bias", "6.weight", "6.bias", "6.running_mean", "6.running_var",
      "6.num_batches_tracked", "8.weight", "8.bias"}, keys)
  end)

  it("loads a state dict and reports missing, unexpected and mismatched keys", function()
    local a, b = small_net(), small_net()
    b:load_state_dict(a:state_dict())
    assert.same(a[1].weight:totable(), b[1].weight:totable())
    local sd = a:state_dict()
    sd["0.weight"] = nil
    sd["extra.weight"] = L.zeros(1)
    local msg = H.error_of(b.load_state_dict, b, sd)
    assert.matches("missing keys: 0.weight", msg)
    assert.matches("unexpected keys: extra.weight", msg)
    local result = b:load_state_dict(sd, false)
    assert.same({"0.weight"}, result.missing_keys)
    sd = a:state_dict()
    sd["5.weight"] = L.zeros(3, 3)
    assert.matches("size mismatch for 5.weight %(checkpoint 3x3, model 5x16%)", H.error_of(b.load_state_dict, b, sd))
  end)

  it("switches every module between training and evaluation", function()
    local net = small_net()
    net:eval()
    for _, m in ipairs(net:modules()) do assert.is_false(m.training) end
    net:train()
    for _, m in ipairs(net:modules()) do assert.is_true(m.training) end
  end)

  it("zeroes gradients", function()
    local net = small_net()
    local x = L.randn(2, 3, 4, 4)
    net:forward(x)
    net:backward(x, L.ones(2, 2))
    assert.is_true(net[1].weight.grad:abs():sum() > 0)
    net:zero_grad()
    for _, p in ipairs(net:parameters()) do assert.equal(0, p.grad:abs():sum()) end
  end)

  it("initialises like PyTorch: uniform within 1/sqrt(fan_in), BatchNorm ones and zeros", function()
    L.manual_seed(1)
    local conv = nn.Conv2d(16, 32, 3)
    local bound = 1 / math.sqrt(16 * 9)
    assert.is_true(conv.weight:max() <= bound and conv.weight:min() >= -bound)
    assert.is_true(conv.weight:max() > 0.9 * bound)
    assert.is_true(conv.bias:abs():max() <= bound)
    local lin = nn.Linear(100, 10)
    assert.is_true(lin.weight:abs():max() <= 0.1)
    local bn = nn.BatchNorm2d(3)
    assert.same({1, 1, 1}, bn.weight:totable())
    assert.same({0, 0, 0}, bn.bias:totable())
    assert.same({0, 0, 0}, bn.running_mean:totable())
    assert.same({1, 1, 1}, bn.running_var:totable())
    assert.equal("I64", bn.num_batches_tracked.dtype)
    L.manual_seed(1)
    assert.same(conv.weight:totable(), nn.Conv2d(16, 32, 3).weight:totable())
  end)

  it("is callable: m(x) is m:forward(x)", function()
    local lin = nn.Linear(2, 3)
    local x = L.randn(4, 2)
    assert.same(lin:forward(x):clone():totable(), lin(x):totable())
  end)
end)

describe("nn.Sequential", function()
  it("indexes from 1, counts, appends and prints layers, output shapes and parameter counts", function()
    local net = nn.Sequential({nn.Linear(3, 4), nn.ReLU()})
    assert.equal(2, #net)
    assert.equal("Linear", L.class.name_of(net[1]))
    net:add(nn.Linear(4, 2))
    assert.equal(3, #net)
    net:forward(L.randn(5, 3))
    local s = tostring(net)
    assert.matches("Sequential%(3 layers, 26 parameters%)", s)
    assert.matches("%(0%): Linear%(3, 4%)%s+5x4%s+16", s)
    assert.matches("%(2%): Linear%(4, 2%)%s+5x2%s+10", s)
  end)

  it("rejects things that are not modules", function()
    assert.matches("Sequential: element 2 is not a module", H.error_of(nn.Sequential, nn.ReLU(), 5))
    assert.matches("Sequential:add: expected a module", H.error_of(function() nn.Sequential():add({}) end))
  end)

  it("skips the first layer's input gradient when told it is not needed", function()
    local net = nn.Sequential(nn.Linear(3, 2))
    net.needs_input_grad = false
    local x = L.randn(4, 3)
    net:forward(x)
    assert.is_nil(net:backward(x, L.ones(4, 2)))
    assert.is_true(net[1].weight.grad:abs():sum() > 0)
  end)

  it("skips the layers before the first one that trains when the input needs no gradient, as autograd does", function()
    L.manual_seed(3)
    local function make()
      L.manual_seed(5)
      local net = nn.Sequential(nn.Conv2d(2, 3, 3, {padding = 1}), nn.GELU(), nn.Conv2d(3, 4, 3), nn.ReLU())
      net[1].weight.requires_grad, net[1].bias.requires_grad = false, false
      return net
    end
    local x, g = L.randn(2, 2, 6, 6), L.randn(2, 4, 4, 4)
    local full, skipping = make(), make()
    full:forward(x)
    full:backward(x, g)   -- needs_input_grad not false: every layer runs, down to the input's gradient
    assert.is_true(full[1].grad_input:abs():sum() > 0)
    skipping.needs_input_grad = false
    local ran = {}
    for i = 1, 4 do
      local m, original = skipping[i], skipping[i].backward
      rawset(m, "backward", function(self, ...) ran[#ran + 1] = i; return original(self, ...) end)
    end
    skipping:forward(x)
    assert.is_nil(skipping:backward(x, g))
    assert.same({4, 3}, ran)                     -- the frozen convolution and its GELU are skipped
    assert.is_false(skipping[3].needs_input_grad)  -- and the first trained layer computes no input gradient
    H.assert_close(skipping[3].weight.grad, full[3].weight.grad, 0)
    H.assert_close(skipping[3].bias.grad, full[3].bias.grad, 0)
    -- once the first layer trains again (a bias unfrozen), it runs again
    skipping[1].bias.requires_grad = true
    ran = {}
    skipping:backward(x, g)
    assert.same({4, 3, 2, 1}, ran)
    assert.is_true(skipping[3].needs_input_grad)
  end)
end)

describe("nn.Residual", function()
  it("adds the block's output to the input (or a shortcut's output)", function()
    local r = nn.Residual(nn.Linear(3, 3))
    local x = L.randn(2, 3)
    local expected = r.block:forward(x):clone() + x
    H.assert_close(r:forward(x), expected, 1e-6)
    local r2 = nn.Residual(nn.Linear(3, 2), nn.Linear(3, 2, {bias = false}))
    assert.equal("2x2", tostring(r2:forward(x):size()))
    assert.same({"block.weight", "block.bias", "shortcut.weight"}, r2:state_dict_keys())
    assert.matches("the block gives 2x2 but the shortcut gives 2x3",
      H.error_of(function() nn.Residual(nn.Linear(3, 2)):forward(x) end))
  end)
end)

describe("layer constructors and calls with bad arguments", function()
  it("name the layer and the problem", function()
    assert.matches("Conv2d: unknown option 'pading' %(did you mean 'padding'%?%) %(known: bias, padding, stride%)",
      H.error_of(nn.Conv2d, 3, 8, 3, {pading = 1}))
    assert.matches("Conv2d: in_channels must be positive, got 0", H.error_of(nn.Conv2d, 0, 8, 3))
    assert.matches("Conv2d: kernel_size must be at least 1, got 0", H.error_of(nn.Conv2d, 3, 8, 0))
    assert.matches("Conv2d: out_channels must be an integer, got 2.5", H.error_of(nn.Conv2d, 3, 2.5, 3))
    assert.matches('Linear: in_features must be an integer, got "a"', H.error_of(nn.Linear, "a", 2))
    assert.matches("Linear: out_features must be an integer, got inf", H.error_of(nn.Linear, 2, math.huge))
    assert.matches("Dropout: p must be a probability between 0 and 1, got 1.5", H.error_of(nn.Dropout, 1.5))
    assert.matches("MaxPool2d: padding must be at most half the kernel size",
      H.error_of(nn.MaxPool2d, 2, {padding = 2}))
    assert.matches("BatchNorm2d: momentum must be a number in %[0, 1%]", H.error_of(nn.BatchNorm2d, 3, {momentum = 2}))
    local conv = nn.Conv2d(3, 8, 3)
    assert.matches("Conv2d:forward: input has 4 channels but the layer expects 3",
      H.error_of(conv.forward, conv, L.randn(1, 4, 5, 5)))
    assert.matches("Conv2d:forward: expected a 4%-D input, got a 2%-D tensor of size 3x3",
      H.error_of(conv.forward, conv, L.randn(3, 3)))
    assert.matches("Conv2d:forward: input 2x2 %(padding 0x0%) is smaller than the kernel 3x3",
      H.error_of(conv.forward, conv, L.randn(1, 3, 2, 2)))
    assert.matches("Conv2d:forward: input must be a tensor, got nil", H.error_of(conv.forward, conv, nil))
    local lin = nn.Linear(4, 2)
    assert.matches("Linear:forward: input has 3 features but the layer expects 4",
      H.error_of(lin.forward, lin, L.randn(2, 3)))
    lin:forward(L.randn(2, 4))
    assert.matches("Linear:backward: grad_output must be 2x2, got 3x2",
      H.error_of(lin.backward, lin, L.randn(2, 4), L.randn(3, 2)))
    assert.matches("BatchNorm2d:forward: expected a 4%-D input", H.error_of(function() nn.BatchNorm2d(3):forward(L.randn(2, 3)) end))
    assert.matches("BatchNorm1d:forward: input has 3 channels but the layer expects 4", H.error_of(function()
      local bn = nn.BatchNorm1d(4)
      bn:forward(L.randn(2, 3))
    end))
    assert.matches("MaxPool2d:forward: input size 1 %(padding 0%) is smaller than the kernel 2",
      H.error_of(function() nn.MaxPool2d(2):forward(L.randn(1, 1, 1, 4)) end))
  end)
end)

describe("BatchNorm's batch count", function()
  it("counts on from whatever was last written to num_batches_tracked (kept in Lua between writes)", function()
    local bn = L.nn.BatchNorm1d(3)
    local x = L.randn(4, 3)
    bn:forward(x); bn:forward(x)
    assert.equal(2, bn.num_batches_tracked[1])
    bn.num_batches_tracked[1] = 40           -- an element write
    bn:forward(x)
    assert.equal(41, bn.num_batches_tracked[1])
    local state = bn:state_dict()
    state.num_batches_tracked = L.tensor({7})
    bn:load_state_dict(state)                -- a copy into the buffer
    bn:forward(x)
    assert.equal(8, bn.num_batches_tracked[1])
    bn.num_batches_tracked:fill(100)
    bn:eval(); bn:forward(x); bn:train()     -- eval does not count
    bn:forward(x)
    assert.equal(101, bn.num_batches_tracked[1])
  end)
end)
