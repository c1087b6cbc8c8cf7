--- How data-parallel processes are started: what Open MPI's mpirun tells each process about its place
-- (OMPI_COMM_WORLD_* variables), and the mpirun command line that `lightning-train --nproc N`
-- (examples/train.lua) runs for the user.
--   launch.environment()  --> {rank, world_size, local_rank, local_world_size} under mpirun, else nil
--   launch.command{nproc = 4, script = "train.lua", args = {...}, ...}  --> argv (a list of words)
--   launch.shell_words(argv)  --> one line for sh
--   launch.clean_stale_sessions([tmpdir])  --> the session folders removed (see below)
local L = require "lightning"

local core = L.core
local launch = {}

local function integer(text)
  local n = text and math.tointeger(tonumber(text))
  return n
end

--- This process's place when mpirun started it; nil otherwise. getenv (os.getenv) is for the specs.
function launch.environment(getenv)
  getenv = getenv or os.getenv
  local rank, size = integer(getenv("OMPI_COMM_WORLD_RANK")), integer(getenv("OMPI_COMM_WORLD_SIZE"))
  if not (rank and size) or rank < 0 or size < 1 or rank >= size then return nil end
  return {rank = rank, world_size = size, local_rank = integer(getenv("OMPI_COMM_WORLD_LOCAL_RANK")) or rank,
    local_world_size = integer(getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) or size}
end

--- Whether this process runs as root (mpirun refuses unless told --allow-run-as-root).
function launch.is_root()
  local p = io.popen("id -u 2>/dev/null")
  local uid = p and p:read("l")
  if p then p:close() end
  return uid == "0"
end

-- The variables the processes need on every machine (mpirun passes only what -x names to other hosts).
local PASSED = {"LUA_PATH", "LUA_CPATH", "LUA_PATH_5_4", "LUA_CPATH_5_4", "LIGHTNING_DIST_EXIT_TIMEOUT",
  "LIGHTNING_DIST_TIMEOUT", "OPENBLAS_CORETYPE"}

-- Open MPI's daemons notice a lost link between hosts by TCP keepalive, by default after 300 s idle
-- and 9 probes 20 s apart (8 minutes, while the processes wait in a collective). These end such a job
-- within 5 + 3 x 6 s of the last word between the daemons, and survive a link down for less than
-- 12 s: 3 lost probes in a row end a connection, and 6 s apart no 10 s outage loses 3 (2 s apart, a
-- 10 s flap ended the job). An mca pair of the same name, or an OMPI_MCA_<name> variable that is set,
-- replaces one.
launch.KEEPALIVE = {{"oob_tcp_keepalive_time", "5"}, {"oob_tcp_keepalive_intvl", "6"},
  {"oob_tcp_keepalive_probes", "3"}}

--- The mpirun command for nproc processes of `script` with its `args`:
--   -np N; --allow-run-as-root as root (root = true); --oversubscribe when N exceeds `cores` (the
--   machine's logical CPUs, when no hosts are given); each process computes with `threads` threads
--   (default 1: OMP_NUM_THREADS=1), and with more than one, or oversubscribed, processes are not
--   bound to one core each (--bind-to none); hosts ("a:4,b:4", mpirun's -H) or hostfile; the
--   keepalive settings of KEEPALIVE; mca: extra {name, value} pairs (--mca btl tcp,self); the variables in PASSED that are set travel with -x;
--   interpreter: the words that start the script (launch.interpreter()), default {"lua5.4"};
--   env: more "NAME=value" settings for the processes.
function launch.command(o)
  local argv = {o.mpirun or "mpirun", "-np", tostring(o.nproc)}
  local function add(...) for _, w in ipairs({...}) do argv[#argv + 1] = w end end
  if o.root then add("--allow-run-as-root") end
  local oversubscribed = not o.hosts and not o.hostfile and o.cores and o.nproc > o.cores
  if oversubscribed then add("--oversubscribe") end
  local threads = o.threads or 1
  if threads > 1 or oversubscribed then add("--bind-to", "none") end
  if o.hosts then add("-H", o.hosts) end
  if o.hostfile then add("--hostfile", o.hostfile) end
  local getenv = o.getenv or os.getenv
  local given = {}
  for _, pair in ipairs(o.mca or {}) do given[pair[1]] = true end
  for _, pair in ipairs(launch.KEEPALIVE) do
    if not (given[pair[1]] or getenv("OMPI_MCA_" .. pair[1])) then add("--mca", pair[1], pair[2]) end
  end
  for _, pair in ipairs(o.mca or {}) do add("--mca", pair[1], pair[2]) end
  add("-x", "OMP_NUM_THREADS=" .. threads)
  for _, setting in ipairs(o.env or {}) do add("-x", setting) end
  for _, name in ipairs(PASSED) do
    if getenv(name) then add("-x", name) end
  end
  for _, w in ipairs(o.interpreter or {"lua5.4"}) do add(w) end
  add(o.script)
  for _, a in ipairs(o.args or {}) do add(a) end
  return argv
end

--- argv as one line for sh (each word quoted where needed).
function launch.shell_words(argv)
  local words = {}
  for i, w in ipairs(argv) do
    words[i] = w:match("^[%w@%%+=:,./_-]+$") and w or ("'" .. w:gsub("'", "'\\''") .. "'")
  end
  return table.concat(words, " ")
end

--- The words before the script in this process's command line (arg[-n] .. arg[-1]: the interpreter and
-- its options, such as the -e of LuaRocks' wrapper of lightning-train), to start the same script again.
function launch.interpreter(argv)
  argv = argv or arg or {}
  local first = 0
  while argv[first - 1] ~= nil do first = first - 1 end
  if first == 0 then return {"lua5.4"} end
  return table.move(argv, first, -1, 1, {})
end

--- argv without the option `name` and its value ("--nproc 4" or "--nproc=4").
function launch.without_option(argv, name)
  local out, i = {}, 1
  while argv[i] ~= nil do
    local w = argv[i]
    if w == name then
      i = i + 2
    elseif w:sub(1, #name + 1) == name .. "=" then
      i = i + 1
    else
      out[#out + 1] = w
      i = i + 1
    end
  end
  return out
end

--- Starts this script again as nproc processes under mpirun (what `lightning-train --nproc N` does):
-- the same interpreter and arguments without --nproc; opts: threads (per process, default 1), cores
-- (default: this machine's), print (a function for the command line; default: standard error),
-- command (the words that start the script, default the interpreter and arg[0]: lightning.cli's
-- invocation gives the installed command as the user typed it, `lightning-train`).
-- Returns mpirun's exit status.
function launch.relaunch(nproc, opts)
  opts = opts or {}
  -- mpirun gives rank 0 a terminal of its own even when this output goes to a file: progress bars
  -- then draw only when this process's does
  local env = {}
  if not core.metrics.isatty(1) then env[1] = "TERM=dumb" end
  local command = opts.command
  local argv = launch.command{nproc = nproc, root = launch.is_root(), cores = opts.cores or L.info().cpu.logical_cpus,
    threads = opts.threads, env = env, interpreter = command or launch.interpreter(arg), script = not command and arg[0] or nil,
    args = launch.without_option(launch.script_args(), "--nproc")}
  local line = launch.shell_words(argv)
  launch.clean_stale_sessions()
  if opts.print then opts.print(line) else io.stderr:write(line, "\n") end
  local ok, how, code = os.execute(line)
  if how == "signal" then return 128 + code end
  return ok and 0 or code
end

--- Open MPI keeps each job's session folder (with its shared-memory files, 8-17 MB) in
-- $TMPDIR/ompi.<host>.<uid>/pid.<mpirun's or orted's pid>; a job whose mpirun or daemons were killed
-- leaves it behind. Removes the pid.N folders of this machine whose process no longer runs; returns
-- their paths. relaunch calls it before starting mpirun (lightning-train --nproc).
function launch.clean_stale_sessions(tmpdir, alive)
  tmpdir = tmpdir or os.getenv("TMPDIR") or "/tmp"
  alive = alive or function(pid) return core.io.file_type("/proc/" .. pid) == "directory" end
  local removed = {}
  local ok, names = pcall(core.io.listdir, tmpdir)
  if not ok then return removed end
  for _, name in ipairs(names) do
    local top = tmpdir .. "/" .. name
    if name:match("^ompi%.") and core.io.file_type(top) == "directory" then
      local listed, sessions = pcall(core.io.listdir, top)
      for _, session in ipairs(listed and sessions or {}) do
        local pid = session:match("^pid%.(%d+)$")
        if pid and not alive(pid) then
          local path = top .. "/" .. session
          if os.execute(launch.shell_words({"rm", "-rf", "--", path}) .. " 2>/dev/null") then removed[#removed + 1] = path end
        end
      end
    end
  end
  return removed
end

--- The script's own arguments (arg[1], arg[2], ...).
function launch.script_args()
  return table.move(arg or {}, 1, #(arg or {}), 1, {})
end

return launch
