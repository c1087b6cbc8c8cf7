--- The few file-system operations the Trainer needs. Folders are made by the io bindings
-- (lightning.core.io.mkdirs: mkdir(2) for each missing component, no shell).
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

--- mkdir -p; returns true or nil and a message ("cannot create folder a/b: Permission denied").
function fs.mkdirs(path)
  local ok, err = pcall(core.io.mkdirs, path)
  if ok then return true end
  return nil, (tostring(err):gsub("^lightning%.core%.io%.mkdirs: ", ""))
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
