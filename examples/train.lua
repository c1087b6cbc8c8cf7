#!/usr/bin/env lua5.4
--- train.lua: trains the reference image classifier, as the original project's train.py.
--   lua examples/train.lua --cifar10                    CIFAR-10 at 32x32 from ./data (downloaded when missing)
--   lua examples/train.lua --fashion_mnist --max_epochs 5
--   lua examples/train.lua --data_dir my_images         a folder with one sub-folder of PNGs per class
--   lua examples/train.lua --cifar10 --resume last      continue the last run (or --resume <checkpoint>)
--   lua examples/train.lua --cifar10 --nproc 2          data-parallel: 2 processes under mpirun, one thread
--                                                       each, --batch_size per process (docs/distributed.md)
--   lua examples/train.lua --cifar10 --accelerator gpu  on the NVIDIA GPU (the default, auto, takes it when
--                                                       there is one; docs/gpu.md)
--   lua examples/train.lua --cifar10 --recipe airbench94 --precision bf16-mixed
--                                                       airbench's recipe (lightning/recipes/airbench94.lua,
--                                                       L.models.AirNet): all 50,000 training images, 9.9
--                                                       epochs at batch 1024, the test set with test-time
--                                                       augmentation at the end
-- Writes <output_dir>/<experiment_name>/version_N/, one version per run as Lightning lays it out:
-- checkpoints/ (the top 3 by --monitor and last.safetensors), TensorBoard events, metrics.csv,
-- hparams.yaml and plots/ (metrics.png, confusion_matrix.png, samples.png). --resume last continues
-- the experiment from its newest version's checkpoint, into a new version. Prints the original's
-- running report (the model and data blocks, the first batch of each epoch in detail, epoch
-- summaries) unless --quiet. Ctrl-C stops after the batch, saves the state and says how to resume.
-- examples/predict.lua classifies images with the checkpoints.
-- Installed by the rock as the command `lightning-train`.

-- From a checkout, use its Lua files and build (see checkout.lua).
do
  local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
  local checkout = loadfile(dir .. "/checkout.lua")
  if checkout then checkout(dir) end
end

local argparse = require "argparse"
local L = require "lightning"
local output = require "lightning.util.output"
local cli = require "lightning.cli"
local recipes = require "lightning.recipes"
local download = require "lightning.data.download"
local precision = require "lightning.precision"
local checkpoint = require "lightning.trainer.checkpoint"
local json = require "lightning.util.json"

local RULE = ("="):rep(60)
local say = output.print

local function number_or_fraction(text)
  local v = tonumber(text)
  if not v then return nil, "expected a number, got " .. text end
  return v
end

-- --precision, checked when the command line is read (before any data loads) as the Trainer checks it;
-- fp16 (16-mixed) needs a GPU: without one it points to bf16-mixed, the CPU's half precision.
local FP16 = {fp16 = true, float16 = true, half = true, ["16-true"] = true}
local function precision_choice(text)
  local fp16 = precision.canonical(text) == "16-mixed" or FP16[text:lower()]
  if fp16 then   -- (only then is the GPU module asked for)
    local gpu, why = L.cuda.is_available()
    if not gpu then
      return nil, ("--precision %s: fp16 is not supported on a CPU (%s): use --precision bf16-mixed (bf16 compute, "
        .. "float32 weights), or 32"):format(text, why)
    end
  end
  if precision.canonical(text) then return text end
  if fp16 then return nil, ("--precision %s: say --precision 16-mixed (fp16 compute with a loss scaler, float32 weights)")
    :format(text) end
  -- the Trainer's words, as the command line says them
  return nil, (precision.problem(text):gsub('^precision %b""', function() return "--precision " .. text end)
    :gsub("precision = ", "--precision "):gsub('"', ""))
end

-- --devices: "auto" or 1, as the Trainer takes it
local function devices_choice(text)
  local value = text == "auto" and text or math.tointeger(tonumber(text))
  if L.accelerators.devices_problem(value) then
    return nil, ("--devices must be auto or 1 (one device per process; several processes: --nproc), got %s"):format(text)
  end
  return value
end

-- --cuda_graph's words as the Trainer's option: "auto", true or false.
local function cuda_graph_choice(text)
  if text == "auto" then return text end
  if text == "true" or text == "false" then return text == "true" end
  return nil, ("--cuda_graph must be auto, true or false, got %s"):format(text)
end

-- "2 replayed from 1 CUDA graph" after `before` when the Trainer replayed steps (Trainer{cuda_graph}), else "".
local function graph_note(trainer, before)
  local stats = trainer.cuda_graph_stats
  if not stats or stats.replays == 0 then return "" end
  return ("%s%d replayed from %d CUDA graph%s"):format(before, stats.replays, stats.captures,
    stats.captures == 1 and "" or "s")
end

local function build_parser()
  local name = (arg and arg[0] or "train.lua"):match("[^/]*$")
  local p = argparse(name, "Train the reference image classifier (the original train.py in Lua).")
  p:help_max_width(100)
  -- data
  p:flag("--cifar10 --use_cifar10", "Train on CIFAR-10 (binary batches under --data_root).")
  p:flag("--fashion_mnist", "Train on Fashion-MNIST (IDX files under --data_root).")
  p:option("--data_dir", "A folder of class folders of PNG images (train/ and test/ inside are used when present).")
  p:option("--data_root", "The folder that holds (or receives) cifar-10-batches-bin/ or the Fashion-MNIST files "
    .. "(default: ./data for CIFAR-10; Debian's /usr/share/datasets/fashion-mnist for Fashion-MNIST).")
  p:flag("--no_download", "Do not fetch CIFAR-10 when its files are missing (by default it is downloaded into "
    .. "--data_root, as torchvision's download=True).")
  p:option("--image_size", "Image size (default: the data set's own, rounded up to a multiple of 16; for a folder its "
    .. "images' own when they all have one square size, else 224).")
    :convert(tonumber)
  p:option("--batch_size", "Batch size.", "32"):convert(tonumber)
  p:option("--val_split", "Share of the training data used for training (the rest validates).", "0.8"):convert(tonumber)
  p:option("--num_workers", "Data loading threads.", "2"):convert(tonumber)
  p:option("--augmentation", "Training augmentation.", "crop_flip"):choices({"crop_flip", "flip_rotate_jitter",
    "flip_translate", "none"})
  -- model and optimization
  p:option("--max_epochs", "Maximum number of epochs.", "50"):convert(tonumber)
  p:option("--learning_rate", "Learning rate.", "0.001"):convert(tonumber)
  p:option("--weight_decay", "Weight decay.", "0"):convert(tonumber)
  p:option("--optimizer", "Optimizer.", "adam"):choices({"adam", "adamw", "sgd"})
  p:option("--momentum", "Momentum (sgd).", "0.9"):convert(tonumber)
  p:option("--scheduler", "Learning-rate scheduler.", "none"):choices({"none", "step", "cosine", "plateau", "onecycle"})
  p:option("--dropout_rate", "Dropout rate.", "0.5"):convert(tonumber)
  p:option("--label_smoothing", "Label smoothing of the cross-entropy loss.", "0"):convert(tonumber)
  p:option("--gradient_clip_val", "Clip gradients to this total norm (0: off).", "0"):convert(tonumber)
  p:option("--accumulate_grad_batches", "Accumulate gradients over this many batches.", "1"):convert(tonumber)
  p:option("--precision", "Numeric precision: 32 (float32), bf16-mixed (bf16 compute, float32 weights) or, on a " ..
    "GPU, 16-mixed (fp16 compute with a loss scaler); Lightning's names, also 32-true, bf16 and 16.", "32")
    :convert(precision_choice)
  local helps = {}
  for i, name in ipairs(recipes.names()) do helps[i] = recipes.get(name).help end
  p:option("--recipe", "A recipe of the model zoo instead of the reference model (lua/lightning/recipes/): "
    .. table.concat(helps, "; ") .. "; options given on the command line win."):choices(recipes.names())
  -- callbacks
  p:option("--early_stopping_patience", "Epochs without improvement before stopping.", "10"):convert(tonumber)
  p:option("--min_delta", "Smallest change that counts as an improvement.", "0"):convert(tonumber)
  p:option("--monitor", "Metric that early stopping and checkpoints watch.", "val_loss")
  p:option("--save_top_k", "How many best checkpoints to keep (-1: all, 0: none).", "3"):convert(tonumber)
  -- run
  p:option("--seed", "Random seed.", "42"):convert(tonumber)
  p:option("--output_dir", "Where the experiments' folders go (<output_dir>/<experiment_name>/version_N).", "outputs")
  p:option("--experiment_name", "The experiment: its runs' folder under --output_dir.", "image_classifier")
  p:option("--resume", "Resume from a checkpoint file, or \"last\" (the experiment's newest checkpoint).")
  p:flag("--test", "Test the best checkpoint after training.")
  p:flag("--quiet", "Leave out the original's running report (the INITIALIZING MODEL and data blocks, the first "
    .. "batch of each epoch with the forward pass's statistics, the epoch summaries).")
  p:flag("--debug", "More for debugging: the gradient-flow report, early stopping's reasoning, and errors with "
    .. "their traceback.")
  p:option("--fast_dev_run", "Run N (default 1) batches of training and validation as a check."):args("?")
  p:option("--limit_train_batches", "Training batches per epoch: a count, or a fraction such as 0.1."):convert(number_or_fraction)
  p:option("--limit_val_batches", "Validation batches per check: a count, or a fraction such as 0.1."):convert(number_or_fraction)
  p:option("--limit_test_batches", "Test batches: a count, or a fraction such as 0.1."):convert(number_or_fraction)
  p:option("--val_check_interval", "Validate after this fraction of an epoch (0.25: four times per epoch) or this many "
    .. "training batches (an integer); 1.0 (default): once per epoch."):convert(number_or_fraction)
  p:option("--check_val_every_n_epoch", "Validate after every n-th epoch.", "1"):convert(tonumber)
  p:option("--accelerator", "Where to compute: auto (the GPU when there is one, else the CPU), cpu, or gpu / cuda "
    .. "(the NVIDIA GPU; refused when none is available).", "auto"):choices(L.accelerators.NAMES)
  p:option("--devices", "Devices per process: auto or 1 (more devices: more processes, --nproc).", "auto")
    :convert(devices_choice)
  p:option("--cuda_graph", "On the GPU, run each training step as the replay of a CUDA graph captured once: auto "
    .. "(where the step allows it), true (fails naming what does not), false.", "auto"):convert(cuda_graph_choice)
  p:option("--num_threads", "Compute threads (default: all cores; 1 per process with --nproc)."):convert(tonumber)
  p:option("--nproc", "Train with N processes (data-parallel over MPI): starts mpirun with them, as root with "
    .. "--allow-run-as-root, oversubscribed when N exceeds the cores. --batch_size is per process."):convert(tonumber)
  p:flag("--no_progress_bar", "No progress bar (a line per epoch instead).")
  return p
end

-- --name must be an integer of at least min (and at most 2^53, where floats still count in ones).
local function integer(args, name, min)
  local v = args[name]
  if v == nil then return end
  local n = math.tointeger(v)
  if not n or n < min or n > 2 ^ 53 then
    error(("--%s must be an integer >= %d%s, got %s"):format(name, min, math.abs(v) > 2 ^ 53 and " and at most 2^53" or "",
      tostring(v)), 0)
  end
  args[name] = n
end

-- Whether --name was given on the command line (as "--name v" or "--name=v").
local function given(name)
  for _, word in ipairs(arg or {}) do
    if word == "--" .. name or word:sub(1, #name + 3) == "--" .. name .. "=" then return true end
  end
  return false
end

-- The recipe's defaults, for the options the command line leaves out.
local function apply_recipe(args)
  if not args.recipe then return end
  for k, v in pairs(recipes.get(args.recipe).defaults) do
    if not given(k) then args[k] = v end
  end
end

-- Whether --monitor names a validation metric that no validation will log (--val_split 1: every image
-- trains).
local function watches_validation(args)
  return args.val_split == 1 and args.monitor:match("^val_") ~= nil
end

-- Whether a --data_dir folder holds its own test set (train/ beside test/ or val/, as ImageDataModule reads it).
local function has_test_folder(dir)
  local kind = L.core.io.file_type
  return kind(dir .. "/train") == "directory" and (kind(dir .. "/test") == "directory" or kind(dir .. "/val") == "directory")
end

local function check_args(args)
  local chosen = (args.cifar10 and 1 or 0) + (args.fashion_mnist and 1 or 0) + (args.data_dir and 1 or 0)
  if chosen == 0 then error("choose the data: --cifar10, --fashion_mnist or --data_dir <folder>", 0) end
  if chosen > 1 then error("choose one data set: --cifar10, --fashion_mnist and --data_dir exclude each other", 0) end
  local recipe = args.recipe and recipes.get(args.recipe)
  if recipe and not args[recipe.dataset] then
    error(("--recipe %s trains on %s: add --%s"):format(recipe.name, recipe.dataset_title, recipe.dataset), 0)
  end
  if args.recipe and not (args.max_epochs > 0) then
    error(("--max_epochs must be positive, got %s"):format(tostring(args.max_epochs)), 0)
  end
  local integers = {batch_size = 1, num_workers = 0, max_epochs = 1, accumulate_grad_batches = 1,
    early_stopping_patience = 0, save_top_k = -1, seed = 0, num_threads = 1, image_size = 16,
    check_val_every_n_epoch = 1}
  if args.recipe then integers.max_epochs = nil end   -- (a recipe counts steps: 9.9 epochs are 476 of them)
  for name, min in pairs(integers) do integer(args, name, min) end
  if not (args.gradient_clip_val >= 0 and args.gradient_clip_val < math.huge) then
    error(("--gradient_clip_val must be a number >= 0 (0: no clipping), got %s"):format(tostring(args.gradient_clip_val)), 0)
  end
  if args.test and args.val_split == 1 and args.data_dir and not has_test_folder(args.data_dir) then
    error(("--test with --val_split 1 (every image trains) needs a test set: %s has no train/ folder beside a test/ "
      .. "or val/ one"):format(args.data_dir), 0)
  end
  if not args.recipe and watches_validation(args) and args.scheduler == "plateau" then
    error(("--scheduler plateau watches --monitor %s, which nothing logs with --val_split 1 (no validation): "
      .. "choose --monitor train_loss, or another scheduler"):format(args.monitor), 0)
  end
  if args.image_size and args.image_size % 16 ~= 0 then
    error(("--image_size must be a multiple of 16 (the network pools four times), got %d"):format(args.image_size), 0)
  end
  if args.fast_dev_run then
    local n = args.fast_dev_run[1]
    args.fast_dev_run = n == nil and true or math.tointeger(tonumber(n))
    if args.fast_dev_run == nil then error("--fast_dev_run takes a number of batches, got " .. n, 0) end
  else
    args.fast_dev_run = false
  end
end

-- The device block: whether a GPU is available and used (the original's device detection: its name,
-- memory, compute capability, driver, cuDNN and cuBLASLt), then the CPU's lines.
local function print_device(accelerator)
  say(RULE)
  say("DEVICE")
  say(RULE)
  for _, line in ipairs(L.accelerators.describe(accelerator)) do say(line) end
  say(("lightning %s on %s"):format(L.info().version, _VERSION))
  say(RULE)
end

local function print_config(args)
  local names = {}
  for k, v in pairs(args) do if type(v) ~= "table" and type(v) ~= "function" then names[#names + 1] = k end end
  table.sort(names)
  say("CONFIGURATION")
  say(RULE)
  for _, k in ipairs(names) do say(("%-26s %s"):format(k, tostring(args[k]))) end
  say(RULE)
end

-- (a folder's images give their own size when they agree: folder_image_size)
local NATIVE_SIZE = {cifar10 = 32, fashion_mnist = 28, folder = 224}

-- Options that change what is printed, not the run: left out of the saved configuration.
local DISPLAY_ONLY = {debug = true, quiet = true, no_progress_bar = true, cifar10 = true, fashion_mnist = true}

--- The whole run configuration, for the checkpoints and the loggers (hparams.yaml, TensorBoard's
-- HPARAMS): every option that shapes the run, the data set and the image size used.
local function run_config(args, dataset, size)
  -- the processes (--nproc, which the processes started under mpirun no longer see) and the batch of a step
  local nproc = L.distributed.world_size()
  local config = {dataset = dataset, image_size = size, nproc = nproc, global_batch_size = args.batch_size * nproc}
  for k, v in pairs(args) do
    if not DISPLAY_ONLY[k] and config[k] == nil and type(v) ~= "table" then config[k] = v end
  end
  return config
end

-- The sizes of the PNG images under dir, from their headers ({["HxW"] = count}; hidden entries and what
-- is not a regular file skipped, as ImageFolder reads the folder).
local function png_sizes(dir)
  local sizes, io_core = {}, L.core.io
  local function walk(folder)
    local ok, names = pcall(io_core.listdir, folder)
    for _, name in ipairs(ok and names or {}) do
      local path = folder .. "/" .. name
      local kind = name:sub(1, 1) ~= "." and io_core.file_type(path)
      if kind == "directory" then
        walk(path)
      elseif kind == "file" and name:lower():match("%.png$") then
        local f = io.open(path, "rb")
        local head = f and f:read(24)
        if f then f:close() end
        if head and #head == 24 and head:sub(13, 16) == "IHDR" then
          local w, h = string.unpack(">I4I4", head, 17)
          local key = ("%dx%d"):format(h, w)
          sizes[key] = (sizes[key] or 0) + 1
        end
      end
    end
  end
  walk((dir:gsub("(.)/+$", "%1")))
  return sizes
end

--- A folder's image size without --image_size: the images' own when they all have one square size
-- (rounded up to a multiple of 16), else NATIVE_SIZE.folder; and a line that says which and why.
local function folder_image_size(dir)
  local sizes, keys = png_sizes(dir), {}
  for key in pairs(sizes) do keys[#keys + 1] = key end
  table.sort(keys, function(a, b) return sizes[a] > sizes[b] or (sizes[a] == sizes[b] and a < b) end)
  local default = NATIVE_SIZE.folder
  if #keys == 0 then return default end   -- (ImageFolder says what is wrong with the folder)
  local h, w = keys[1]:match("^(%d+)x(%d+)$")
  h, w = tonumber(h), tonumber(w)
  if #keys == 1 and h == w then
    local size = 16 * math.ceil(h / 16)
    if size == h then
      return size, ("Image size: %dx%d, the images' own (choose another with --image_size)"):format(size, size)
    end
    return size, ("Image size: %dx%d: the images' %dx%d rounded up to a multiple of 16 (the network pools four times; "
      .. "choose another with --image_size)"):format(size, size, h, w)
  end
  local listed = {}
  for i = 1, math.min(#keys, 3) do listed[i] = ("%s (%d)"):format(keys[i], sizes[keys[i]]) end
  local why = #keys == 1 and ("the images are %s, not square"):format(keys[1])
    or ("the images have %d sizes: %s%s"):format(#keys, table.concat(listed, ", "), #keys > 3 and ", ..." or "")
  return default, ("Image size: %dx%d, the default for folders: %s; all are resized (choose the size with "
    .. "--image_size)"):format(default, default, why)
end

-- What a checkpoint must share with this run for --resume: the data it learnt and the network's shape.
local SAME_DATA = {"dataset", "image_size", "in_channels", "num_classes"}

-- How hparams (a checkpoint's) differ from the model's in SAME_DATA: {"image_size 16 (this run: 32)", ...}.
local function data_differences(hparams, model)
  local differences = {}
  for _, key in ipairs(SAME_DATA) do
    if hparams[key] ~= nil and hparams[key] ~= model.hparams[key] then
      differences[#differences + 1] = ("%s %s (this run: %s)"):format(key, tostring(hparams[key]),
        tostring(model.hparams[key]))
    end
  end
  return differences
end

-- The newest last checkpoint of this data in the experiment's versions (for the advice), or nil.
local function newest_of_this_data(trainer, model)
  local cb = trainer and trainer.checkpoint_callback
  local folders = cb and cb.resume_folders and cb:resume_folders() or {}
  for _, folder in ipairs(folders) do
    local ok, path = pcall(checkpoint.find_last, {folder})
    local meta = ok and path and checkpoint.read_metadata(path)
    local decoded, hparams = pcall(json.decode, meta and meta.hparams or "")
    if decoded and type(hparams) == "table" and #data_differences(hparams, model) == 0 then return path end
  end
  return nil
end

--- An on_load_checkpoint for the model: a checkpoint of other data (a Fashion-MNIST run's, found by
-- --resume last in an experiment that CIFAR-10 shares) is refused by name before its weights load,
-- naming the newest checkpoint of this data in the experiment when there is one.
local function refuse_other_data(model)
  return function(self, ckpt)
    local differences = data_differences(ckpt.hparams or {}, model)
    if #differences == 0 then return end
    local mine = newest_of_this_data(self.trainer, model)
    error(("--resume: %s is a checkpoint of other data or another network: %s. %s, or leave out --resume to start "
      .. "anew"):format(tostring(self.trainer and self.trainer.ckpt_path), table.concat(differences, ", "),
      mine and ("The newest checkpoint of this data there is %s: --resume %s"):format(mine, mine)
        or "Resume a run of this data (its --experiment_name, or --resume <its checkpoint>)"), 0)
  end
end

local function data_module(args)
  local dataset = args.cifar10 and "cifar10" or args.fashion_mnist and "fashion_mnist" or "folder"
  local size = args.image_size or 16 * math.ceil(NATIVE_SIZE[dataset] / 16)
  if dataset == "folder" and not args.image_size then
    local note
    size, note = folder_image_size(args.data_dir)
    if note then say(note) end
  end
  local root = args.data_root or (dataset == "cifar10" and "./data" or nil)   -- nil: the data set's default
  return L.data.ImageDataModule{dataset = dataset, data_dir = args.data_dir, data_root = root,
    image_size = size, batch_size = args.batch_size, num_workers = args.num_workers, val_split = args.val_split,
    seed = args.seed, augmentation = args.augmentation, augment = args.augmentation ~= "none", debug = not args.quiet,
    download = dataset == "cifar10" and not args.no_download, output = say,
    drop_last = args.recipe ~= nil and recipes.get(args.recipe).drop_last == true},
    size, dataset
end

local trainer   -- (for the traceback of a failed run)

-- --nproc N: this script again as N processes under mpirun (its exit status is this one's); under
-- mpirun only global rank 0 prints.
local function launch_processes(args)
  integer(args, "nproc", 1)
  integer(args, "num_threads", 1)
  if args.nproc and not L.distributed.launched() then
    io.stdout:flush()
    os.exit(L.distributed.launch.relaunch(args.nproc, {threads = args.num_threads, command = cli.invocation(arg)}))
  end
  if L.distributed.rank() ~= 0 then output.set(function() end) end
end

-- Prints each epoch's wall time, the time since the start and the training metrics (after the module's
-- epoch hook has logged them).
local RecipeClock = L.class("RecipeClock", L.Callback)
RecipeClock.is_monitoring_callback = true
function RecipeClock:__init(started) self.started = started end
function RecipeClock:on_train_epoch_start() self.epoch_started = L.now() end
function RecipeClock:on_train_epoch_end(trainer)
  local m, now = trainer.callback_metrics, L.now()
  say(("epoch %d: %.1f s, %.1f s since the start, step %d, train_loss %.4f, train_acc %.4f"):format(
    trainer.current_epoch, now - self.epoch_started, now - self.started, trainer.global_step,
    m.train_loss_epoch or m.train_loss or 0 / 0, m.train_acc or 0 / 0))
end

-- The batches per epoch the trainer will take: the loader's (drop_last) within --limit_train_batches.
local function batches_per_epoch(args, dm)
  local n = #dm.train_set // args.batch_size
  local limit = args.limit_train_batches
  if math.type(limit) == "integer" then return math.min(n, limit) end
  if limit then return math.floor(n * limit) end
  return n
end

--- --recipe <name> (lightning.recipes; airbench94: L.models.AirNet): the recipe's model trained on every
-- training image for --max_epochs (9.9: a number of steps, ceil(48 x 9.9) = 476 at batch 1024, as
-- bench/airbench_torch.py counts them), no validation, then the test set with test-time augmentation.
local function train_recipe(args, dm, size, dataset)
  local started = L.now()
  local model = recipes.get(args.recipe).model(args, dm, size)
  model:save_hyperparameters(run_config(args, dataset, size))
  model.on_load_checkpoint = refuse_other_data(model)
  local per_epoch = batches_per_epoch(args, dm)
  if per_epoch < 1 then
    error(("--limit_train_batches %s leaves the recipe no training batch per epoch (of %d images at batch %d): "
      .. "give it at least 1"):format(tostring(args.limit_train_batches), #dm.train_set, args.batch_size), 0)
  end
  local max_steps = math.ceil(per_epoch * args.max_epochs)
  say(("%s: %d steps (%d per epoch x %g epochs) of batch %d on all %d training images; no validation; "
    .. "the test set with test-time augmentation at the end"):format(args.recipe, max_steps, per_epoch, args.max_epochs,
    args.batch_size, #dm.train_set))
  local logs = args.output_dir
  local tensorboard = L.loggers.TensorBoardLogger{save_dir = logs, name = args.experiment_name}
  local csv = L.loggers.CSVLogger{save_dir = logs, name = args.experiment_name, version = tensorboard.version}
  local plots = tensorboard.log_dir .. "/plots"
  local callbacks = {
    -- in the logger's version folder: <output_dir>/<experiment_name>/version_N/checkpoints
    L.callbacks.ModelCheckpoint{save_top_k = args.save_top_k, save_last = true},
    L.callbacks.LearningRateMonitor{logging_interval = "step"},
    RecipeClock(started),
    L.plot.PlotCallback{dirpath = plots},
  }
  if args.no_progress_bar then
    callbacks[#callbacks + 1] = L.callbacks.ProgressBar{terminal = false, log_every_n_steps = math.maxinteger}
  end
  trainer = L.Trainer{max_epochs = math.ceil(args.max_epochs), max_steps = max_steps, default_root_dir = args.output_dir,
    callbacks = callbacks, logger = {tensorboard, csv}, precision = args.precision, deterministic = true,
    accelerator = args.accelerator, devices = args.devices, cuda_graph = args.cuda_graph,
    limit_train_batches = args.limit_train_batches, limit_test_batches = args.limit_test_batches,
    fast_dev_run = args.fast_dev_run}
  trainer:fit(model, dm, {ckpt_path = args.resume})
  if trainer.nothing_to_train then return end   -- (the Trainer said so; no new version, no test)
  local trained = L.now()
  local result = trainer:test(model, dm)[1]
  local finished = L.now()
  say(RULE)
  say(("Training: %d steps%s in %.1f s; test with test-time augmentation (tta=%d): %.1f s; total %.1f s"):format(
    trainer.global_step, graph_note(trainer, ", "), trained - started, model.hparams.tta, finished - trained,
    finished - started))
  say(("Final test accuracy with TTA: %.4f"):format(result.test_acc or 0 / 0))
  say(("Logs: %s (tensorboard --logdir %s); plots: %s"):format(tensorboard.log_dir, logs, plots))
  say(RULE)
end

local function main(args)
  apply_recipe(args)
  check_args(args)   -- (before mpirun starts N processes that would each fail)
  local accelerator = cli.accelerator(args)
  launch_processes(args)
  L.manual_seed(args.seed)
  if args.num_threads then L.set_num_threads(args.num_threads) end
  print_device(accelerator)
  print_config(args)

  local dm, size, dataset = data_module(args)
  local ok, err = pcall(dm.prepare_data, dm)
  if not ok then   -- the library's advice for turning the download on, as this command line says it
    error((tostring(err):gsub(download.DOWNLOAD_HINT:gsub("%p", "%%%0"), "leave out --no_download to fetch them")), 0)
  end
  dm:setup("fit")
  if args.recipe then return train_recipe(args, dm, size, dataset) end
  local model = L.models.BasicImageClassifier{num_classes = dm.num_classes, in_channels = dm.in_channels,
    image_size = size, dropout_rate = args.dropout_rate, learning_rate = args.learning_rate,
    weight_decay = args.weight_decay, optimizer = args.optimizer, momentum = args.momentum,
    scheduler = args.scheduler, monitor = args.monitor, label_smoothing = args.label_smoothing,
    debug = not args.quiet}
  -- with the model's own hyper-parameters (and the data's class names and normalisation, which it adds
  -- at setup) in every checkpoint and logger
  model:save_hyperparameters(run_config(args, dataset, size))
  model.on_load_checkpoint = refuse_other_data(model)

  local mode = args.monitor:find("loss") and "min" or "max"
  local callbacks = {L.callbacks.LearningRateMonitor{logging_interval = "epoch"}}
  if watches_validation(args) then
    -- nothing validates: no early stopping, and the checkpoints keep the latest epoch
    say(("--val_split 1: every image trains and nothing validates, so no early stopping on %s, and the checkpoints "
      .. "keep the latest epoch instead of the best by %s"):format(args.monitor, args.monitor))
    callbacks[#callbacks + 1] = L.callbacks.ModelCheckpoint{save_top_k = math.min(args.save_top_k, 1), save_last = true}
  else
    -- in the logger's version folder: <output_dir>/<experiment_name>/version_N/checkpoints
    callbacks[#callbacks + 1] = L.callbacks.ModelCheckpoint{filename = "{epoch}-{" .. args.monitor .. ":.4f}",
      monitor = args.monitor, mode = mode, save_top_k = args.save_top_k, save_last = true}
    callbacks[#callbacks + 1] = L.callbacks.EarlyStopping{monitor = args.monitor, mode = mode,
      patience = args.early_stopping_patience, min_delta = args.min_delta, verbose = args.debug}
  end
  if args.debug then callbacks[#callbacks + 1] = L.callbacks.GradientFlowMonitor{report_each_epoch = true} end
  if args.no_progress_bar then
    -- no bar and no step lines: one summary line per epoch
    callbacks[#callbacks + 1] = L.callbacks.ProgressBar{terminal = false, log_every_n_steps = math.maxinteger}
  end
  local logs = args.output_dir
  local tensorboard = L.loggers.TensorBoardLogger{save_dir = logs, name = args.experiment_name}
  local csv = L.loggers.CSVLogger{save_dir = logs, name = args.experiment_name, version = tensorboard.version}
  -- the run's charts (metrics, confusion matrix, augmented samples) next to its logs
  local plots = tensorboard.log_dir .. "/plots"
  callbacks[#callbacks + 1] = L.plot.PlotCallback{dirpath = plots}

  trainer = L.Trainer{
    max_epochs = args.max_epochs, default_root_dir = args.output_dir, callbacks = callbacks,
    logger = {tensorboard, csv}, precision = args.precision, deterministic = true,
    accelerator = args.accelerator, devices = args.devices, cuda_graph = args.cuda_graph,
    gradient_clip_val = args.gradient_clip_val > 0 and args.gradient_clip_val or nil,
    accumulate_grad_batches = args.accumulate_grad_batches, fast_dev_run = args.fast_dev_run,
    limit_train_batches = args.limit_train_batches, limit_val_batches = args.limit_val_batches,
    limit_test_batches = args.limit_test_batches, val_check_interval = args.val_check_interval,
    check_val_every_n_epoch = args.check_val_every_n_epoch,
  }
  local started = L.now()
  trainer:fit(model, dm, {ckpt_path = args.resume})
  local diverged = trainer.diverged
  if diverged then
    error(("training diverged: %s is %s at epoch %d, global step %d (lower --learning_rate, or clip with " ..
      "--gradient_clip_val)"):format(diverged.what, diverged.value ~= diverged.value and "NaN" or tostring(diverged.value),
      diverged.epoch, diverged.global_step), 0)
  end
  local best = trainer.checkpoint_callback.best_model_path
  local score = trainer.checkpoint_callback.best_model_score
  if not trainer.nothing_to_train then
    say(RULE)
    local function plural(n, word) return ("%d %s%s"):format(n, word, n == 1 and "" or "s") end
    say(("Training finished after %s (%s%s) in %.1f s"):format(plural(trainer.current_epoch, "epoch"),
      plural(trainer.global_step, "step"), graph_note(trainer, "; "), L.now() - started))
    if best ~= "" then
      say(("%s checkpoint: %s%s"):format(score and "Best" or "Latest", best,
        score and (" (%s = %.4f)"):format(args.monitor, score) or ""))
    end
    say(("Logs: %s (tensorboard --logdir %s)"):format(tensorboard.log_dir, logs))
    say(("Plots: %s (metrics.png, confusion_matrix.png, samples.png)"):format(plots))
    say(RULE)
  end
  if args.test then
    say(best ~= "" and ("Testing the best checkpoint: %s"):format(best)
      or "Testing the model as training left it (no checkpoint was saved)")
    trainer:test(model, dm, {ckpt_path = best ~= "" and best or nil})
  end
end

local parser = build_parser()
local args = parser:parse(cli.join_negative_numbers(arg))   -- "--save_top_k -1"
-- Errors without the library's file positions unless --debug; an error in user code keeps its traceback
-- (the Trainer's, which shows where inside the hook it happened).
-- The Trainer's advice to resume, as this command line says it.
local function resume_hint(message)
  return (message:gsub('resume with ckpt_path = "last" or that path%.', function()
    return "resume with --resume last:\n  " .. cli.command(arg, {resume = "last"})
  end))
end
cli.main(main, args, {title = "Training failed", interrupted_title = "Training interrupted", debug = args.debug,
  script = arg[0], rewrite = resume_hint, traceback = function() return trainer and trainer.last_traceback end})
