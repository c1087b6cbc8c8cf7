--- The few file-system operations the Trainer needs. Folders are made by the io bindings
-- (lightning.core.io.mkdirs) when present, by `mkdir -p` otherwise.
local core = require "lightning.core"

local fs = {}

function fs.join(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local p = select(i, ...)
    if p ~= nil and p ~= "" then parts[#parts + 1] = tostring(p) end
  end
  return (table.concat(parts, "/"):gsub("//+", "/"))
end

--- Whether anything (a file, a folder, ...) is at path. Asks stat rather than opening it: opening a FIFO
-- for reading would wait for a writer for ever.
function fs.exists(path)
  return core.io.file_type(path) ~= nil
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- mkdir -p; returns true or nil and a message.
function fs.mkdirs(path)
  local io_core = core.io
  if io_core and io_core.mkdirs then
    local ok, err = pcall(io_core.mkdirs, path)
    if ok then return true end
    return nil, tostring(err)
  end
  local ok = os.execute("mkdir -p " .. shell_quote(path) .. " 2>/dev/null")
  if ok then return true end
  return nil, "cannot create the folder " .. path
end

--- Writes `bytes` bytes to a scratch file in dir, then removes it: a read-only folder, a file in
-- place of a folder or a full disk shows up here rather than after an epoch of training.
function fs.check_writable(dir, bytes, probe_path)
  local ok, err = fs.mkdirs(dir)
  if not ok then return nil, err end
  local path = probe_path or fs.join(dir, (".lightning-write-test-%d"):format(math.random(1, 1 << 30)))
  local f, open_err = io.open(path, "wb")
  if not f then return nil, open_err end
  local chunk = string.rep("\0", 1 << 16)
  local left = bytes or 0
  local write_ok, write_err = true, nil
  while left > 0 and write_ok do
    local n = math.min(left, #chunk)
    write_ok, write_err = f:write(n == #chunk and chunk or chunk:sub(1, n))
    left = left - n
  end
  if write_ok then write_ok, write_err = f:flush() end
  local close_ok, close_err = f:close()
  if probe_path == nil then os.remove(path) end
  if not write_ok then return nil, write_err end
  if not close_ok then return nil, close_err end
  return true
end

return fs
