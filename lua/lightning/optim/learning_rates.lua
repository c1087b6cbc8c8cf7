--- The learning rates of an optimizer, one per parameter group (an optimizer of this library, or any
-- table with param_groups, get_lr() or lr). The Trainer, LearningRateMonitor and the models' reports
-- read them here.
return function(opt)
  local rates = {}
  if type(opt.param_groups) == "table" then
    for i, group in ipairs(opt.param_groups) do rates[i] = group.lr end
  elseif type(opt.get_lr) == "function" then
    rates[1] = opt:get_lr()
  elseif opt.lr then
    rates[1] = opt.lr
  end
  return rates
end
