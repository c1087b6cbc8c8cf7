-- Autograd (lightning/autograd): every recorded operation against finite differences, at several
-- shapes (broadcast, non-contiguous, zero-size); the tape's rules (accumulation, no_grad, retain_graph,
-- in-place changes); user Functions; modules as nodes; the Trainer's loss:backward().
local L = require "lightning"
local H = require "helpers"
local nn = L.nn
local check = L.autograd.gradcheck

local function leaf(...)
  local t = L.randn(...)
  t.requires_grad = true
  return t
end

describe("autograd.gradcheck of every operation", function()
  before_each(function() L.manual_seed(7) end)

  local cases = {
    {"add with broadcasting", function(a, b) return a + b end, {{3, 4}, {4}}},
    {"sub with a number", function(a) return 2 - a - 1 end, {{2, 3}}},
    {"mul with broadcasting", function(a, b) return a * b end, {{3, 1}, {1, 4}}},
    {"div", function(a, b) return a / (b * b + 1) end, {{2, 3}, {2, 3}}},
    {"pow by a number", function(a) return (a * a + 1) ^ 1.5 end, {{3, 2}}},
    {"pow by a tensor", function(a, b) return (a * a + 1) ^ b end, {{3}, {3}}},
    {"neg", function(a) return -a end, {{4}}},
    {"exp log sqrt", function(a) return L.log(L.exp(a) + 1) + L.sqrt(a * a + 1) end, {{2, 3}}},
    {"abs tanh sigmoid", function(a) return L.abs(a) + L.tanh(a) * L.sigmoid(a) end, {{3, 3}}},
    {"clamp", function(a) return L.clamp(a, -0.5, 0.5) end, {{4, 3}}},
    {"relu gelu", function(a) return L.relu(a) + L.gelu(a) end, {{3, 5}}},
    {"softmax log_softmax", function(a) return L.softmax(a, 2) * L.log_softmax(a, 1) end, {{3, 4}}},
    {"mm on a transposed view", function(a, b) return L.mm(a:t(), b) end, {{4, 3}, {4, 2}}},
    {"bmm", function(a, b) return L.bmm(a, b) end, {{2, 3, 4}, {2, 4, 2}}},
    {"matmul broadcast batch", function(a, b) return L.matmul(a, b) end, {{2, 3, 4}, {4, 5}}},
    {"matmul vector", function(a, b) return L.matmul(a, b) end, {{3, 4}, {4}}},
    {"addmm", function(m, a, b) return L.addmm(m, a, b, 0.5, 2) end, {{3}, {2, 4}, {4, 3}}},
    {"reshape view flatten", function(a) return a:reshape(6, 2):view(3, 4):flatten() * 2 end, {{2, 3, 2}}},
    {"narrow select", function(a) return a:narrow(2, 2, 2):select(1, 3) end, {{4, 3}}},
    {"transpose permute contiguous", function(a) return a:transpose(1, 3):permute(2, 1, 3):contiguous() * 1 end,
      {{2, 3, 4}}},
    {"expand squeeze unsqueeze", function(a) return a:unsqueeze(1):expand(3, 2, 4):squeeze() * 1 end, {{2, 4}}},
    {"sum and mean along dimensions", function(a) return a:sum(2) + a:mean(2, true):squeeze(2) end, {{3, 4}}},
    {"sum over everything", function(a) return a:sum() * a end, {{2, 3}}},
    {"max and min along a dimension", function(a) return a:max(2) - a:min(1):sum() end, {{3, 4}}},
    {"var and std", function(a) return a:var(2) + a:std(1, false):sum() end, {{4, 5}}},
    {"norm", function(a) return a:norm() + a:norm(1, 2):sum() + a:norm(3) end, {{3, 4}}},
    {"cat and stack", function(a, b) return L.cat({a, b}, 2) + L.stack({a:sum(2), b:sum(2)}, 2):sum(2, true) end,
      {{2, 3}, {2, 3}}},
    {"split and chunk", function(a) local p = a:split(2, 2) return p[1] * p[2] + a:chunk(2, 2)[1] end, {{3, 4}}},
    {"gather", function(a) return a:gather(2, L.tensor{{1, 3}, {2, 2}, {3, 1}}) end, {{3, 3}}},
    {"index_select", function(a) return a:index_select(1, L.tensor{3, 1, 3}) end, {{3, 2}}},
    {"masked_fill", function(a) return a:masked_fill(L.tensor{{1, 0, 0}, {0, 1, 0}}, 2) end, {{2, 3}}},
    {"where", function(a, b) return L.where(L.tensor{1, 0, 1}, a, b) end, {{2, 3}, {3}}},
    {"in-place methods on a recorded tensor", function(a) local h = a * 1 h:mul(2):add(a):exp() return h end, {{3, 2}}},
  }
  -- a tensor of these sizes that is not contiguous: made with the dimensions reversed, then permuted back
  local function strided(sizes)
    local n = #sizes
    if n < 2 then return L.randn(sizes[1] * 2):narrow(1, 1, sizes[1]) end   -- (a view with an offset)
    local reversed, order = {}, {}
    for d = 1, n do reversed[d], order[d] = sizes[n + 1 - d], n + 1 - d end
    return L.randn(table.unpack(reversed)):permute(table.unpack(order))
  end

  for _, case in ipairs(cases) do
    it(case[1], function()
      local inputs = {}
      for i, sizes in ipairs(case[3]) do inputs[i] = L.randn(table.unpack(sizes)) end
      assert.is_true((check(case[2], inputs)))
    end)
    it(case[1] .. ", on non-contiguous inputs", function()
      local inputs = {}
      for i, sizes in ipairs(case[3]) do inputs[i] = strided(sizes) end
      local wide = 0   -- (a tensor with fewer than two dimensions over 1 is contiguous in any order)
      for _, size in ipairs(case[3][1]) do if size > 1 then wide = wide + 1 end end
      if wide > 1 then assert.is_false(inputs[1]:is_contiguous()) end
      assert.is_true((check(case[2], inputs)))
    end)
  end

  it("elementwise operations and reductions over zero-size tensors", function()
    for _, f in ipairs {
      function(a, b) return (a * b + a / (b * b + 1)) ^ 2 - a end,
      function(a) return L.exp(a) + L.tanh(a) + L.relu(a) + L.clamp(a, -1, 1) end,
      function(a, b) return L.cat({a, b}, 1):sum(2) end,
    } do
      local a, b = leaf(0, 3), leaf(0, 3)
      local y = f(a, b)
      y:backward(L.zeros(y:size()))
      assert.equal(0, a.grad:numel())
    end
  end)

  it("zero-size tensors give zero-size gradients", function()
    local a = leaf(0, 3)
    local y = (a * 2):sum(1)
    y:backward(L.ones(3))
    assert.equal(0, a.grad:numel())
  end)

  it("reports the worst element when a derivative is wrong", function()
    local Wrong = L.autograd.Function("Wrong")
    function Wrong.forward(_, x) return x * x end
    function Wrong.backward(_, g) return g * 3 end
    local err = H.error_of(check, function(x) return Wrong(x) end, {L.randn(3)})
    assert.matches("autograd.gradcheck: input 1 element %[%d%]: numeric gradient .*, autograd .*", err)
  end)
end)

describe("the tape", function()
  it("accumulates gradients over backward passes, as PyTorch, and records nothing under no_grad", function()
    local w = leaf(3)
    ;(w * 2):sum():backward()
    ;(w * 3):sum():backward()
    assert.equal(5, w.grad[1])
    local y = L.no_grad(function() return (w * 2):sum() end)
    assert.is_number(y)
    assert.is_true(L.is_grad_enabled())
  end)

  it("frees the graph after backward unless retain_graph, and says which operation", function()
    local x = leaf(2)
    local y = (x * x):sum()
    y:backward(nil, {retain_graph = true})
    y:backward()
    assert.equal(4 * x[1], x.grad[1])
    assert.matches("backward through %a+ a second time", H.error_of(y.backward, y))
  end)

  it("refuses a tensor changed in place after it was saved, naming the operation", function()
    local x = leaf(3)
    local h = x * 1
    local y = h * h
    h:add(1)
    assert.matches("a tensor that mul saved for its backward pass .* was changed in place",
      H.error_of(y.backward, y, L.ones(3)))
  end)

  it("needs a gradient for a tensor of more than one element, and a tracked tensor", function()
    local y = leaf(2, 2) * 2
    assert.matches("a gradient can be left out only for a one%-element tensor, this one is 2x2",
      H.error_of(y.backward, y))
    local plain = L.randn(1)
    assert.matches("does not require grad", H.error_of(plain.backward, plain))
  end)

  it("detach leaves the graph; requires_grad_ marks a leaf", function()
    local x = leaf(2)
    local d = (x * 2):detach()
    assert.is_nil(d.grad_fn)
    assert.is_true(L.randn(2):requires_grad_().requires_grad)
  end)
end)

describe("autograd.Function", function()
  it("runs a user's forward and backward, with saved tensors and needs_input_grad", function()
    local Cube = L.autograd.Function("Cube")
    function Cube.forward(ctx, x, scale)
      ctx:save_for_backward(x)
      ctx.scale = scale
      return x * x * x * scale
    end
    function Cube.backward(ctx, g)
      local x = ctx:saved_tensors()
      assert.same({true, false}, ctx.needs_input_grad)
      return g * x * x * (3 * ctx.scale), nil
    end
    assert.is_true((check(function(x) return Cube(x, 2) end, {L.randn(4)})))
  end)
end)

describe("bad input", function()
  it("names the function and what was wrong", function()
    local x = leaf(2)
    local y = x * 2
    assert.matches("the gradient of tensor 1 must be a tensor of its size 2, got string", H.error_of(y.backward, y, "g"))
    assert.matches("must be a tensor of its size 2, got 3", H.error_of(y.backward, y, L.ones(3)))
    local F = L.autograd.Function("Half")
    assert.matches("define Half.forward", H.error_of(F.apply, x))
    function F.forward(_, t) return t:numel() end
    function F.backward(_, g) return g end
    assert.matches("Half.forward: output 1 must be a tensor, got number", H.error_of(F.apply, x))
    function F.forward(_, t) return t end
    assert.matches("Half.forward: output 1 is argument 1 itself", H.error_of(F.apply, x))
    function F.forward(_, t) return t * 0.5 end
    function F.backward() return "no" end
    local z = F(x)
    assert.matches("Half.backward: gradient 1 must be a tensor or nil, got string", H.error_of(z.backward, z, L.ones(2)))
    assert.matches("autograd.gradcheck: argument 1 must be a function", H.error_of(check, 1, {x}))
    assert.matches("fn's result does not depend on any input", H.error_of(check, function() return L.ones(2) end, {x}))
    assert.matches("Tensor:split: size must be an integer >= 1, got 0", H.error_of(x.split, x, 0))
    assert.matches("lightning.exp: argument 1 must be a tensor, got string", H.error_of(L.exp, "x"))
    assert.matches("requires_grad_: only leaf tensors can be set; this one was made by mul",
      H.error_of(y.requires_grad_, y))
  end)
end)

describe("modules under autograd", function()
  -- the issue's example: two branches concatenated, a loss with a penalty on the logits
  local function model()
    L.manual_seed(3)
    return {a = nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU()),
      b = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU()),
      head = nn.Sequential(nn.Flatten(), nn.Linear(6 * 4 * 4, 5)), crit = nn.CrossEntropyLoss()}
  end
  local x, y = L.randn(2, 3, 4, 4), L.tensor{1, 4}

  it("a layer called as m(x) is one node whose backward is the layer's own: the same bits as by hand", function()
    local m = model()
    local out = m.head(L.cat({m.a(x), m.b(x)}, 2))
    local loss = m.crit(out, y)
    loss:backward()
    local auto = {m.a[1].weight.grad:clone(), m.b[1].weight.grad:clone(), m.head[2].weight.grad:clone()}
    local m2 = model()
    local ha, hb = m2.a:forward(x), m2.b:forward(x)
    local o2 = m2.head:forward(L.cat({ha, hb}, 2))
    m2.crit:forward(o2, y)
    local gh = m2.head:backward(L.cat({ha, hb}, 2), m2.crit:backward(o2, y))
    m2.a:backward(x, gh:narrow(2, 1, 4))
    m2.b:backward(x, gh:narrow(2, 5, 2))
    local by_hand = {m2.a[1].weight.grad, m2.b[1].weight.grad, m2.head[2].weight.grad}
    for i = 1, 3 do assert.equal(0, L.no_grad(function() return (auto[i] - by_hand[i]):abs():max() end)) end
  end)

  it("gradcheck through layers, a concatenation and a penalty on the logits", function()
    local m = model()
    m.a[2]:eval()   -- (BatchNorm in training mode couples the finite differences' batch statistics)
    assert.is_true((check(function(input)
      local out = m.head(L.cat({m.a(input), m.b(input)}, 2))
      return m.crit(out, y) + 0.01 * (out ^ 2):mean()
    end, {x:clone()}, {atol = 3e-3})))
  end)

  it("a frozen stem costs no backward pass: nothing computes what no parameter or input needs", function()
    L.manual_seed(2)
    local stem = nn.Conv2d(3, 4, 3, {padding = 1})
    stem.weight.requires_grad, stem.bias.requires_grad = false, false
    local net = nn.Sequential(stem, nn.ReLU(), nn.Conv2d(4, 2, 1), nn.Flatten(), nn.Linear(2 * 4 * 4, 5))
    local calls = 0
    local backward = stem.backward
    stem.backward = function(...) calls = calls + 1 return backward(...) end
    nn.CrossEntropyLoss()(net(x), y):backward()
    assert.equal(0, calls)
    assert.is_true(net[3].weight.grad:norm() > 0)
    -- a frozen branch of a composite is not recorded at all
    local frozen = nn.Sequential(nn.Conv2d(3, 2, 1))
    frozen[1].weight.requires_grad, frozen[1].bias.requires_grad = false, false
    assert.is_nil(frozen(x).grad_fn)
  end)

  it("m:forward(x) on a tracked tensor says to call the module", function()
    local m = model()
    local h = m.a(x)
    assert.matches("Sequential:forward: the input is tracked by autograd .* call the module, m%(x%)",
      H.error_of(function() return m.head:forward(h) end))
  end)

  it("a module run again before backward says so", function()
    local m = model()
    local first = m.b(x):sum()
    m.b(L.randn(2, 3, 4, 4))
    assert.matches("backward through Sequential: the module ran forward again", H.error_of(first.backward, first))
  end)
end)

describe("a composite model against PyTorch (tools/make_autograd_fixtures.py)", function()
  it("two branches concatenated, a residual GELU, pooling, a loss with penalties: the loss and every gradient", function()
    local F = L.load_safetensors("spec/fixtures/nn/autograd_composite.safetensors")
    local Composite = L.class("Composite", nn.Module)
    function Composite:__init()
      nn.Module.__init(self)
      self:add_module("wide", nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU()))
      self:add_module("thin", nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU()))
      self:add_module("mix", nn.Conv2d(6, 6, 3, {padding = 1}))
      self:add_module("head", nn.Linear(6 * 3 * 3, 5))
      self.pool = nn.MaxPool2d(2)
    end
    function Composite:forward(x)   -- only forward: the calls inside record
      local h = L.cat({self.wide(x), self.thin(x)}, 2)
      h = h + L.gelu(self.mix(h))
      return self.head(self.pool(h):flatten(2))
    end
    local model = Composite()
    L.no_grad(function()
      for name, p in model:named_parameters() do p:copy(F["w." .. name]:view(p:size())) end
    end)
    local x = F.input:clone()
    x.requires_grad = true
    local logits = model(x)
    local loss = nn.CrossEntropyLoss{label_smoothing = 0.1}(logits, F.target) + 0.01 * (logits ^ 2):mean()
      + 0.001 * (model.head.weight ^ 2):sum()
    loss:backward()
    H.assert_close(loss, F.loss, 1e-5, "loss")
    H.assert_close(x.grad, F["grad.input"], 1e-5, "input")
    local n = 0
    for name, p in model:named_parameters() do
      H.assert_close(p.grad, F["grad." .. name]:view(p:size()), 1e-5, name)
      n = n + 1
    end
    assert.equal(10, n)
  end)
end)

describe("the Trainer with autograd", function()
  -- n fixed batches of 8 random 3x16x16 images, as a loader (#loader, loader:iter())
  local function loader(n)
    L.manual_seed(11)
    local batches = {}
    for b = 1, n do
      local target = L.empty(8)
      for i = 1, 8 do target[i] = (b + i) % 10 + 1 end
      batches[b] = {input = L.randn(8, 3, 16, 16), target = target}
    end
    local l = setmetatable({}, {__len = function() return n end})
    function l.iter()
      local i = 0
      return function() i = i + 1 if batches[i] then return i, batches[i] end end
    end
    return l
  end

  -- the model's parameters after 6 steps; legacy: training_step returns a number (criterion:forward)
  -- and LightningModule:backward_step runs the criterion's and the network's backward by hand
  local function trained(make, legacy, opts)
    L.manual_seed(5)
    local model = make()
    if legacy then
      model.training_step = function(self, batch)
        local logits = self:forward(batch.input)
        local loss = self.criterion:forward(logits, batch.target)
        return {loss = loss, output = logits, target = batch.target, input = batch.input}
      end
    end
    local recorded = {}
    local watch = {on_before_backward = function(_, _, _, loss) recorded[#recorded + 1] = L.is_tensor(loss) and loss.grad_fn ~= nil end}
    local trainer = L.Trainer{max_epochs = 2, enable_progress_bar = false, enable_checkpointing = false,
      logger = false, enable_model_summary = false, precision = opts and opts.precision, callbacks = {watch},
      accumulate_grad_batches = opts and opts.accumulate or 1, gradient_clip_val = opts and opts.clip}
    trainer:fit(model, loader(3))
    assert.equal(6, #recorded)
    for _, r in ipairs(recorded) do assert.equal(not legacy, r) end
    local sd = {}
    for name, p in model:named_parameters() do sd[name] = p:clone() end
    return sd
  end

  local function same_bits(a, b)
    for name, t in pairs(a) do
      assert.equal(0, L.no_grad(function() return (t - b[name]):abs():max() end), name)
    end
  end

  local function basic() return L.models.BasicImageClassifier{num_classes = 10, image_size = 16} end

  it("the reference model trains the same bits through autograd as by its Torch7 path", function()
    same_bits(trained(basic, false), trained(basic, true))
  end)

  it("also with gradient accumulation and clipping, and in bf16-mixed", function()
    same_bits(trained(basic, false, {accumulate = 2, clip = 0.5}), trained(basic, true, {accumulate = 2, clip = 0.5}))
    same_bits(trained(basic, false, {precision = "bf16-mixed"}), trained(basic, true, {precision = "bf16-mixed"}))
  end)

  it("examples/autograd_two_branch.lua: training_step returns the loss, the Trainer backpropagates it", function()
    local cpath = package.cpath:match("^[^;]*")   -- the build busted loads
    local p = io.popen(("LUA_CPATH_5_4='%s;;' lua5.4 examples/autograd_two_branch.lua 2>&1"):format(cpath))
    local text = p:read("a")
    p:close()
    local loss = tonumber(text:match("final training loss: ([%d.]+)"))
    assert(loss, text)
    assert.is_true(loss < 1.8, text)   -- from ln(10) = 2.30 at the start
  end)
end)
