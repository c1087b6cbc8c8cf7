-- Hosts on one machine for the multi-host specs: tools/netns_hosts.lua's namespaces (see there: a bridge
-- in a namespace of its own, a veth per host, a subnet that exists only there, torn down by PID) with
-- the specs' reasons to skip and mpi_helpers' jobs.
--   local N = require "netns_hosts"
--   local why = N.unavailable()         -- nil, or why the specs cannot make namespaces here
--   local net = N.create(3)             -- 3 hosts; always net:teardown() (in a finally)
--   local job = net:mpirun(2, "fit", {...})   -- 2 processes on each host: mpi_helpers' job
--   net:link("down", 2)                 -- host 2's link
local M = require "mpi_helpers"
local X = require "script_helpers"
local N = dofile(X.ROOT .. "/tools/netns_hosts.lua")

local hosts_unavailable = N.unavailable

--- nil when this process can make network namespaces and the distributed specs can run; else the reason.
function N.unavailable()
  local why = M.unavailable() or hosts_unavailable()
  if why and not why:find("skipped", 1, true) then why = why .. ": the multi-host specs are skipped" end
  return why
end

--- mpi_helpers.mpirun of per_host processes on each host: mpirun started in the bridge's namespace
-- with the hostfile, the MCA parameters of Net:mca and opts.mca after them, the module paths passed
-- with -x as on real hosts.
function N.Net:mpirun(per_host, scenario, options, opts)
  opts = opts or {}
  local mca = self:mca()
  for _, pair in ipairs(opts.mca or {}) do mca[#mca + 1] = pair end
  local cpath = package.cpath:gsub("([^;]+)", function(p) return p:sub(1, 1) == "/" and p or X.ROOT .. "/" .. p end)
  return M.mpirun(#self.hosts * per_host, scenario, options, {mca = mca, hostfile = self:hostfile(per_host),
    wrap = self:wrap(), timeout = opts.timeout,
    env = {"LUA_PATH_5_4=" .. X.ROOT .. "/lua/?.lua;" .. X.ROOT .. "/lua/?/init.lua;" .. X.ROOT .. "/spec/?.lua;;",
      "LUA_CPATH_5_4=" .. cpath}})
end

return N
