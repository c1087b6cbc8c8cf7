-- Shared by the specs that start data-parallel jobs with mpirun: whether they can run here, and a job
-- of spec/distributed/worker.lua with the tree's module paths.
--   local M = require "mpi_helpers"
--   local why = M.unavailable()        -- nil, or why the distributed specs are skipped
--   local job = M.mpirun(2, "fit", {kind = "plain", ...}, {mca = {{"btl", "tcp,self"}}})
--   job.code, job.output, job.seconds, M.results(job) --> each rank's report
local L = require "lightning"
local H = require "helpers"
local X = require "script_helpers"
local values = require "lightning.distributed.values"

local M = {}

--- nil when lightning/dist.so is built and mpirun is installed; else the reason the specs skip.
function M.unavailable()
  if not L.distributed.available() then
    return "lightning/dist.so is not built (CMake found no MPI, or -DLIGHTNING_WITH_MPI=OFF): " ..
      "the distributed specs are skipped"
  end
  if not os.execute("command -v mpirun >/dev/null 2>&1") then
    return "mpirun is not installed (Debian: openmpi-bin): the distributed specs are skipped"
  end
end

local function env()
  local paths = ("LUA_PATH_5_4=%q"):format(X.ROOT .. "/lua/?.lua;" .. X.ROOT .. "/lua/?/init.lua;" .. X.ROOT ..
    "/spec/?.lua;;")
  local cpath = package.cpath:gsub("([^;]+)", function(p) return p:sub(1, 1) == "/" and p or X.ROOT .. "/" .. p end)
  -- containers may forbid the single-copy transfers of shared memory (ptrace): copy through the buffers
  return paths .. (" LUA_CPATH_5_4=%q OMPI_MCA_btl_vader_single_copy_mechanism=none OMP_NUM_THREADS=1"):format(cpath)
end

--- Runs `worker.lua scenario <options>` as np processes; options.out (a new folder unless given) gets
-- their reports. opts: mca (a list of {name, value}), timeout (seconds, default 120), script (another
-- script instead of the worker, with its own argument words in opts.args), hostfile (mpirun's
-- --hostfile), env (more -x NAME=value settings), wrap (words that start mpirun: `ip netns exec NS`).
function M.mpirun(np, scenario, options, opts)
  opts = opts or {}
  options = options or {}
  options.out = options.out or H.tmpdir()
  local argv = L.distributed.launch.command{nproc = np, root = L.distributed.launch.is_root(),
    cores = L.info().cpu.logical_cpus, mca = opts.mca, hostfile = opts.hostfile, env = opts.env,
    script = opts.script or (X.ROOT .. "/spec/distributed/worker.lua"),
    args = opts.args or {scenario, values.encode(options)}}
  local words = {}
  for _, list in ipairs({opts.wrap or {}, argv}) do table.move(list, 1, #list, #words + 1, words) end
  -- (the output goes to a file, not a pipe: a daemon left behind by a lost host would hold a pipe open)
  local log = options.out .. ".log"
  local line = ("cd %q && %s timeout -k 5 %d %s >%q 2>&1"):format(X.ROOT, env(), opts.timeout or 120,
    L.distributed.launch.shell_words(words), log)
  local started = L.now()
  local _, _, code = os.execute(line)
  local finished = L.now()
  local output = H.read_file(log)
  os.remove(log)
  return {code = code, output = output, seconds = finished - started, out = options.out, np = np, finished = finished}
end

--- Each rank's report (rank_<r>.json) of a job, by rank from 1; a missing one is an error with the output.
function M.results(job)
  local list = {}
  for r = 0, job.np - 1 do
    local f = io.open(("%s/rank_%d.json"):format(job.out, r))
    assert(f, ("rank %d wrote no report; the job said:\n%s"):format(r, job.output))
    list[r + 1] = values.decode(f:read("a"))
    f:close()
  end
  return list
end

--- Asserts that a job succeeded, showing its output if not.
function M.assert_ok(job)
  assert(job.code == 0, ("mpirun -np %d exited with %s:\n%s"):format(job.np, tostring(job.code), job.output))
end

--- Asserts that a job succeeded and that each rank reported {ok = true, rank = its rank}; removes its folder.
function M.assert_each_ok(job)
  M.assert_ok(job)
  for r, report in ipairs(M.results(job)) do
    assert(report.ok == true and report.rank == r - 1, ("rank %d reported %s"):format(r - 1, values.encode(report)))
  end
  H.rmdir(job.out)
end

return M
