--- Where the Trainer's batches come from: a data module (train_dataloader(), val_dataloader(), ...),
-- loaders given directly, or the LightningModule's own *_dataloader methods. A loader is anything with
-- #loader and loader:iter() yielding (batch_idx, batch), as L.data.DataLoader.
local class = require "lightning.class"
local options = require "lightning.util.options"

local data = {}

local function is_loader(x)
  return type(x) == "table" and type(x.iter) == "function"
end
data.is_loader = is_loader

local function is_datamodule(x)
  return type(x) == "table" and not is_loader(x) and (type(x.train_dataloader) == "function"
    or type(x.val_dataloader) == "function" or type(x.test_dataloader) == "function"
    or type(x.predict_dataloader) == "function")
end
data.is_datamodule = is_datamodule

-- The options of fit, validate, test and predict (checked where they are used).
local RUN_OPTIONS = {ckpt_path = true, train_dataloaders = true, val_dataloaders = true, dataloaders = true,
  datamodule = true, return_predictions = true, verbose = true}

local KIND_OF = {train = "train_dataloader", val = "val_dataloader", test = "test_dataloader",
  predict = "predict_dataloader"}

--- Splits the arguments after the model: (datamodule[, opts]), (loader[, loader][, opts]) or
-- Lightning's keyword table; a nil in a loader's place is skipped (fit(model, loader, nil, opts)).
-- `first` names the loader a plain loader stands for ("train" for fit, "val" for validate, ...).
-- Returns a source {datamodule = dm} or {loaders = {train = ..., val = ...}} and the options.
function data.parse_args(fn, first, a, b, c)
  local where = "Trainer:" .. fn
  local source, opts = {loaders = {}}, nil
  local function options_once(x, y)
    if x ~= nil and y ~= nil then
      options.fail(where, "the options are given twice (arguments 3 and 4): pass one table")
    end
    return x == nil and y or x
  end
  if is_datamodule(a) then
    source = {datamodule = a, loaders = {}}
    opts = options_once(b, c)
  elseif a == nil or is_loader(a) then
    source.loaders[first] = a
    if is_loader(b) then
      if first ~= "train" then options.fail(where, "expected one loader, got two") end
      source.loaders.val = b
      opts = c
    else
      opts = options_once(b, c)
    end
  elseif type(a) == "table" and (a.train_dataloaders or a.val_dataloaders or a.dataloaders or a.datamodule
      or a.ckpt_path ~= nil) then
    -- Lightning's keyword style: {train_dataloaders = ..., val_dataloaders = ..., datamodule = ..., ckpt_path = ...}
    if b ~= nil or c ~= nil then options.fail(where, "nothing may follow the table of options") end
    opts = a
    if a.datamodule then source = {datamodule = a.datamodule, loaders = {}} end
    if a.train_dataloaders then source.loaders.train = a.train_dataloaders end
    if a.val_dataloaders then source.loaders.val = a.val_dataloaders end
    if a.dataloaders then source.loaders[first] = a.dataloaders end
  else
    options.fail(where, "argument 2 must be a data module, a loader (with iter() and #) or a table of " ..
      "options, got %s", class.name_of(a))
  end
  opts = options.check_table(where, opts)
  options.check_names(where, "", opts, RUN_OPTIONS)
  return source, opts
end

--- The loader of a kind ("train", "val", "test", "predict"), or nil when there is none.
function data.loader(trainer, kind)
  local source = trainer._data_source
  local loader = source.loaders and source.loaders[kind]
  if loader == nil and source.datamodule and source.datamodule[KIND_OF[kind]] then
    loader = source.datamodule[KIND_OF[kind]](source.datamodule)
  end
  if loader == nil then
    local module = trainer.lightning_module
    local method = module and module[KIND_OF[kind]]
    if method then loader = method(module) end
  end
  if loader ~= nil and not is_loader(loader) then
    error(("Trainer: the %s loader must have iter() and a length (#loader), got %s"):format(kind, class.name_of(loader)), 0)
  end
  if loader ~= nil then loader = trainer.strategy:process_dataloader(loader, kind) end
  return loader
end

--- How many batches a loop takes from a loader given a limit (count or fraction).
function data.num_batches(loader, limit, option_name)
  local n = #loader
  if math.type(limit) == "integer" then return math.min(n, limit) end
  local limited = math.floor(n * limit)
  if limit > 0 and limited == 0 and n > 0 then
    error(("Trainer: %s = %s of %d batches is less than one batch; raise %s"):format(option_name, tostring(limit), n,
      option_name), 0)
  end
  return limited
end

--- The number of samples in a batch: batch.input's first dimension, or batch.target's.
function data.batch_size(batch)
  if type(batch) == "table" then
    local t = batch.input or batch.target or batch[1]
    if type(t) == "userdata" and t.size then return t:size(1) end
  end
  return 1
end

--- Runs the data module's preparation and setup for a stage (prepare_data once per Trainer).
function data.setup(trainer, stage)
  local dm = trainer._data_source.datamodule
  if dm then
    if dm.prepare_data and not trainer._prepared[dm] then
      dm:prepare_data()
      trainer._prepared[dm] = true
    end
    if dm.setup then dm:setup(stage) end
  end
end

function data.teardown(trainer, stage)
  local dm = trainer._data_source and trainer._data_source.datamodule
  if dm and dm.teardown then dm:teardown(stage) end
end

return data
