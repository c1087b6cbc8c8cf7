--- Downloads with curl (or wget), checked by MD5, unpacked with tar: what torchvision's download = True
-- does. Used by CIFAR10{download = true}, ImageDataModule{download = true} and train.lua --cifar10.
-- On a terminal the tool draws its progress bar on standard error; elsewhere (a log file) it is quiet
-- and only the start and the end of the download are reported.
local L = require "lightning"
local core = require "lightning.core"
local U = require "lightning.util.checks"

local M = {}

M.CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
M.CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
M.CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
-- how the error for missing files (download off) says to turn the download on
M.DOWNLOAD_HINT = "pass download = true to fetch them"

-- A sanitizer runtime preloaded into the interpreter (as the CI's sanitizer run does) is not passed on
-- to the tools: curl hangs under it.
local function command(cmd)
  local preload = os.getenv("LD_PRELOAD")
  if preload and preload:find("libasan", 1, true) then return "env -u LD_PRELOAD " .. cmd end
  return cmd
end

-- Runs a shell command; returns ok, its output (stdout and stderr), its exit code.
local function run(cmd)
  local p = io.popen(command(cmd) .. " 2>&1", "r")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

-- Runs a shell command on the script's own standard output and error (so that a progress bar shows).
local function run_attached(cmd)
  io.stdout:flush()
  local ok, _, code = os.execute(command(cmd))
  return ok, "", code
end

local function have(tool)
  return os.execute("command -v " .. tool .. " >/dev/null 2>&1") == true
end

-- What curl's and wget's exit codes mean; `network` marks the failures of a missing or cut connection.
local CURL_EXIT = {
  [5] = {"could not resolve the proxy", true}, [6] = {"could not resolve the host name", true},
  [7] = {"could not connect to the server", true}, [18] = {"the transfer ended before the whole file came", true},
  [22] = {"the server answered with an HTTP error"}, [23] = {"could not write the file"},
  [28] = {"the connection timed out", true}, [35] = {"the TLS handshake failed", true},
  [52] = {"the server sent nothing", true}, [56] = {"the connection broke while receiving", true},
}
local WGET_EXIT = {[3] = {"could not write the file"}, [4] = {"network failure", true},
  [5] = {"the TLS handshake failed", true}, [8] = {"the server answered with an error"}}

--- Whether standard error is a terminal (where a progress bar can redraw in place).
function M.stderr_is_terminal()
  local term = os.getenv("TERM")
  if term == nil or term == "" or term == "dumb" then return false end
  return L.core.metrics.isatty(2)
end

--- Fetches url into path. opts: connect_timeout (seconds without a connection before giving up,
-- default 10; a transfer that stalls below 1 kB/s for 30 s gives up too), progress (draw the tool's
-- progress bar on standard error; default: when it is a terminal). Returns true, or nil, a message and
-- whether the failure is one of the network (no connection, a connection cut).
function M.fetch(url, path, opts)
  opts = opts or {}
  local connect_timeout = opts.connect_timeout or 10
  local progress = opts.progress
  if progress == nil then progress = M.stderr_is_terminal() end
  local q = U.shell_quote
  local cmd, meanings, tool
  if have("curl") then
    tool, meanings = "curl", CURL_EXIT
    cmd = ("curl -fL %s --connect-timeout %d --speed-limit 1024 --speed-time 30 -o %s %s"):format(
      progress and "--progress-bar" or "-sS", connect_timeout, q(path), q(url))
  elseif have("wget") and not url:match("^file:") then
    tool, meanings = "wget", WGET_EXIT
    cmd = ("wget %s --connect-timeout=%d --read-timeout=30 --tries=1 -O %s %s"):format(
      progress and "-q --show-progress" or "-nv", connect_timeout, q(path), q(url))
  else
    return nil, "neither curl nor wget is installed", false
  end
  local ok, out, code = (progress and run_attached or run)(cmd)
  if not ok then
    os.remove(path)
    local meaning = meanings[code] or {"exit status " .. tostring(code)}
    local detail = (out:gsub("%s+$", ""))   -- the tool's own words (on the terminal already with a bar)
    if detail == "" then detail = ("%s: %s (exit %s)"):format(tool, meaning[1], tostring(code)) end
    return nil, detail, meaning[2] == true
  end
  return true
end

--- The steps to install CIFAR-10 by hand into folder dest (for messages; several lines).
function M.cifar10_manual_steps(dest)
  return table.concat({
    "To install CIFAR-10 by hand:",
    ("  1. on a machine with a network, download %s (about 170 MB, MD5 %s)"):format(M.CIFAR10_URL, M.CIFAR10_MD5),
    ("  2. put it in %s/"):format(dest),
    ("  3. run again: the archive is checked and unpacked there; or unpack it in %s yourself (tar xzf %s -C %s), "
      .. "so that %s/cifar-10-batches-bin/data_batch_1.bin exists"):format(dest, M.CIFAR10_ARCHIVE, dest, dest),
  }, "\n")
end

-- "162.1 MB" or "3075 bytes": the size of a file
local function size_text(path)
  if core.io.file_type(path) ~= "file" then return "0 bytes" end  -- never open a FIFO
  local f = io.open(path, "rb")
  if not f then return "0 bytes" end
  local size = f:seek("end")
  f:close()
  if size < 1e6 then return ("%d bytes"):format(size) end
  return ("%.1f MB"):format(size / 1e6)
end

-- The outermost folder of path that is not there (what mkdir -p would create first), or nil.
local function outermost_missing(path)
  local prefix = path:sub(1, 1) == "/" and "/" or ""
  for part in path:gmatch("[^/]+") do
    prefix = prefix .. part
    if not core.io.file_type(prefix) then return prefix end
    prefix = prefix .. "/"
  end
  return nil
end

-- Removes path and the folders above it up to top, as long as they are empty (os.remove removes
-- only an empty folder).
local function remove_empty_folders(path, top)
  path = path:gsub("/+$", "")
  while os.remove(path) and path ~= top do
    path = path:match("^(.*)/[^/]*$")
    if not path or path == "" then break end
  end
end

local download_cifar10

--- Downloads the CIFAR-10 binary archive into folder `dest`, checks its MD5 and unpacks it there (giving
-- dest/cifar-10-batches-bin/). An archive already in dest with the right MD5 is unpacked without a
-- download. opts: url, md5 (false: no check), fname (for messages), output (a function taking a line;
-- default: print), progress (see fetch), connect_timeout. When it fails, the folders it created for the
-- download are removed again (a typo in the folder's name leaves nothing behind).
function M.cifar10(dest, opts)
  local created = outermost_missing(dest)
  local ok, result = pcall(download_cifar10, dest, opts)
  if not ok then
    if created then remove_empty_folders(dest, created) end
    error(result, 0)
  end
  return result
end

function download_cifar10(dest, opts)
  opts = opts or {}
  local fname = opts.fname or "lightning.data.CIFAR10"
  local say = opts.output or print
  local url = opts.url or os.getenv("LIGHTNING_CIFAR10_URL") or M.CIFAR10_URL
  local md5 = opts.md5
  if md5 == nil then md5 = os.getenv("LIGHTNING_CIFAR10_MD5") or M.CIFAR10_MD5 end
  local where = dest .. "/cifar-10-batches-bin"
  if not os.execute("mkdir -p " .. U.shell_quote(dest)) then
    U.fail(fname, "cannot create the folder %s for the download", dest)
  end
  local archive = dest .. "/" .. M.CIFAR10_ARCHIVE
  local have_archive = U.file_exists(archive) and (not md5 or L.core.data.md5_file(archive) == md5)
  if not have_archive then
    local part = archive .. ".part"
    say(("Downloading %s to %s"):format(url, archive))
    local started = L.now()
    local ok, why, network = M.fetch(url, part, {progress = opts.progress, connect_timeout = opts.connect_timeout})
    if not ok then
      U.fail(fname, "could not download %s: %s%s\n%s", url, why, network and " (is there a network connection?)" or "",
        M.cifar10_manual_steps(dest))
    end
    if md5 then
      local got = L.core.data.md5_file(part)
      if got ~= md5 then
        local size = size_text(part)
        os.remove(part)
        U.fail(fname, "the file downloaded from %s (%s) has MD5 %s, expected %s: it is corrupt, truncated or not "
          .. "the CIFAR-10 archive (removed it); run again to retry.\n%s", url, size, got, md5, M.cifar10_manual_steps(dest))
      end
    end
    assert(os.rename(part, archive))
    say(("Downloaded %s in %.1f s%s"):format(size_text(archive), L.now() - started, md5 and ", MD5 verified" or ""))
  end
  say(("Extracting %s to %s"):format(archive, dest))
  local unpacked, out = run(("tar xzf %s -C %s"):format(U.shell_quote(archive), U.shell_quote(dest)))
  if not unpacked then U.fail(fname, "could not unpack %s: %s", archive, (out:gsub("%s+$", ""))) end
  if not U.file_exists(where .. "/batches.meta.txt") then
    U.fail(fname, "%s unpacked, but %s/batches.meta.txt is missing: it is not the CIFAR-10 binary archive", archive, where)
  end
  return where
end

return M
