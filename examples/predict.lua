#!/usr/bin/env lua5.4
--- predict.lua: classifies PNG images with a checkpoint that train.lua (or any BasicImageClassifier
-- training) wrote; the network, the class names and the images' normalisation come from the checkpoint.
--   lua examples/predict.lua --checkpoint outputs/image_classifier/version_0/checkpoints/last.safetensors cat.png ship.png
--       prints the top classes of each image with their probabilities
--   lua examples/predict.lua --checkpoint outputs/image_classifier/version_0/checkpoints/last.safetensors my_images/
--       classifies every PNG under the folder into predictions.csv (--output): path, predicted_class,
--       probability, then the next classes of the top k and their probabilities
--   --accelerator auto|cpu|gpu: where the network runs (auto: the GPU when there is one)
-- Installed by the rock as the command `lightning-predict`.

-- From a checkout, use its Lua files and build (see checkout.lua).
do
  local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
  local checkout = loadfile(dir .. "/checkout.lua")
  if checkout then checkout(dir) end
end

local argparse = require "argparse"
local L = require "lightning"
local cli = require "lightning.cli"

local function build_parser()
  local name = (arg and arg[0] or "predict.lua"):match("[^/]*$")
  local p = argparse(name, "Classify PNG images with a trained checkpoint (train.lua's).")
  p:help_max_width(100)
  p:argument("images", "PNG files, or folders of them (searched recursively)."):args("+")
  p:option("--checkpoint", "The checkpoint (a .safetensors file that train.lua wrote)."):count(1)
  p:option("--top_k", "How many classes to show per image.", "3"):convert(tonumber)
  p:option("--output", "Write the predictions to this CSV file (the default for folders: predictions.csv).")
  p:option("--batch_size", "Images per forward pass.", "32"):convert(tonumber)
  p:option("--mean", "Per-channel means of the normalisation, comma-separated (default: the checkpoint's).")
  p:option("--std", "Per-channel standard deviations of the normalisation (default: the checkpoint's).")
  p:option("--num_threads", "Compute threads (default: all cores)."):convert(tonumber)
  p:option("--accelerator", "Where to compute: auto (the GPU when there is one, else the CPU), cpu, or gpu / cuda "
    .. "(the NVIDIA GPU; refused when none is available).", "auto"):choices(L.accelerators.NAMES)
  p:flag("--debug", "Errors with their traceback.")
  return p
end

local function positive_integer(args, name)
  local v = args[name]
  if v ~= nil and (math.type(v) ~= "integer" and v ~= math.floor(v) or v < 1) then
    error(("--%s must be an integer >= 1, got %s"):format(name, tostring(v)), 0)
  end
  if v ~= nil then args[name] = math.tointeger(v) end
end

local function numbers(text, name, count)
  local list = {}
  for part in text:gmatch("[^,%s]+") do
    local v = tonumber(part)
    if not v then error(("--%s takes numbers separated by commas, got %s"):format(name, text), 0) end
    list[#list + 1] = v
  end
  if #list ~= count then
    error(("--%s needs %d number(s), one per channel of the model's input, got %d"):format(name, count, #list), 0)
  end
  return list
end

-- What io.file_type's kinds of special files are, for messages.
local SPECIAL = {fifo = "a FIFO (named pipe)", device = "a device", socket = "a socket"}

-- The PNG files named on the command line: files as given, folders searched recursively (hidden
-- entries skipped, names sorted). Returns the list and whether a folder was given.
local function collect_images(paths)
  local io_core = L.core.io
  local files, any_folder = {}, false
  local function walk(dir)
    for _, entry in ipairs(io_core.listdir(dir)) do
      if entry:sub(1, 1) ~= "." then
        local path = dir:gsub("/+$", "") .. "/" .. entry
        local kind = io_core.file_type(path)
        if kind == "directory" then walk(path)
        elseif kind == "file" and entry:lower():match("%.png$") then files[#files + 1] = path end
      end
    end
  end
  for _, path in ipairs(paths) do
    local kind = io_core.file_type(path)
    if kind == "directory" then
      any_folder = true
      walk(path)
    elseif kind == "file" then
      files[#files + 1] = path
    elseif kind == nil then
      error(("%s: no such file or folder"):format(path), 0)
    else   -- (never opened: a FIFO would block, a device never ends)
      error(("%s is %s, not a PNG image or a folder of them"):format(path, SPECIAL[kind] or "a special file"), 0)
    end
  end
  return files, any_folder
end

-- The images as a data set for the loader: each file read (converted to the model's channels),
-- resized to its input size and normalised as in training. The target is a placeholder.
local function image_set(files, channels, size, normalize)
  local resize = L.data.transforms.Resize({size, size})
  return setmetatable({}, {
    __len = function() return #files end,
    __index = function(_, i)
      local x = L.data.read_png(files[i], {channels = channels})
      if x:size(2) ~= size or x:size(3) ~= size then x = resize(x) end
      if normalize then x = normalize(x) end
      return {input = x, target = 1}
    end,
  })
end

-- The k most probable classes of a row of probabilities: {{class, probability}, ...}.
local function top_classes(probabilities, k)
  local list = {}
  for c, p in ipairs(probabilities) do list[c] = {c, p} end
  table.sort(list, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
  return table.move(list, 1, k, 1, {})
end

local function csv_field(v)
  v = tostring(v)
  if v:find('[,"\n\r]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local function write_csv(path, rows, k, names)
  local header = {"path", "predicted_class", "probability"}
  for i = 2, k do
    header[#header + 1] = ("top%d_class"):format(i)
    header[#header + 1] = ("top%d_probability"):format(i)
  end
  local lines = {table.concat(header, ",")}
  for _, row in ipairs(rows) do
    local fields = {csv_field(row.path)}
    for _, entry in ipairs(row.top) do
      fields[#fields + 1] = csv_field(names[entry[1]])
      fields[#fields + 1] = ("%.6f"):format(entry[2])
    end
    lines[#lines + 1] = table.concat(fields, ",")
  end
  L.core.io.write_file(path, table.concat(lines, "\n") .. "\n")   -- atomically
end

local function main(args)
  positive_integer(args, "top_k")
  positive_integer(args, "batch_size")
  positive_integer(args, "num_threads")
  if args.num_threads then L.set_num_threads(args.num_threads) end
  cli.accelerator(args)   -- (a GPU asked for and not there: refused before anything loads)
  local files, any_folder = collect_images(args.images)
  if #files == 0 then error("no PNG images in " .. table.concat(args.images, ", "), 0) end

  local model = L.models.BasicImageClassifier.load_from_checkpoint(args.checkpoint, {debug = false})
  local hp = model.hparams
  local names = {}
  for c = 1, hp.num_classes do names[c] = hp.class_names and hp.class_names[c] or ("class " .. c) end
  local mean = args.mean and numbers(args.mean, "mean", hp.in_channels) or hp.mean
  local std = args.std and numbers(args.std, "std", hp.in_channels) or hp.std
  local info = model.checkpoint_info
  L.print(("Checkpoint: %s (epoch %s, step %s): %d classes, %dx%dx%d images"):format(info.path, tostring(info.epoch),
    tostring(info.global_step), hp.num_classes, hp.in_channels, hp.image_size, hp.image_size))
  if not hp.class_names then L.print("(the checkpoint has no class names: classes are numbered)") end
  if not (mean and std) then
    L.print("(the checkpoint does not say how the training images were normalised: none is applied; pass --mean and --std)")
  end
  local normalize = mean and std and L.data.transforms.Normalize(mean, std) or nil

  local loader = L.data.DataLoader(image_set(files, hp.in_channels, hp.image_size, normalize),
    {batch_size = args.batch_size})
  local trainer = L.Trainer{logger = false, enable_checkpointing = false, enable_model_summary = false,
    enable_progress_bar = any_folder, accelerator = args.accelerator}
  local k = math.min(args.top_k, hp.num_classes)
  local rows = {}
  for _, batch in ipairs(trainer:predict(model, loader)) do
    for _, probabilities in ipairs(batch.probabilities:totable()) do
      rows[#rows + 1] = {path = files[#rows + 1], top = top_classes(probabilities, k)}
    end
  end

  local csv = args.output or (any_folder and "predictions.csv" or nil)
  if not any_folder then
    for _, row in ipairs(rows) do
      L.print(row.path)
      for i, entry in ipairs(row.top) do L.print(("  %d. %-20s %6.2f %%"):format(i, names[entry[1]], 100 * entry[2])) end
    end
  else
    local counts = {}
    for _, row in ipairs(rows) do counts[row.top[1][1]] = (counts[row.top[1][1]] or 0) + 1 end
    local parts = {}
    for c = 1, hp.num_classes do if counts[c] then parts[#parts + 1] = ("%s %d"):format(names[c], counts[c]) end end
    L.print(("Predicted classes of %d images: %s"):format(#rows, table.concat(parts, ", ")))
  end
  if csv then
    write_csv(csv, rows, k, names)
    L.print(("Wrote %d predictions to %s"):format(#rows, csv))
  end
end

local args = build_parser():parse(cli.join_negative_numbers(arg))
cli.main(main, args, {title = "Prediction failed", debug = args.debug, script = arg[0]})
