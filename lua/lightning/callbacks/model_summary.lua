--- ModelSummary: prints the model's layers at the start of fit, as PyTorch Lightning's: name, type,
-- parameter count and (when the module has example_input_array) each layer's output shape, then
-- the trainable / non-trainable / total parameter counts and their size in MB (float32). With an
-- example input the layers are listed in the order the forward pass runs them (layers it does not use
-- last); without one, in registration order.
--   L.callbacks.ModelSummary{max_depth = 1}     -- 2 also lists the layers inside containers
--   print(L.callbacks.ModelSummary.summarize(model))
local L = require "lightning"
local class = require "lightning.class"
local Callback = require "lightning.callbacks.callback"
local output = require "lightning.util.output"
local options = require "lightning.util.options"

local ModelSummary = class("ModelSummary", Callback)

function ModelSummary:__init(opts)
  -- max_depth -1: all levels
  local o = options.check("ModelSummary", opts, {max_depth = {kind = "integer", min = -1, default = 1}})
  self.max_depth = o.max_depth
end

--- 1234 -> "1.2 K", as Lightning writes parameter counts.
function ModelSummary.human_count(n)
  if n < 1000 then return tostring(n) end
  local units = {"K", "M", "B", "T"}
  local value, unit = n, 0
  while value >= 1000 and unit < #units do value, unit = value / 1000, unit + 1 end
  return ("%.1f %s"):format(value, units[unit])
end

local function count_params(m)
  local trainable, frozen = 0, 0
  for _, p in m:named_parameters() do
    if p.requires_grad == false then frozen = frozen + p:numel() else trainable = trainable + p:numel() end
  end
  return trainable, frozen
end

-- Rows (depth-first, up to max_depth): {name, type, params, mode, out}.
local function collect(module, max_depth)
  local rows = {}
  local function walk(m, prefix, depth)
    for name, child in m:named_children() do
      local full = prefix .. name
      local trainable, frozen = count_params(child)
      rows[#rows + 1] = {name = full, type = class.name_of(child), params = trainable + frozen,
        mode = child.training and "train" or "eval", module = child}
      if max_depth == -1 or depth < max_depth then walk(child, full .. ".", depth + 1) end
    end
  end
  walk(module, "", 1)
  return rows
end

-- Runs example_input_array through the model in eval mode and records the size of what each listed
-- layer returns (Lightning's ModelSummary does this with forward hooks). forward gets {fused = false}:
-- a model that fuses layers into one kernel (BasicImageClassifier) runs them one by one instead, so that
-- every layer has an output. Returns {module = size} and {module = the rank of its first call}, or nil
-- without an example or when forward fails.
local function record_sizes(module, rows)
  local x = module.example_input_array
  if not L.is_tensor(x) then return nil end
  local sizes, wrapped, order, calls = {}, {}, {}, 0
  for _, row in ipairs(rows) do
    local m = row.module
    if not wrapped[m] and type(m.forward) == "function" then
      wrapped[m] = {rawget(m, "forward")}   -- an instance's own forward, or nil for its class's
      local forward = m.forward
      m.forward = function(self, ...)
        if not order[self] then calls = calls + 1; order[self] = calls end   -- (on entry: a container before its layers)
        local out = forward(self, ...)
        if L.is_tensor(out) then sizes[self] = out:size() end
        return out
      end
    end
  end
  local was_training = module.training
  module:eval()
  local ok = pcall(module.forward, module, x, {fused = false})
  module:train(was_training)
  for m, saved in pairs(wrapped) do rawset(m, "forward", saved[1]) end
  if not ok then return nil end
  return sizes, order
end

local function size_text(size)
  if not size then return "?" end   -- a layer the forward pass did not use
  local dims = {}
  for i = 1, #size do dims[i] = tostring(size[i]) end
  return "[" .. table.concat(dims, ", ") .. "]"
end

--- The summary as text.
function ModelSummary.summarize(module, max_depth)
  max_depth = max_depth or 1
  local rows = collect(module, max_depth)
  local sizes, order = record_sizes(module, rows)
  local with_shapes = sizes ~= nil
  if order then   -- the forward pass's order; the layers it did not run after, in registration order
    for i, row in ipairs(rows) do row.registered = i end
    table.sort(rows, function(a, b)
      local oa, ob = order[a.module] or math.huge, order[b.module] or math.huge
      if oa ~= ob then return oa < ob end
      return a.registered < b.registered
    end)
  end
  local headers = {"", "Name", "Type", "Params", "Mode"}
  if with_shapes then headers[#headers + 1] = "Out sizes" end
  local cells = {}
  for i, row in ipairs(rows) do
    local line = {tostring(i), row.name, row.type, ModelSummary.human_count(row.params), row.mode}
    if with_shapes then line[#line + 1] = size_text(sizes[row.module]) end
    cells[i] = line
  end
  local widths = {}
  for c, h in ipairs(headers) do
    widths[c] = #h
    for _, line in ipairs(cells) do widths[c] = math.max(widths[c], utf8.len(line[c]) or #line[c]) end
  end
  local function format_line(line)
    local parts = {}
    for c, text in ipairs(line) do parts[c] = text .. string.rep(" ", widths[c] - (utf8.len(text) or #text)) end
    return (table.concat(parts, " | "):gsub("%s+$", ""))
  end
  local out = {format_line(headers)}
  local rule = string.rep("-", #out[1])
  out[#out + 1] = rule
  for _, line in ipairs(cells) do out[#out + 1] = format_line(line) end
  out[#out + 1] = rule
  local trainable, frozen = count_params(module)
  local total = trainable + frozen
  out[#out + 1] = ("%-10sTrainable params"):format(ModelSummary.human_count(trainable))
  out[#out + 1] = ("%-10sNon-trainable params"):format(ModelSummary.human_count(frozen))
  out[#out + 1] = ("%-10sTotal params"):format(ModelSummary.human_count(total))
  out[#out + 1] = ("%-10.3fTotal estimated model params size (MB)"):format(total * 4 / 1e6)
  return table.concat(out, "\n")
end

function ModelSummary:on_fit_start(trainer, module)
  if self.max_depth == 0 or not trainer.is_global_zero then return end
  output.print(ModelSummary.summarize(module, self.max_depth))
end

return ModelSummary
