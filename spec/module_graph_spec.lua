-- The library's module graph: every require of a library module is at the top of its file (none hidden
-- inside a function to dodge a cycle), the graph of those requires has no cycle, nothing probes the
-- library's own modules with pcall(require, ...), and an error in a module surfaces where it is needed.
-- (The lazy tables of lightning/lazy.lua load modules on first use; those are not requires.)
local H = require "helpers"

local ROOT = io.popen("pwd"):read("l")
local LIB = ROOT .. "/lua/lightning"

local function lua_files()
  local list = {}
  local p = io.popen(("cd %q && find . -name '*.lua' | sort"):format(LIB))
  for line in p:lines() do list[#list + 1] = line:sub(3) end
  p:close()
  return list
end

local function module_name(path)
  local name = ("lightning/" .. path):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  return name
end

-- Tokens of Lua source without comments and strings: {kind = "name" | "string" | "op", text, line}.
local function tokens(src)
  local list, i, line = {}, 1, 1
  local function add(kind, text) list[#list + 1] = {kind = kind, text = text, line = line} end
  while i <= #src do
    local c = src:sub(i, i)
    if c == "\n" then line = line + 1 i = i + 1
    elseif c:match("%s") then i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local level = src:match("^%[(=*)%[", i + 2)
      local stop
      if level then stop = select(2, src:find("]" .. level .. "]", i, true)) else stop = (src:find("\n", i) or #src + 1) - 1 end
      for _ in src:sub(i, stop):gmatch("\n") do line = line + 1 end
      i = stop + 1
    elseif c == '"' or c == "'" then
      local j = i + 1
      while src:sub(j, j) ~= c do j = j + (src:sub(j, j) == "\\" and 2 or 1) end
      add("string", src:sub(i + 1, j - 1))
      i = j + 1
    elseif src:match("^%[=*%[", i) then
      local level = src:match("^%[(=*)%[", i)
      local stop = select(2, src:find("]" .. level .. "]", i, true))
      add("string", src:sub(i, stop))
      for _ in src:sub(i, stop):gmatch("\n") do line = line + 1 end
      i = stop + 1
    elseif c:match("[%a_]") then
      local word = src:match("^[%w_]+", i)
      add("name", word)
      i = i + #word
    elseif c:match("%d") then
      local num = src:match("^[%w%.]+", i)
      i = i + #num
    else
      add("op", c)
      i = i + 1
    end
  end
  return list
end

-- The literal requires of a file: {name, line, in_function}, and whether it calls pcall(require, ...).
local function requires_of(src)
  local toks, found, probes = tokens(src), {}, false
  local stack, pending_do = {}, 0
  local function inside_function()
    for _, kind in ipairs(stack) do if kind == "function" then return true end end
    return false
  end
  for k, t in ipairs(toks) do
    if t.kind == "name" then
      local w = t.text
      if w == "function" then stack[#stack + 1] = "function"
      elseif w == "if" then stack[#stack + 1] = "if"
      elseif w == "while" or w == "for" then stack[#stack + 1] = "loop" pending_do = pending_do + 1
      elseif w == "do" then
        if pending_do > 0 then pending_do = pending_do - 1 else stack[#stack + 1] = "do" end
      elseif w == "repeat" then stack[#stack + 1] = "repeat"
      elseif w == "end" or w == "until" then stack[#stack] = nil
      elseif w == "require" then
        local nxt = toks[k + 1]
        if nxt and nxt.kind == "op" and nxt.text == "(" then nxt = toks[k + 2] end
        if nxt and nxt.kind == "string" then found[#found + 1] = {nxt.text, t.line, inside_function()} end
        local prev, before = toks[k - 1], toks[k - 2]
        if prev and prev.text == "(" and before and before.text == "pcall" then probes = true end
      end
    end
  end
  assert(#stack == 0, "unbalanced blocks: the tokenizer of this spec needs mending")
  return found, probes
end

local function graph()
  local edges, problems = {}, {}
  for _, path in ipairs(lua_files()) do
    local name = module_name(path)
    local reqs, probes = requires_of(H.read_file(LIB .. "/" .. path))
    edges[name] = {}
    if probes then problems[#problems + 1] = path .. " probes a module with pcall(require, ...)" end
    for _, r in ipairs(reqs) do
      local target, line, local_require = r[1], r[2], r[3]
      if target:match("^lightning") then
        if local_require then problems[#problems + 1] = ("%s:%d requires %s inside a function"):format(path, line, target) end
        edges[name][#edges[name] + 1] = target
      end
    end
  end
  return edges, problems
end

-- A cycle as a list of module names, or nil.
local function find_cycle(edges)
  local state, path = {}, {}
  local function visit(n)
    if state[n] == "done" then return nil end
    if state[n] == "active" then
      local cycle, start = {}, nil
      for i, m in ipairs(path) do if m == n then start = i end end
      for i = start, #path do cycle[#cycle + 1] = path[i] end
      cycle[#cycle + 1] = n
      return cycle
    end
    state[n] = "active"
    path[#path + 1] = n
    for _, m in ipairs(edges[n] or {}) do
      local c = visit(m)
      if c then return c end
    end
    path[#path] = nil
    state[n] = "done"
  end
  local names = {}
  for n in pairs(edges) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do
    local c = visit(n)
    if c then return c end
  end
end

-- Which parts of the library may require which: nothing reaches up. A part is a folder of
-- lua/lightning (the Trainer's parts in trainer/ and trainer.lua are one, "trainer") or a file at its
-- root; "lightning" is the package itself (init.lua: the tensor functions, the rest loaded lazily on
-- first use, which is no require). A part may require itself and the parts listed for it. From the
-- bottom up:
--   base: lightning.core (and the C module's env), class, lazy, util, metrics, cuda (the GPU's functions
--     over the core's)
--   the tensor engine: lightning, autograd, nn, distributed (one layer: nn.Module records autograd's
--     module nodes, whose backward hooks are nn's; SyncBatchNorm and the gradient reducer need each other's side)
--   optim, data, io (checkpoint files), loggers: on the tensor functions alone; amp (the loss scaler) on
--     the tensor engine
--   accelerators (the hardware: the CPU, cuda): on base alone
--   precision (on optim and amp), lightning_module (on precision), models (nn, optim, io for load_from_checkpoint,
--     lightning_module), weights (L.load_weights: io), strategies (precision, data's samplers, io),
--     callbacks, plot (the Callback base class)
--   recipes (models, data, callbacks), trainer (everything below but models, recipes and plot; it holds the
--     accelerator, which the strategy is given)
--   cli (anything)
local BASE = {"core", "env", "class", "lazy", "util", "metrics", "cuda"}
local TENSOR = {"lightning", "autograd", "nn", "distributed"}
local ALLOWED = {
  env = {}, class = {}, lazy = {}, core = {"env"}, util = {"core", "class"}, metrics = {"core", "cuda"},
  cuda = {"core", "util"},
  lightning = {BASE, TENSOR}, autograd = {BASE, TENSOR}, nn = {BASE, TENSOR}, distributed = {BASE, TENSOR},
  optim = {BASE, "lightning"},
  amp = {BASE, TENSOR},
  data = {BASE, "lightning"},
  io = {BASE, "lightning"},
  loggers = {BASE, "lightning"},
  accelerators = {BASE},
  precision = {BASE, TENSOR, "optim", "amp"},
  lightning_module = {BASE, TENSOR, "precision"},
  models = {BASE, TENSOR, "optim", "io", "lightning_module"},
  weights = {BASE, "lightning", "io"},
  strategies = {BASE, TENSOR, "optim", "data", "io", "precision"},
  callbacks = {BASE, TENSOR, "optim", "io"},
  plot = {BASE, "lightning", "callbacks"},
  recipes = {BASE, TENSOR, "optim", "data", "models", "callbacks"},
  trainer = {BASE, TENSOR, "optim", "data", "io", "loggers", "accelerators", "precision", "lightning_module",
    "strategies", "callbacks"},
  cli = {BASE, TENSOR, "optim", "data", "io", "loggers", "accelerators", "precision", "lightning_module", "models",
    "weights", "strategies", "callbacks", "plot", "recipes", "trainer"},
}

-- The set of parts each part may require, from a table like ALLOWED (lists nest one level).
local function allowed_sets(allowed)
  local sets = {}
  for part, list in pairs(allowed) do
    local set = {[part] = true}
    for _, item in ipairs(list) do
      if type(item) == "table" then for _, p in ipairs(item) do set[p] = true end else set[item] = true end
    end
    sets[part] = set
  end
  return sets
end

-- The part a library module belongs to: "lightning.trainer.hooks" -> "trainer", "lightning" -> "lightning".
local function part_of(module)
  return module:match("^lightning%.([%w_]+)") or module
end

-- "file:line requires module: part may not require other_part" for each require that the table does not allow
-- (edges: {file, line, module} for each require of a library module).
local function upward_edges(edges, allowed)
  local sets, problems = allowed_sets(allowed), {}
  for _, e in ipairs(edges) do
    local file, line, target = e[1], e[2], e[3]
    local from, to = part_of(module_name(file)), part_of(target)
    if not sets[from] then
      problems[#problems + 1] = ("%s: its part %s is not in the table of allowed requires"):format(file, from)
    elseif not sets[from][to] then
      problems[#problems + 1] = ("%s:%d requires %s: %s may not require %s"):format(file, line, target, from, to)
    end
  end
  return problems
end

-- {file, line, module} for each top-level require of a library module.
local function library_requires()
  local list = {}
  for _, path in ipairs(lua_files()) do
    for _, r in ipairs((requires_of(H.read_file(LIB .. "/" .. path)))) do
      if r[1]:match("^lightning") then list[#list + 1] = {path, r[2], r[1]} end
    end
  end
  return list
end

-- Runs code in a child lua5.4 whose library is a copy of lua/ with one file replaced; returns its output.
local function run_with(file, contents, code)
  local dir = H.tmpdir()
  assert(os.execute(("cp -r %q %q"):format(ROOT .. "/lua", dir .. "/lua")))
  H.write_file(dir .. "/lua/lightning/" .. file, contents)
  local cpath = package.cpath:gsub("([^;]+)", function(p) return p:sub(1, 1) == "/" and p or ROOT .. "/" .. p end)
  local script = dir .. "/probe.lua"
  H.write_file(script, code)
  local p = io.popen(("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q lua5.4 %q 2>&1"):format(dir .. "/lua/?.lua;" .. dir ..
    "/lua/?/init.lua;;", cpath, script))
  local text = p:read("a")
  p:close()
  H.rmdir(dir)
  return text
end

describe("the module graph", function()
  it("has its requires at the top of each file and no pcall(require, ...) probing", function()
    local _, problems = graph()
    assert.same({}, problems)
  end)

  it("has no cycle", function()
    local edges = graph()
    local cycle = find_cycle(edges)
    assert.is_nil(cycle, cycle and table.concat(cycle, " -> "))
    -- the checks themselves can fail
    assert.same({"a", "b", "a"}, find_cycle({a = {"b"}, b = {"a"}}))
    local reqs = requires_of('local x = require "lightning.a"\nlocal function f() return require("lightning.b") end\n')
    assert.same({{"lightning.a", 1, false}, {"lightning.b", 2, true}}, reqs)
    assert.is_true(select(2, requires_of('local ok, m = pcall(require, "lightning.x")')))
    assert.is_true(#edges["lightning.trainer"] > 5)
  end)

  it("reaches up nowhere: each require goes to a part below (the table above)", function()
    local edges = library_requires()
    assert.same({}, upward_edges(edges, ALLOWED))
    assert.is_true(#edges > 100)
    -- two parts never may require each other, but within the tensor engine
    local sets, engine = allowed_sets(ALLOWED), {}
    for _, p in ipairs(TENSOR) do engine[p] = true end
    for a, set in pairs(sets) do
      for b in pairs(set) do
        if a ~= b and sets[b] and sets[b][a] then
          assert.is_true(engine[a] and engine[b], ("%s and %s may require each other"):format(a, b))
        end
      end
    end
    -- the check itself fails on an upward require, naming the file and the edge
    assert.same({"nn/linear.lua:3 requires lightning.trainer.checkpoint: nn may not require trainer"},
      upward_edges({{"nn/linear.lua", 3, "lightning.trainer.checkpoint"}}, ALLOWED))
    assert.same({"newpart/x.lua: its part newpart is not in the table of allowed requires"},
      upward_edges({{"newpart/x.lua", 1, "lightning.util.fs"}}, ALLOWED))
    assert.same({}, upward_edges({{"trainer.lua", 9, "lightning.nn.linear"}, {"init.lua", 4, "lightning.core"}},
      ALLOWED))
  end)

  it("lets an error in a library module surface where the module is needed", function()
    local probe = [[
      local ok, err = pcall(function() return require("lightning.models.basic_image_classifier"){} end)
      print(ok and "loaded" or ("error: " .. tostring(err)))
    ]]
    local text = run_with("models/image_classifier.lua", "local broken = = 1\n", probe)
    assert.matches("error: .*image_classifier%.lua:1:", text)
    text = run_with("models/image_classifier.lua", "error('image_classifier is broken')\n", probe)
    assert.matches("error: .*image_classifier is broken", text)
    -- the Trainer's default logger and the optimizers are required, not probed
    local trainer_probe = [[
      local L = require "lightning"
      local ok, err = pcall(function()
        return L.Trainer{default_root_dir = os.tmpname() .. ".d", enable_progress_bar = false}
      end)
      print(ok and "built" or ("error: " .. tostring(err)))
    ]]
    assert.matches("error: .*tensorboard is broken", run_with("loggers/tensorboard.lua", "error('tensorboard is broken')\n",
      trainer_probe))
    assert.matches("error: .*optim is broken", run_with("optim/init.lua", "error('optim is broken')\n", trainer_probe))
    -- and the unbroken library builds them
    assert.matches("loaded", run_with("util/closest.lua", H.read_file(LIB .. "/util/closest.lua"), probe))
  end)
end)
