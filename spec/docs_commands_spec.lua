-- Every option README.md and docs/*.md give train.lua or predict.lua exists: a command in a non-Lua code
-- block or a `code span` that runs examples/train.lua (or lightning-train) or examples/predict.lua (or
-- lightning-predict) may use only the options its --help lists, so that a renamed option cannot stay
-- in the docs. (The words after the script up to a comment, a pipe or the next command are its
-- arguments; a block's lines ending in \ continue.)
local X = require "script_helpers"
local H = require "helpers"
local M = require "docs_markdown"

local SCRIPTS = {
  ["examples/train.lua"] = "train.lua", ["lightning-train"] = "train.lua",
  ["examples/predict.lua"] = "predict.lua", ["lightning-predict"] = "predict.lua",
}

--- The options a script's --help lists: a set of "--name".
local function options_of(script)
  local code, out = X.run(script, "--help")
  assert(code == 0, out)
  local set = {}
  for name in out:gmatch("%-%-[%w_%-]+") do set[name] = true end
  return set
end

--- The commands of a text (a block's lines, joined where they end in \, or a code span).
local function commands_of(text)
  return (text:gsub("\\\n", " ")):gmatch("[^\n]+")
end

--- {script = "train.lua", options = {"--cifar10", ...}} for each script a command line runs.
local function invocations(line)
  local found = {}
  local words = {}
  for w in line:gsub("#.*$", ""):gmatch("%S+") do words[#words + 1] = w end
  local i = 1
  while i <= #words do
    local script = SCRIPTS[words[i]]
    if script then
      local options = {}
      i = i + 1
      while i <= #words and not words[i]:match("^[|;&]") and not SCRIPTS[words[i]] do
        local name = words[i]:match("^(%-%-[%w_%-]+)")
        if name then options[#options + 1] = name end
        i = i + 1
      end
      found[#found + 1] = {script = script, options = options}
    else
      i = i + 1
    end
  end
  return found
end

describe("The train.lua and predict.lua options README.md and docs/*.md use", function()
  local known = {}
  for _, file in ipairs(M.files(X.ROOT)) do
    it(file .. ": every option of a command exists", function()
      local blocks, prose = M.parse(H.read_file(X.ROOT .. "/" .. file))
      local texts = {}
      for _, b in ipairs(blocks) do
        if b.lang ~= "lua" then texts[#texts + 1] = {line = b.line, text = b.code} end
      end
      for _, l in ipairs(prose) do
        for span in l.text:gmatch("`([^`]+)`") do texts[#texts + 1] = {line = l.line, text = span} end
      end
      local bad = {}
      for _, t in ipairs(texts) do
        for command in commands_of(t.text) do
          for _, call in ipairs(invocations(command)) do
            known[call.script] = known[call.script] or options_of(call.script)
            for _, name in ipairs(call.options) do
              if not known[call.script][name] then
                bad[#bad + 1] = ("%s:%d: %s has no option %s (in: %s)"):format(file, t.line, call.script, name, command)
              end
            end
          end
        end
      end
      assert(#bad == 0, table.concat(bad, "\n"))
    end)
  end
end)

describe("The docs' command reader", function()
  it("takes the options after each script, up to a comment, a pipe or another command", function()
    assert.same({{script = "train.lua", options = {"--cifar10", "--nproc"}}},
      invocations("mpirun -np 2 --oversubscribe lua examples/train.lua --cifar10 --nproc 2 # --not_this"))
    assert.same({{script = "train.lua", options = {"--save_top_k"}}, {script = "predict.lua", options = {"--top_k"}}},
      invocations("lightning-train --save_top_k -1 && lightning-predict --top_k=3 x.png | head"))
    assert.same({}, invocations("lua bench/train_step.lua --memory 300"))
    local lines = {}
    for c in commands_of("lua examples/train.lua --a \\\n  --b\nnext") do lines[#lines + 1] = c end
    assert.same({"lua examples/train.lua --a    --b", "next"}, lines)
  end)
end)
