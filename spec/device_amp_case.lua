-- The loss scaler's kernels on the device (lightning.core.optim.amp_unscale, amp_update_scale, and
-- L.amp.GradScaler over them): the host's results, nothing waits but the step's one read (sync debug
-- mode "error" around the rest), mixed devices refused. Raises an error when it fails; shared by
-- cuda_mixed_spec (stand-in) and cuda_spec (a GPU).
return function(L)
  local C = L.core.optim
  local function grads(device)
    L.manual_seed(6)
    return {L.randn(1000):mul(300):to(device), L.randn(7, 3):to(device), L.randn(70000):to(device)}
  end
  for _, poison in ipairs {false, true} do
    local host, dev = grads("cpu"), grads("cuda")
    if poison then
      host[3][69999] = 0 / 0
      dev[3]:narrow(1, 69999, 1):fill(0 / 0)
    end
    local hf, df = L.zeros(1), L.zeros(1):cuda()
    C.amp_unscale(host, L.tensor{1 / 1024}, hf)
    L.cuda.set_sync_debug_mode("error")
    C.amp_unscale(dev, L.tensor{1 / 1024}:cuda(), df)
    local scale, tracker = L.tensor{2048}:cuda(), L.tensor{4}:cuda()
    C.amp_update_scale(scale, tracker, df, 2, 0.5, 5)
    L.cuda.set_sync_debug_mode("default")
    assert(df:cpu()[1] == hf[1], ("found_inf %g on the device, %g on the host"):format(df:cpu()[1], hf[1]))
    assert(df:cpu()[1] == (poison and 1 or 0))
    for i = 1, #host do   -- (a NaN differs from itself: the poisoned element counts once)
      local differ = dev[i]:cpu():ne(host[i]):sum() - (poison and i == 3 and 1 or 0)
      assert(differ == 0, ("gradient %d: %d elements differ from the host's"):format(i, differ))
    end
    local want_scale, want_tracker = poison and 1024 or 4096, 0
    assert(scale:cpu()[1] == want_scale and tracker:cpu()[1] == want_tracker,
      ("scale %g, tracker %g"):format(scale:cpu()[1], tracker:cpu()[1]))
  end
  local ok, err = pcall(C.amp_unscale, {L.ones(3):cuda()}, L.tensor{1}, L.zeros(1):cuda())
  assert(not ok and err:find("expected cuda:0, got cpu", 1, true), err)
  -- the scaler: its tensors where the loss is, one read a step
  local model = L.nn.Linear(4, 3):cuda()
  local opt = L.optim.SGD(model:parameters(), {lr = 0.1})
  local scaler = L.amp.GradScaler{init_scale = 512}
  local loss = L.nn.CrossEntropyLoss()(model(L.randn(5, 4):cuda()), L.tensor{1, 2, 3, 1, 2}:cuda())
  L.cuda.set_sync_debug_mode("error")
  scaler:scale(loss):backward()
  scaler:unscale_(opt)
  L.cuda.set_sync_debug_mode("default")
  scaler:step(opt)
  L.cuda.set_sync_debug_mode("error")
  scaler:update()
  L.cuda.set_sync_debug_mode("default")
  assert(scaler:get_scale() == 512)
end
