-- Every path README.md, docs/*.md and csrc/core/README.md name in the repository exists, so that the
-- docs cannot point at files that were moved or never were:
-- - links and images, [text](path#anchor): the path resolved from the file's folder must stay inside
--   the repository and exist; an anchor into a Markdown file must be one of its headings (GitHub's
--   slugs); web addresses are not checked;
-- - repository paths in `code spans` and in non-Lua code blocks (shell commands, trees, diagrams): a
--   word that starts with one of the tree's top folders (lua/, csrc/, spec/, bench/, examples/, tools/,
--   fuzz/, docs/, rockspec/, .ci/), a Lua file named from lightning/ (lightning/util/options.lua, for
--   lua/lightning/...), or a file at the root (setup.sh, CMakeLists.txt, README.md, .busted). `*` and
--   `<name>` match any part of a name, `**` and `...` any folders; words with `?`, `$` or `%` (Lua
--   search paths, shell variables) are not paths; a word that starts with ../ must lead to a path of
--   the tree from the file's folder (`../shared/data` is some machine's folder, not the project's).
-- A file that names paths on purpose absent (a worked example of a new layer) lists them in a marker:
--   <!-- not in the tree: csrc/core/nn/groupnorm.c lua/lightning/nn/groupnorm.lua -->
-- A README inside the tree (FOLDER_DOCS) names its folder's files from that folder: there a code span's
-- word that ends in .c, .h or / (kernel.h, nn/ops.h, tensor*.c, cpu/) is a path from the file's folder,
-- and every file and folder directly in that folder must be one of them (a header counts as named
-- with its .c; a folder named covers what it holds).
local X = require "script_helpers"
local H = require "helpers"
local M = require "docs_markdown"

local TOP = {"lua/", "csrc/", "spec/", "bench/", "examples/", "tools/", "fuzz/", "docs/", "rockspec/", ".ci/"}
local ROOT_FILES = {["setup.sh"] = true, ["CMakeLists.txt"] = true, ["README.md"] = true, [".busted"] = true}
local ABSENT = "^%s*<!%-%-%s*not in the tree:%s*(.-)%s*%-%->%s*$"
local FOLDER_DOCS = {["csrc/core/README.md"] = true}

--- Every file and folder of the tree, relative to its root ("docs", "docs/nn.md", ...), build folders,
-- virtual environments and .git left out.
local function tree(root)
  local set = {}
  local p = io.popen(("cd %q && find . \\( -path ./.git -o -path './build*' -o -path './.venv*' \\) -prune -o -print"):format(root))
  for line in p:lines() do
    if line ~= "." then set[line:sub(3)] = true end
  end
  p:close()
  return set
end

--- "a/./b/../c" -> "a/c"; nil when it climbs above the root.
local function normalise(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then
      if #parts == 0 then return nil end
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return table.concat(parts, "/")
end

--- GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
local function slug(heading)
  return (heading:lower():gsub("[^%w%s%-_]", ""):gsub("%s", "-"))
end

--- The anchors of a Markdown text's headings (a repeated heading gets -1, -2, ... as on GitHub).
local function anchors_of(text)
  local set, seen = {}, {}
  local _, prose = M.parse(text)
  for _, l in ipairs(prose) do
    local heading = l.text:match("^#+%s+(.-)%s*#*%s*$")
    if heading then
      local s = slug(heading)
      local n = seen[s]
      seen[s] = (n or -1) + 1
      set[n and (s .. "-" .. (n + 1)) or s] = true
    end
  end
  return set
end

--- A path word with wildcards as a Lua pattern over the tree's relative paths.
local function pattern_of(word)
  local p = word:gsub("<[^>]*>", "\1"):gsub("%*%*", "\2"):gsub("%*", "\1")
  p = p:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0")
  return "^" .. p:gsub("\2", ".*"):gsub("\1", "[^/]*") .. "$"
end

--- The repository path a word names, or nil when it names none (see the header).
local function path_of(word)
  word = word:gsub("^[%(%[\"'`]+", ""):gsub("[%)%]\"'`,;:%.]+$", ""):gsub(":%d+$", "")
  if word:find("[%?%$%%]") or word:find("://", 1, true) then return nil end
  if ROOT_FILES[word] then return word end
  if word:match("^lightning/.+%.lua$") then return "lua/" .. word end
  for _, top in ipairs(TOP) do
    if word:sub(1, #top) == top then
      return (word:gsub("/%.%.%..*$", ""):gsub("/$", ""))
    end
  end
  return nil
end

--- The path from the folder dir that a word of a folder's README names, or nil (see the header).
local function local_path_of(dir, word)
  word = word:gsub("^[%(%[\"'`]+", ""):gsub("[%)%]\"'`,;:]+$", "")
  if not word:match("^[%w_%*%-%./<>]+$") or not (word:match("%.[ch]$") or word:match("/$")) then return nil end
  return normalise(dir .. "/" .. word)
end

--- Whether the tree holds path (a pattern when it has wildcards).
local function exists(set, path)
  if set[path] then return true end
  if not path:find("[%*<]") then return false end
  local pattern = pattern_of(path)
  for p in pairs(set) do
    if p:match(pattern) then return true end
  end
  return false
end

--- The problems of one Markdown file: a list of "file:line: message".
local function problems_of(root, set, file, anchors)
  local text = H.read_file(root .. "/" .. file)
  local blocks, prose = M.parse(text)
  local dir = file:match("^(.*)/") or ""
  local absent, found = {}, {}
  for _, l in ipairs(prose) do
    local list = l.text:match(ABSENT)
    if list then for p in list:gmatch("%S+") do absent[p] = true end end
  end
  local relative, named = FOLDER_DOCS[file], {}
  local function check_word(line, word)
    local up = not relative and word:match("^[%(\"'`]*(%.%./[^%s%)\"'`,;]*)")
    if up then
      local resolved = normalise((dir ~= "" and dir .. "/" or "") .. up)
      if not (resolved and set[resolved]) then
        found[#found + 1] = ("%s:%d: `%s` names a path outside the repository"):format(file, line, word)
      end
      return
    end
    local path = path_of(word)
    if not path and relative then
      path = local_path_of(dir, word)
      named[#named + 1] = path
    end
    if path and not absent[path] and not exists(set, path) then
      found[#found + 1] = ("%s:%d: `%s` names %s, which the repository does not hold"):format(file, line, word, path)
    end
  end
  for _, l in ipairs(prose) do
    -- links and images (the code spans removed first: `t[i](x)` is no link)
    local plain = l.text:gsub("`[^`]*`", "")
    for target in plain:gmatch("%]%(([^%)%s]*)[^%)]*%)") do
      if not target:match("^%a[%w+.%-]*:") then
        local path, anchor = target:match("^([^#]*)#?(.*)$")
        local resolved = path == "" and file or normalise((dir ~= "" and dir .. "/" or "") .. path)
        if not resolved then
          found[#found + 1] = ("%s:%d: the link (%s) leads outside the repository"):format(file, l.line, target)
        elseif not set[resolved] then
          found[#found + 1] = ("%s:%d: the link (%s) leads to %s, which the repository does not hold"):format(file,
            l.line, target, resolved)
        elseif anchor ~= "" and resolved:match("%.md$") then
          anchors[resolved] = anchors[resolved] or anchors_of(H.read_file(root .. "/" .. resolved))
          if not anchors[resolved][anchor] then
            found[#found + 1] = ("%s:%d: the link (%s): %s has no heading #%s"):format(file, l.line, target,
              resolved, anchor)
          end
        end
      end
    end
    for span in l.text:gmatch("`([^`]+)`") do
      for word in span:gmatch("[^%s=]+") do check_word(l.line, word) end
    end
  end
  for _, b in ipairs(blocks) do
    if b.lang ~= "lua" then
      local n = b.line
      for line in b.code:gmatch("([^\n]*)\n") do
        n = n + 1
        for word in line:gmatch("[^%s=]+") do check_word(n, word) end
      end
    end
  end
  if relative then
    local function is_named(path)
      for _, n in ipairs(named) do
        if n == path or (n:find("[%*<]") and path:match(pattern_of(n))) then return true end
      end
      return false
    end
    local entries = {}
    for path in pairs(set) do
      if path:match("^" .. dir:gsub("%p", "%%%0") .. "/[^/]+$") and path ~= file then entries[#entries + 1] = path end
    end
    table.sort(entries)
    for _, path in ipairs(entries) do
      if not (is_named(path) or (path:match("%.h$") and is_named(path:sub(1, -3) .. ".c"))) then
        found[#found + 1] = ("%s: %s is neither named nor in a folder it names"):format(file, path)
      end
    end
  end
  return found
end

describe("The paths README.md, docs/*.md and csrc/core/README.md name", function()
  local set = tree(X.ROOT)
  local anchors = {}
  local files = M.files(X.ROOT)
  for file in pairs(FOLDER_DOCS) do files[#files + 1] = file end
  for _, file in ipairs(files) do
    it(file .. ": every link and repository path exists", function()
      local found = problems_of(X.ROOT, set, file, anchors)
      assert(#found == 0, table.concat(found, "\n"))
    end)
  end
end)

describe("The docs' path checker", function()
  it("finds the broken links, paths and anchors of a file, and honours the marker", function()
    local root = H.tmpdir()
    H.write_file(root .. "/README.md", table.concat({
      "# Top", "## Run it", "[ok](docs/a.md#part-two) [ok](#run-it) [web](https://x.org/y) ![img](docs/pic.png)",
      "[up](../shared/DESIGN.md) [gone](docs/gone.md) [anchor](docs/a.md#part-3) `t[i](x)`",
      "`lua examples/train.lua` `lua examples/gone.lua --x` `../shared/data` `spec/*_spec.lua` `spec/*_test.lua`",
      "<!-- not in the tree: csrc/new.c -->", "`csrc/new.c`", "<!-- not run: shell -->", "```sh",
      "lua bench/gone.lua   # examples/train.lua", "```", "```lua", "dofile('bench/gone.lua')", "```"}, "\n"))
    for _, d in ipairs {"docs", "examples", "spec"} do os.execute(("mkdir -p %q"):format(root .. "/" .. d)) end
    H.write_file(root .. "/docs/a.md", "# A\n## Part two\n[back](../README.md#top)\n")
    H.write_file(root .. "/docs/pic.png", "")
    H.write_file(root .. "/examples/train.lua", "")
    H.write_file(root .. "/spec/a_spec.lua", "")
    local found = problems_of(root, tree(root), "README.md", {})
    assert.same({
      "README.md:4: the link (../shared/DESIGN.md) leads outside the repository",
      "README.md:4: the link (docs/gone.md) leads to docs/gone.md, which the repository does not hold",
      "README.md:4: the link (docs/a.md#part-3): docs/a.md has no heading #part-3",
      "README.md:5: `examples/gone.lua` names examples/gone.lua, which the repository does not hold",
      "README.md:5: `../shared/data` names a path outside the repository",
      "README.md:5: `spec/*_test.lua` names spec/*_test.lua, which the repository does not hold",
      "README.md:10: `bench/gone.lua` names bench/gone.lua, which the repository does not hold"}, found)
    assert.same({}, problems_of(root, tree(root), "docs/a.md", {}))
    H.rmdir(root)
  end)

  it("reads a folder's README from its folder and finds the files it leaves out", function()
    local root = H.tmpdir()
    os.execute(("mkdir -p %q"):format(root .. "/csrc/core/nn"))
    for _, f in ipairs {"kernel.c", "kernel.h", "tensor.c", "tensor_math.c", "tensor_math.h", "rng.c", "blas.h", "nn/ops.h"} do
      H.write_file(root .. "/csrc/core/" .. f, "")
    end
    H.write_file(root .. "/csrc/core/README.md", table.concat({"<!-- not in the tree: csrc/cuda -->",
      "`kernel.c`, `tensor*.c`, `nn/` (`nn/ops.h`, `nn/gone.h`), `csrc/cuda/`, `lt_error`, `lightning/dist.so`, `gone.c`"},
      "\n"))
    assert.same({
      "csrc/core/README.md:2: `nn/gone.h` names csrc/core/nn/gone.h, which the repository does not hold",
      "csrc/core/README.md:2: `gone.c` names csrc/core/gone.c, which the repository does not hold",
      "csrc/core/README.md: csrc/core/blas.h is neither named nor in a folder it names",
      "csrc/core/README.md: csrc/core/rng.c is neither named nor in a folder it names"},
      problems_of(root, tree(root), "csrc/core/README.md", {}))
    H.rmdir(root)
  end)

  local set = {["docs"] = true, ["docs/nn.md"] = true, ["README.md"] = true, ["fuzz"] = true,
    ["fuzz/png_fuzz.c"] = true, ["csrc"] = true, ["csrc/core"] = true, ["csrc/core/nn"] = true,
    ["csrc/core/nn/conv2d.c"] = true, ["lua/lightning/util/options.lua"] = true}

  it("reads repository paths from words and leaves other words alone", function()
    assert.equal("fuzz/png_fuzz.c", path_of("(fuzz/png_fuzz.c),"))
    assert.equal("csrc/core", path_of("csrc/core/..."))
    assert.equal("csrc/core", path_of("csrc/core/"))
    assert.equal("lua/lightning/util/options.lua", path_of("lightning/util/options.lua"))
    assert.equal("examples/train.lua", path_of("examples/train.lua:342:"))
    assert.equal("setup.sh", path_of("setup.sh"))
    for _, word in ipairs {"lua/?.lua;", "outputs/x", "nn/ops.h", "http://spec/x", "$HOME/spec/x", "lightning/dist.so",
        "--cifar10", "train.lua"} do
      assert.is_nil(path_of(word), word)
    end
  end)

  it("matches wildcards and placeholders within names, ** across folders", function()
    assert.is_true(exists(set, "fuzz/*_fuzz.c"))
    assert.is_true(exists(set, "fuzz/<name>_fuzz.c"))
    assert.is_true(exists(set, "csrc/**.c"))
    assert.is_false(exists(set, "csrc/*.c"))
    assert.is_false(exists(set, "fuzz/*_fuzz.h"))
  end)

  it("resolves links from the file's folder, refuses ones that leave the tree, and checks anchors", function()
    assert.equal("README.md", normalise("docs/../README.md"))
    assert.is_nil(normalise("../shared/DESIGN.md"))
    assert.equal("mixed-precision-bf16", slug("Mixed precision (bf16)"))
    assert.equal("transforms-ldatatransforms", slug("Transforms (`L.data.transforms`)"))
    assert.equal("the-model-zoo-airnet-airbench94", slug("The model zoo: AirNet (airbench94)"))
    local a = anchors_of("# A\n## Run\n```sh\n# not a heading\n```\n## Run\n")
    assert.same({a = true, run = true, ["run-1"] = true}, a)
  end)
end)
