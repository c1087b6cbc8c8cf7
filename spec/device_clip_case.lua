-- Clipping whose norm stays on the device (get_total_norm, clip_grads_with_norm): the host's results
-- within float rounding, nothing waits (sync debug mode "error"), mixed devices refused. Raises an error
-- when it fails; shared by device_spec (stand-in) and cuda_spec (a GPU).
return function(L)
  local function params(device)
    L.manual_seed(4)
    local list = {}
    for i, shape in ipairs {{6, 5}, {7}, {2, 3, 4}} do
      list[i] = L.zeros(table.unpack(shape)):to(device)
      list[i].grad = L.randn(table.unpack(shape)):mul(2):to(device)
    end
    return list
  end
  for _, norm_type in ipairs {2, 1, 3, math.huge} do
    local host, dev = params("cpu"), params("cuda")
    local want = L.optim.clip_grad_norm(host, 1.5, norm_type)
    L.cuda.set_sync_debug_mode("error")
    local grads = {}
    for i, p in ipairs(dev) do grads[i] = p.grad end
    local total = L.optim.get_total_norm(grads, norm_type)
    L.optim.clip_grads_with_norm(dev, 1.5, total)
    L.cuda.set_sync_debug_mode("default")
    assert(total:device() == "cuda:0")
    local got = total:cpu()[1]
    assert(math.abs(got - want) <= 1e-5 * want, ("norm %g: %.9g on the device, %.9g on the host"):format(norm_type, got, want))
    for i = 1, #host do
      local d = (dev[i].grad:cpu() - host[i].grad):abs():max()
      assert(d <= 1e-6, ("norm %g, gradient %d: %g"):format(norm_type, i, d))
    end
  end
  local dev = params("cuda")
  local ok, err = pcall(L.optim.get_total_norm, {dev[1].grad, L.ones(2)})
  assert(not ok and err:find("expected cuda:0, got cpu for tensor 2", 1, true), err)
  local bare = L.zeros(3):cuda()   -- no gradient: skipped, and the device is the next one's
  local total = L.optim.get_total_norm({dev[1].grad})
  L.optim.clip_grads_with_norm({bare, dev[1]}, 1, total)
  local on_host = L.zeros(2)
  on_host.grad = L.ones(2)
  ok, err = pcall(L.optim.clip_grads_with_norm, {bare, dev[1], on_host}, 1, total)
  assert(not ok and err:find("expected cuda:0, got cpu for tensor 3 (the device of tensor 2)", 1, true), err)
  ok, err = pcall(L.optim.clip_grads_with_norm, dev, 1, L.ones(1))
  assert(not ok and err:find("expected cuda:0, got cpu for the total norm", 1, true), err)
end
