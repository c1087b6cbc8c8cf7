--- Downloads with curl (or wget), checked by MD5, unpacked with tar. Used by CIFAR10{download = true}.
local L = require "lightning"
local U = require "lightning.data.util"

local M = {}

M.CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
M.CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"

-- Runs a shell command; returns ok, its output (stdout and stderr). A sanitizer runtime preloaded into
-- the interpreter (as the CI's sanitizer run does) is not passed on: curl hangs under it.
local function run(cmd)
  local preload = os.getenv("LD_PRELOAD")
  if preload and preload:find("libasan", 1, true) then cmd = "env -u LD_PRELOAD " .. cmd end
  local p = io.popen(cmd .. " 2>&1", "r")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

local function have(tool)
  return os.execute("command -v " .. tool .. " >/dev/null 2>&1") == true
end

--- Fetches url into path. Gives up after connect_timeout seconds without a connection, or when the
-- transfer stalls (below 1 kB/s for 30 s). Returns true, or nil and a message.
function M.fetch(url, path, connect_timeout)
  connect_timeout = connect_timeout or 10
  local q = U.shell_quote
  local cmd
  if have("curl") then
    cmd = ("curl -fsSL --connect-timeout %d --speed-limit 1024 --speed-time 30 -o %s %s"):format(connect_timeout, q(path), q(url))
  elseif have("wget") and not url:match("^file:") then
    cmd = ("wget -q --connect-timeout=%d --read-timeout=30 --tries=1 -O %s %s"):format(connect_timeout, q(path), q(url))
  else
    return nil, "neither curl nor wget is installed"
  end
  local ok, out, code = run(cmd)
  if not ok then
    os.remove(path)
    return nil, ("%s failed (exit %s): %s"):format(cmd:match("^%S+"), tostring(code), (out:gsub("%s+$", "")))
  end
  return true
end

--- Downloads the CIFAR-10 binary archive into folder `dest`, checks its MD5 and unpacks it there (giving
-- dest/cifar-10-batches-bin/). opts: url, md5 (false: no check), fname (for messages).
function M.cifar10(dest, opts)
  local fname = opts.fname or "lightning.data.CIFAR10"
  local url = opts.url or os.getenv("LIGHTNING_CIFAR10_URL") or M.CIFAR10_URL
  local md5 = opts.md5
  if md5 == nil then md5 = os.getenv("LIGHTNING_CIFAR10_MD5") or M.CIFAR10_MD5 end
  local where = dest .. "/cifar-10-batches-bin"
  local manual = ("download %s yourself and unpack it in %s (tar xzf cifar-10-binary.tar.gz), so that %s/data_batch_1.bin exists, "
    .. "or pass root = the folder that holds the batches"):format(M.CIFAR10_URL, dest, where)
  if not os.execute("mkdir -p " .. U.shell_quote(dest)) then
    U.fail(fname, "cannot create the folder %s for the download", dest)
  end
  local archive = dest .. "/cifar-10-binary.tar.gz"
  local part = archive .. ".part"
  local ok, why = M.fetch(url, part)
  if not ok then U.fail(fname, "could not download %s: %s. Without a network, %s", url, why, manual) end
  if md5 then
    local got = L.core.data.md5_file(part)
    if got ~= md5 then
      os.remove(part)
      U.fail(fname, "the file downloaded from %s has MD5 %s, expected %s: it is corrupt or not the CIFAR-10 archive (removed it)",
        url, got, md5)
    end
  end
  assert(os.rename(part, archive))
  local unpacked, out = run(("tar xzf %s -C %s"):format(U.shell_quote(archive), U.shell_quote(dest)))
  if not unpacked then U.fail(fname, "could not unpack %s: %s", archive, (out:gsub("%s+$", ""))) end
  if not U.file_exists(where .. "/batches.meta.txt") then
    U.fail(fname, "%s unpacked, but %s/batches.meta.txt is missing: it is not the CIFAR-10 binary archive", archive, where)
  end
  return where
end

return M
