--- Finds the peers' Python (bench/setup_peers.sh makes it) for the specs that check our files with the
-- real tool. Such a spec reports itself pending when the peer is missing; CI installs it.
--   local peers = require "peers"
--   local python, why = peers.python("tensorboard")   -- nil and the reason when it is not installed
local M = {}

local function quoted(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function has_module(python, module)
  return os.execute(("%s -c 'import %s' >/dev/null 2>&1"):format(quoted(python), module)) == true
end

--- The first Python that imports `module`: $LIGHTNING_PEERS_PYTHON, then .venv-peers/bin/python.
function M.python(module)
  local tried = {}
  for _, python in ipairs({os.getenv("LIGHTNING_PEERS_PYTHON") or false, ".venv-peers/bin/python"}) do
    if python then
      if has_module(python, module) then return python end
      tried[#tried + 1] = python
    end
  end
  return nil, ("%s is not installed in %s (bench/setup_peers.sh installs it)"):format(module,
    table.concat(tried, " or "))
end

--- Runs `python script args...` and returns its standard output decoded as JSON; an error carries the
-- command's own error output.
function M.json(python, script, ...)
  local cjson = require "cjson"
  local args = {quoted(python), quoted(script)}
  for _, a in ipairs({...}) do args[#args + 1] = quoted(a) end
  local errfile = os.tmpname()
  local p = assert(io.popen(table.concat(args, " ") .. " 2>" .. errfile))
  local text = p:read("a")
  local ok = p:close()
  local f = io.open(errfile)
  local err = f and f:read("a") or ""
  if f then f:close() end
  os.remove(errfile)
  if not ok then error(("%s failed:\n%s"):format(script, err), 2) end
  return cjson.decode(text)
end

return M
