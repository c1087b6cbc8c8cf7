-- Results do not depend on the thread count (issue 9, item 7): with the same seed, outputs, gradients,
-- weights, running statistics, losses and metrics are bit-identical at 1, 2, 3 and 4 threads
-- (L.set_num_threads). Every reduction is split into parts fixed by the sizes alone; threads take whole
-- parts and the parts are added in a fixed order. The sizes below cross the parallel thresholds
-- (lt_threads_for: 32768 elements, 64^3 multiply-adds for a matrix product) and give several of each
-- kernel's parts (convolution chunks, matrix blocks, norm blocks). Thread counts above the machine's
-- cores still run those threads, so 3 and 4 are checked on any machine.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local output = require "lightning.util.output"
local nn = L.nn

local THREADS = {1, 2, 3, 4}
local needs_bf16 = require("bf16_helpers").needs_bf16(it, pending)

local function sorted_names(t)
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  return names
end

local function same_number(x, y) return string.pack("<d", x) == string.pack("<d", y) end

-- Why two sets of values differ: each value that differs, with how many elements and by how much.
local function differences(a, b)
  local lines = {}
  for _, name in ipairs(sorted_names(a)) do
    local x, y = a[name], b[name]
    if y == nil then
      lines[#lines + 1] = ("  %s: missing"):format(name)
    elseif L.is_tensor(x) then
      local diff = x:numel() == y:numel() and x:ne(y):sum() or x:numel()
      if diff > 0 then
        lines[#lines + 1] = ("  %s: %d of %d elements differ (max relative difference %.3g)"):format(name, diff,
          x:numel(), H.max_rel_diff(x, y))
      elseif x:eq(y):sum() ~= x:numel() then
        lines[#lines + 1] = ("  %s: equal values but different bits (signed zeros or NaN payloads)"):format(name)
      end
    elseif not same_number(x, y) then
      lines[#lines + 1] = ("  %s: %.17g vs %.17g"):format(name, x, y)
    end
  end
  if #lines == 0 then lines[1] = "  (the bits of signed zeros or NaN payloads)" end
  return table.concat(lines, "\n")
end

-- A run's k-th set of values: its tensors (from their file) and its numbers.
local function values_of(run, k)
  local values = L.load_safetensors(run.files[k])
  for name, v in pairs(run.numbers[k]) do values[name] = v end
  return values
end

-- The run's values are the first run's, bit for bit: the same bytes in each file (equal bytes are
-- equal bits, signed zeros and NaN payloads included) and the same numbers.
local function assert_same_bits(what, first, run)
  assert(#run.files == #first.files, what .. ": runs handed over different numbers of values")
  for k = 1, #first.files do
    local same = H.read_file(run.files[k]) == H.read_file(first.files[k])
    for name, v in pairs(first.numbers[k]) do
      if run.numbers[k][name] == nil or not same_number(v, run.numbers[k][name]) then same = false end
    end
    assert(same, ("%s: %d threads differ from %d (values handed over #%d):\n%s"):format(what, run.threads,
      first.threads, k, differences(values_of(first, k), values_of(run, k))))
  end
end

-- Runs f(emit) at each thread count, from the same seed. f hands what it computed to emit(values), a
-- table of named tensors and numbers, as often as it likes (once per training step), and may return a
-- last such table. Each table is written to a file at once, so that tensors need not outlive a step;
-- every count must give the first count's values, bit for bit.
local function check(what, f, counts)
  local saved = L.get_num_threads()
  local dir = H.tmpdir()
  local ok, err = pcall(function()
    local first
    for _, n in ipairs(counts or THREADS) do
      L.set_num_threads(n)
      L.manual_seed(1234)
      local run = {threads = n, files = {}, numbers = {}}
      local function emit(values)
        local k = #run.files + 1
        local tensors, numbers = {}, {}
        for name, v in pairs(values) do
          if L.is_tensor(v) then tensors[name] = v else numbers[name] = v end
        end
        run.files[k], run.numbers[k] = ("%s/%d-%d.safetensors"):format(dir, n, k), numbers
        L.save_safetensors(run.files[k], tensors)
      end
      local last = f(emit)
      if last then emit(last) end
      collectgarbage()
      if first then assert_same_bits(what, first, run) else first = run end
    end
  end)
  L.set_num_threads(saved)
  H.rmdir(dir)
  collectgarbage()
  if not ok then error(err, 0) end
end

-- Records a module's parameters and gradients under prefix.
local function record_parameters(values, prefix, m)
  for name, p in m:named_parameters() do
    values[prefix .. name] = p:clone()
    if p.grad then values[prefix .. name .. ".grad"] = p.grad:clone() end
  end
  for name, b in m:named_buffers() do values[prefix .. name] = b:clone() end
end

-- n random classes in 1..k
local function classes(n, k)
  local r, list = L.rand(n):totable(), {}
  for i = 1, n do list[i] = math.min(k, math.floor(r[i] * k) + 1) end
  return L.tensor(list)
end

-- A convolution layer's forward and backward (twice, so gradients accumulate), from a fresh layer.
local function conv_case(cin, cout, k, opts, n, h, w)
  return function()
    local conv = nn.Conv2d(cin, cout, k, opts)
    local x = L.randn(n, cin, h, w)
    local y = conv:forward(x)
    local values = {output = y:clone()}
    local g = L.randn(y:size())
    values.grad_input = conv:backward(x, g):clone()
    conv:backward(x, g * 0.5)
    record_parameters(values, "", conv)
    return values
  end
end

-- `steps` Adam steps of a classifier on one random batch of 32x32 images; each step's logits, loss,
-- gradients, updated weights and running statistics go to emit. Returns the batch.
local function train_steps(model, batch, steps, emit)
  model:train()
  local x, y = L.randn(batch, 3, 32, 32), classes(batch, 10)
  local crit = nn.CrossEntropyLoss()
  local opt = L.optim.Adam(model:parameters(), {lr = 1e-3})
  for _ = 1, steps do
    opt:zero_grad()
    local logits = model:forward(x)
    local values = {logits = logits:clone(), loss = crit:forward(logits, y)}
    model:backward(x, crit:backward(logits, y))
    opt:step()
    record_parameters(values, "", model)
    emit(values)
  end
  return x
end

describe("results at 1, 2, 3 and 4 threads", function()
  it("BasicImageClassifier: several training steps give the same logits, loss, gradients, weights and running statistics", function()
    check("BasicImageClassifier", function(emit)
      local model = L.models.BasicImageClassifier{num_classes = 10, image_size = 32}
      local x = train_steps(model, 16, 3, emit)
      model:eval()
      return {eval_logits = model:forward(x):clone()}
    end)
  end)

  -- oneDNN's weight gradients follow the thread count unless deterministic is on (docs/nn.md): with it,
  -- a batch of 64 is cut into 4 parts at 32x32 to 8x8 and 2 at 4x4 (csrc/core/dnnl/wgrad.c)
  needs_bf16("BasicImageClassifier in bf16-mixed with deterministic on: the same logits, gradients and weights", function()
    L.set_deterministic(true)
    local ok, err = pcall(check, "BasicImageClassifier bf16", function(emit)
      local model = L.models.BasicImageClassifier{num_classes = 10, image_size = 32}
      model:set_precision("bf16")
      train_steps(model, 64, 2, emit)
    end)
    L.set_deterministic(false)
    if not ok then error(err, 0) end
  end)

  it("Trainer: a short fit of BasicImageClassifier gives the same metrics and weights", function()
    local train = S.band_images(64, 1, {classes = 4, channels = 3, size = 16, step = 4, band = 4, noise = 0.3})
    local val = S.band_images(32, 2, {classes = 4, channels = 3, size = 16, step = 4, band = 4, noise = 0.3})
    local dir = H.tmpdir()
    local ok, err = pcall(check, "Trainer fit", function()
      local model = L.models.BasicImageClassifier{num_classes = 4, image_size = 16, learning_rate = 3e-3}
      local trainer = L.Trainer(S.quiet(dir, {max_epochs = 2, num_sanity_val_steps = 0}))
      local train_loader = L.data.DataLoader(train, {batch_size = 16, shuffle = true})
      local val_loader = L.data.DataLoader(val, {batch_size = 16})
      output.capture(trainer.fit, trainer, model, train_loader, val_loader)
      local values = {}
      for name, v in pairs(trainer.callback_metrics) do
        values["metric." .. name] = L.is_tensor(v) and v:item() or v
      end
      assert.is_number(values["metric.val_acc"])
      record_parameters(values, "", model)
      return values
    end)
    H.rmdir(dir)
    if not ok then error(err, 0) end
  end)

  describe("each kernel family", function()
    it("Conv2d: output, input gradient, weight and bias gradients", function()
      -- a 3-channel first layer (K = 27) over an odd batch of several im2col chunks
      check("Conv2d 3->16 3x3 pad 1, 13x3x32x32", conv_case(3, 16, 3, {padding = 1}, 13, 32, 32))
      -- one image per chunk (K = 576)
      check("Conv2d 64->32 3x3 pad 1, 6x64x16x16", conv_case(64, 32, 3, {padding = 1}, 6, 16, 16))
      -- stride 2, many images per chunk
      check("Conv2d 16->24 3x3 stride 2 pad 1, 40x16x20x20", conv_case(16, 24, 3, {stride = 2, padding = 1}, 40, 20, 20))
      -- a large K, no padding, no bias
      check("Conv2d 128->64 3x3 no bias, 9x128x8x8", conv_case(128, 64, 3, {bias = false}, 9, 8, 8))
      -- a large K over a batch of fewer chunks than a power of two
      check("Conv2d 256->16 3x3 pad 1, 5x256x16x16", conv_case(256, 16, 3, {padding = 1}, 5, 16, 16))
      -- a batch smaller than the thread counts
      check("Conv2d 32->32 1x1, 2x32x24x24", conv_case(32, 32, 1, {}, 2, 24, 24))
    end)

    it("Linear: output and gradients, split either way", function()
      local function case(i, o, b)
        return function()
          local fc = nn.Linear(i, o)
          local x = L.randn(b, i)
          local values = {output = fc:forward(x):clone()}
          local g = L.randn(b, o)
          values.grad_input = fc:backward(x, g):clone()
          fc:backward(x, g)
          record_parameters(values, "", fc)
          return values
        end
      end
      check("Linear 300->200, batch 64", case(300, 200, 64))
      check("Linear 1024->10, batch 512", case(1024, 10, 512))
      check("Linear 64->4096, batch 8", case(64, 4096, 8))
      check("Linear 333->77, batch 129", case(333, 77, 129))
    end)

    it("BatchNorm: statistics, running statistics and gradients in both layouts, and the fused BatchNorm-ReLU-pool", function()
      local function case(make_input, bn_of, fused)
        return function()
          local x = make_input()
          local bn = bn_of(x)
          local m = fused and nn.BatchNormReLUMaxPool2d(bn) or bn
          local values = {}
          for step = 1, 2 do
            bn:train()
            local y = m:forward(x)
            values["train" .. step .. ".output"] = y:clone()
            values["train" .. step .. ".grad_input"] = m:backward(x, L.randn(y:size())):clone()
          end
          bn:eval()
          values["eval.output"] = m:forward(x):clone()
          values["eval.grad_input"] = m:backward(x, L.randn(values["eval.output"]:size())):clone()
          record_parameters(values, "", bn)
          return values
        end
      end
      local function nchw() return L.randn(16, 24, 20, 20) * 3 + 1 end
      local function folded()  -- a convolution's output: the batch-folded (C, N, H, W) layout
        local conv = nn.Conv2d(8, 32, 3, {padding = 1})
        return conv:forward(L.randn(16, 8, 16, 16)):clone()
      end
      local function bn2d(x) return nn.BatchNorm2d(x:size(2)) end
      check("BatchNorm2d, NCHW", case(nchw, bn2d))
      check("BatchNorm2d, batch-folded", case(folded, bn2d))
      check("BatchNorm1d, 128x512", case(function() return L.randn(128, 512) end, function() return nn.BatchNorm1d(512) end))
      check("BatchNorm1d, 64x32x40", case(function() return L.randn(64, 32, 40) end, function() return nn.BatchNorm1d(32) end))
      check("BatchNormReLUMaxPool2d, batch-folded", case(folded, bn2d, true))
      check("BatchNormReLUMaxPool2d, NCHW", case(nchw, bn2d, true))
    end)

    it("losses: the loss and its gradient", function()
      check("losses", function()
        local values = {}
        local logits, target = L.randn(4096, 10) * 3, classes(4096, 10)
        local weight = L.rand(10) + 0.5
        for name, crit in pairs {
          ce = nn.CrossEntropyLoss(), ce_smooth = nn.CrossEntropyLoss{label_smoothing = 0.1, weight = weight},
          ce_sum = nn.CrossEntropyLoss{reduction = "sum"}, nll = nn.NLLLoss{weight = weight},
        } do
          values[name] = crit:forward(logits, target)
          values[name .. ".grad"] = crit:backward(logits, target):clone()
        end
        local a, b = L.randn(300, 400), L.randn(300, 400)
        local mse = nn.MSELoss()
        values.mse = mse:forward(a, b)
        values["mse.grad"] = mse:backward(a, b):clone()
        return values
      end)
    end)

    it("metrics: confusion matrix counts and scores", function()
      check("metrics", function()
        local cm = L.metrics.ConfusionMatrix(10)
        for _ = 1, 3 do cm:update(L.randn(5000, 10), classes(5000, 10)) end
        local values = {counts = L.tensor(cm:counts())}
        for _, average in ipairs {"macro", "micro", "weighted"} do
          for k, v in pairs(cm:compute(average)) do values[average .. "." .. k] = v end
        end
        local em = L.metrics.EpochMetrics(10)
        for _ = 1, 3 do em:update(L.randn(777, 10), classes(777, 10), 0.1 + L.rand(1)[1]) end
        for k, v in pairs(em:compute()) do values["epoch." .. k] = v end
        return values
      end)
    end)

    it("tensor reductions: sum, mean, norm, var, std, max over all elements and along dimensions", function()
      check("tensor reductions", function()
        local t = L.randn(300, 1000) * 2 + 0.5
        local columns = t:t()  -- strided rows
        local values = {}
        for _, op in ipairs {"sum", "mean", "norm", "var", "std", "max", "min"} do
          values[op] = t[op](t)
          values[op .. ".dim1"] = t[op](t, 1)
          values[op .. ".dim2"] = t[op](t, 2)
          values[op .. ".t.dim2"] = columns[op](columns, 2)
        end
        values["norm1"] = t:norm(1)
        values["norm3"] = t:norm(3)
        return values
      end)
    end)

    it("gradient norms and clipping, for every norm type", function()
      check("clip_grad_norm", function()
        local values = {}
        for _, p in ipairs {2, 1, 3, math.huge} do
          local params = {L.zeros(300000), L.zeros(1000), L.zeros(70000)}
          for _, q in ipairs(params) do q.grad = L.randn(q:size()) end
          values["total" .. p] = L.optim.clip_grad_norm(params, 1.0, p)
          for i, q in ipairs(params) do values[("grad%d.%s"):format(i, p)] = q.grad:clone() end
        end
        local params = {L.zeros(100000)}
        params[1].grad = L.randn(100000)
        L.optim.clip_grad_value(params, 0.5)
        values.clipped_by_value = params[1].grad:clone()
        return values
      end)
    end)

    it("optimizers: SGD, Adam and AdamW over several steps", function()
      check("optimizers", function()
        local values = {}
        local cases = {
          sgd = function(p) return L.optim.SGD(p, {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 1e-4}) end,
          adam = function(p) return L.optim.Adam(p, {lr = 1e-3, weight_decay = 1e-4}) end,
          adamw = function(p) return L.optim.AdamW(p, {lr = 1e-3, amsgrad = true}) end,
        }
        for _, name in ipairs(sorted_names(cases)) do
          local params = {L.randn(200000), L.randn(300, 300)}
          local opt = cases[name](params)
          for _ = 1, 3 do
            for _, q in ipairs(params) do q.grad = L.randn(q:size()) end
            opt:step()
          end
          for i, q in ipairs(params) do values[name .. i] = q:clone() end
        end
        return values
      end)
    end)

    it("matrix products, pooling, softmax, dropout and activations", function()
      check("other kernels", function()
        local values = {}
        local a, b = L.randn(200, 300), L.randn(300, 250)
        values.mm = L.mm(a, b)
        values.mm_t = L.mm(b:t(), a:t())
        values.bmm = L.bmm(L.randn(3, 100, 200), L.randn(3, 200, 120))
        values.bmm1 = L.bmm(L.randn(1, 100, 200), L.randn(1, 200, 120))
        values.addmm = L.addmm(L.randn(200, 250), a, b)
        local x = L.randn(16, 24, 20, 20)
        for name, m in pairs {maxpool = nn.MaxPool2d(2), avgpool = nn.AvgPool2d(3, {stride = 2, padding = 1}),
          adaptive = nn.AdaptiveAvgPool2d(3), relu = nn.ReLU(), leaky = nn.LeakyReLU(0.1), softmax = nn.Softmax(2),
          log_softmax = nn.LogSoftmax(2), dropout = nn.Dropout(0.3), relu_pool = nn.ReLUMaxPool2d(2)} do
          local y = m:forward(x)
          values[name] = y:clone()
          values[name .. ".grad"] = m:backward(x, L.randn(y:size())):clone()
        end
        return values
      end)
    end)
  end)
end)
