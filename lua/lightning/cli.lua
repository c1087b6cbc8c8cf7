--- Helpers for command-line scripts (examples/train.lua, examples/predict.lua, the rock's commands).
--   local cli = require "lightning.cli"
--   local args = parser:parse(cli.join_negative_numbers(arg))   -- "--save_top_k -1" reads as a value
--   cli.main(main, args, {title = "Training failed", debug = args.debug})
--   cli.command(arg, {resume = "last"})   -- the command line again, with --resume last
--   cli.accelerator(args)                  -- --accelerator/--devices resolved, or refused in their words
local core = require "lightning.core"
local accelerators = require "lightning.accelerators"

local cli = {}

-- "-1", "-0.5", "-1e-3": a word that is a negative number, not an option.
local function is_negative_number(word)
  return type(word) == "string" and word:match("^%-[%d.]") ~= nil and tonumber(word) ~= nil
end

--- A copy of argv (default: the global arg) in which a negative number that follows an option is
-- joined to it: {"--save_top_k", "-1"} -> {"--save_top_k=-1"}. lua-argparse reads every word that
-- starts with "-" as an option ("unknown option '-1'"), but accepts "--name=value".
function cli.join_negative_numbers(argv)
  argv = argv or arg or {}
  local out = {}
  local i = 1
  while argv[i] ~= nil do
    local word, next_word = argv[i], argv[i + 1]
    if word == "--" then
      table.move(argv, i, #argv, #out + 1, out)   -- after "--" every word is plain
      break
    end
    if word:match("^%-%-[^=]+$") and is_negative_number(next_word) then
      out[#out + 1] = word .. "=" .. next_word
      i = i + 2
    else
      out[#out + 1] = word
      i = i + 1
    end
  end
  return out
end

-- Whether source (as Lua shows a chunk name, maybe shortened to "...<tail>") is the script, whose
-- name need not end in .lua (LuaRocks installs train.lua as .../bin/lightning-train).
local function is_script(source, script)
  if not script then return false end
  local tail = source:gsub("^%.%.%.", "")
  return script == tail or script:sub(-#tail - 1) == "/" .. tail or (source ~= tail and script:sub(-#tail) == tail)
end

-- The folder of the library's Lua files (…/lightning/), to tell its positions from the user's.
local LIBRARY_DIR = debug.getinfo(1, "S").source:match("^@(.*/)[^/]*$") or "./"

-- Whether a chunk name in an error position ("…/lua/lightning/data/datasets.lua") is a library file,
-- or the script itself (script: its path, arg[0]). Lua shortens long names to "...<tail>", so the
-- tail after "lightning/" is looked up in LIBRARY_DIR, and a script's name is compared by its end.
local function is_library_file(source, script)
  if is_script(source, script) then return true end
  local tail = source:match(".*lightning/(.+%.lua)$")
  if not tail then return false end
  local f = io.open(LIBRARY_DIR .. tail, "r")
  if f then f:close() return true end
  return false
end

-- "file.lua:12: " prefixes in a message (and the script's own, whatever its name):
-- {source, line, start, finish} in order.
local function positions(message, script)
  local list = {}
  for start, source, line, finish in message:gmatch("()([^%s:]+):(%d+): ()") do
    if source:match("%.lua$") or is_script(source, script) then
      list[#list + 1] = {source = source, line = line, start = start, finish = finish}
    end
  end
  return list
end

--- The message without the library's own positions (what a user needs to read), and whether some
-- position lies outside the library and the script: an error in the user's own code, which keeps its
-- position. script: the running script's path (its positions count as the library's).
function cli.describe_error(message, script)
  message = tostring(message)
  local user_code = false
  local parts, from = {}, 1
  for _, p in ipairs(positions(message, script)) do
    if is_library_file(p.source, script) then
      parts[#parts + 1] = message:sub(from, p.start - 1)
      from = p.finish
    else
      user_code = true
    end
  end
  parts[#parts + 1] = message:sub(from)
  return table.concat(parts), user_code
end

-- A word as the shell reads it back.
local function shell_word(word)
  if word:match("^[%w%-%./_=:,+@%%]+$") then return word end
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

-- LuaRocks installs a script as <tree>/lib/luarocks/rocks-5.x/<rock>/<version>/bin/<name> and the
-- command <tree>/bin/<name>, a wrapper that runs `lua5.4 -e '<module paths>' <that file> "$@"`: what
-- the user typed is the wrapper. Its bare name when PATH finds that wrapper first, else its path;
-- nil for a script that is not a rock's.
local function luarocks_command(script)
  local tree, name = script:match("^(.-)/lib/luarocks/rocks%-[%d.]+/[^/]+/[^/]+/bin/([^/]+)$")
  if not tree then return nil end
  local wrapper = tree .. "/bin/" .. name
  if not core.io.file_type(wrapper) then return nil end
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    local found = dir:gsub("/+$", "") .. "/" .. name
    if core.io.file_type(found) then return found == wrapper and name or wrapper end
  end
  return wrapper
end

--- The words that start this script again as the user started it (argv: the global arg): the installed
-- command (`lightning-train`) for a script that LuaRocks' wrapper runs, else the interpreter with its
-- options (arg[-n] .. arg[-1]) and the script (arg[0]). Unquoted; cli.command quotes them.
function cli.invocation(argv)
  argv = argv or arg or {}
  local script = argv[0]
  local installed = script and luarocks_command(script)
  if installed then return {installed} end
  local first = 0
  while argv[first - 1] ~= nil do first = first - 1 end
  local words = table.move(argv, first, -1, 1, {})
  if #words == 0 then words[1] = "lua5.4" end
  words[#words + 1] = script
  return words
end

--- The command that ran (argv: the global arg, as cli.invocation reads it) with some options set anew:
-- {resume = "last"} drops any --resume and appends --resume last.
function cli.command(argv, set)
  argv = argv or arg or {}
  set = set or {}
  local words = {}
  for i, word in ipairs(cli.invocation(argv)) do words[i] = shell_word(word) end
  local i = 1
  while argv[i] ~= nil do
    local word = argv[i]
    local name = word:match("^%-%-([^=]+)")
    if name and set[name] ~= nil then
      if not word:find("=", 1, true) then i = i + 1 end   -- its value follows
    else
      words[#words + 1] = shell_word(word)
    end
    i = i + 1
  end
  local names = {}
  for name in pairs(set) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    words[#words + 1] = "--" .. name
    words[#words + 1] = shell_word(tostring(set[name]))
  end
  return table.concat(words, " ")
end

--- Whether an error message says the run was interrupted (Ctrl-C, SIGTERM): the Trainer's
-- "Trainer:fit interrupted by SIGINT ...", or Lua's own "interrupted!".
function cli.is_interruption(message)
  message = tostring(message)
  return message:match("^Trainer:%a+ interrupted by ") ~= nil or message:match("interrupted!$") ~= nil
end

--- Runs main(args); on an error writes "<title>: <message>" to standard error and exits with status 1.
-- opts: title ("Failed"), debug (the message as raised, with every position, and the traceback),
-- traceback (a function returning a more useful traceback than the one here, such as the Trainer's
-- last_traceback), script (the path of a script that ships with the library, such as train.lua's
-- arg[0]: its positions count as the library's).
-- Without debug, positions inside the library are left out; an error whose position is in the user's
-- own code keeps it and is followed by its traceback. An interruption (Ctrl-C, SIGTERM) is no
-- failure: "<interrupted_title>: <message>" (default "Interrupted"), no traceback, exit status 130.
-- rewrite (a function): the message as the command line would say it (train.lua turns the Trainer's
-- "ckpt_path = "last"" into its --resume last).
function cli.main(main, args, opts)
  opts = opts or {}
  local ok, err = xpcall(main, function(e)
    return {message = tostring(e), traceback = debug.traceback(tostring(e), 2)}
  end, args)
  if ok then return end
  io.stdout:flush()
  local rewrite = opts.rewrite or function(m) return m end
  if cli.is_interruption(err.message) then
    local message = cli.describe_error(err.message, opts.script)
    if message:match("interrupted!$") then message = "interrupted (Ctrl-C)" end
    io.stderr:write("\n", opts.interrupted_title or "Interrupted", ": ", rewrite(message), "\n")
    os.exit(130)
  end
  local traceback = (opts.traceback and opts.traceback()) or err.traceback
  local message, user_code = cli.describe_error(err.message, opts.script)
  if opts.debug or user_code then
    io.stderr:write("\n", opts.title or "Failed", ": ", rewrite(err.message), "\n", traceback, "\n")
  else
    io.stderr:write("\n", opts.title or "Failed", ": ", rewrite(message), "\n")
  end
  os.exit(1)
end

--- The accelerator a script's --accelerator (and --devices) ask for, as L.accelerators.resolve gives
-- it; a GPU asked for and not there is refused before anything loads, in the command line's words
-- ("--accelerator gpu: no CUDA device is available (...)").
function cli.accelerator(args)
  local ok, accelerator = pcall(accelerators.resolve, args.accelerator, args.devices or "auto")
  if not ok then error((tostring(accelerator):gsub("^.-Trainer: accelerator '(%w+)'", "--accelerator %1")), 0) end
  return accelerator
end

return cli
