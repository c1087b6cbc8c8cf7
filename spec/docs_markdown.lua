-- Reading the project's Markdown for the specs that check it (spec/docs_examples_spec.lua runs its code
-- blocks, spec/docs_paths_spec.lua checks the paths it names): which files, their fenced blocks, and
-- the lines outside them.
local M = {}

--- The documentation the specs check, relative to the tree's root: README.md and docs/*.md.
function M.files(root)
  local files = {"README.md"}
  local p = io.popen(("ls %q"):format(root .. "/docs"))
  for name in p:lines() do
    if name:match("%.md$") then files[#files + 1] = "docs/" .. name end
  end
  p:close()
  return files
end

local MARKER = "^%s*<!%-%-%s*not run:%s*(.-)%s*%-%->%s*$"
local NEEDS = "^%s*<!%-%-%s*needs:%s*(.-)%s*%-%->%s*$"

--- The fenced blocks of a Markdown text and its other lines: blocks {line = n, lang = "lua",
-- code = "...", not_run = reason or nil, needs = dependency or nil}, and prose {{line = n, text = "..."}}
-- (every line outside a fenced block, fences excluded).
function M.parse(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local blocks, prose, i = {}, {}, 1
  while i <= #lines do
    local indent, lang = lines[i]:match("^(%s*)```(%S*)%s*$")
    if indent then
      local start, body = i, {}
      i = i + 1
      while i <= #lines and not lines[i]:match("^" .. indent .. "```%s*$") do
        body[#body + 1] = lines[i]:sub(1, #indent) == indent and lines[i]:sub(#indent + 1) or lines[i]
        i = i + 1
      end
      assert(i <= #lines, ("line %d: the block has no closing fence"):format(start))
      local previous = start - 1
      while previous > 0 and lines[previous]:match("^%s*$") do previous = previous - 1 end
      local reason = previous > 0 and lines[previous]:match(MARKER) or nil
      local needs = previous > 0 and lines[previous]:match(NEEDS) or nil
      blocks[#blocks + 1] = {line = start, lang = lang, code = table.concat(body, "\n") .. "\n", not_run = reason,
        needs = needs}
    else
      prose[#prose + 1] = {line = i, text = lines[i]}
    end
    i = i + 1
  end
  return blocks, prose
end

--- The fenced blocks alone (see parse).
function M.blocks_of(text)
  return (M.parse(text))
end

return M
