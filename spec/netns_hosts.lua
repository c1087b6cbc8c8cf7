-- Hosts on one machine for the multi-host specs: network namespaces joined by a bridge, each one a
-- "host" that Open MPI reaches through tools/netns_rsh (`ip netns exec HOST ...`) over TCP.
--   local N = require "netns_hosts"
--   local why = N.unavailable()         -- nil, or why the specs cannot make namespaces here
--   local net = N.create(3)             -- 3 hosts; always net:teardown() (in a finally)
--   local job = net:mpirun(2, "fit", {...})   -- 2 processes on each host: mpi_helpers' job
--   net:link("down", 2)                 -- host 2's link
-- The bridge lives in a namespace of its own, with one veth per host namespace (eth0 there, p<i> on the
-- bridge); the addresses, 10.A.B.0/24 from this process's id, exist only in these namespaces. mpirun
-- itself runs in the bridge's namespace (its lo and the bridge are all it has): the processes' traffic
-- never leaves the namespaces made here. Names carry this process's id and a counter.
local M = require "mpi_helpers"
local X = require "script_helpers"
local H = require "helpers"
local launch = require "lightning.distributed.launch"

local N = {}
N.AGENT = X.ROOT .. "/tools/netns_rsh"

local function run(command)
  local p = io.popen(command .. " 2>&1")
  local output = p:read("a")
  local ok = p:close()
  return ok, output
end

local function must(command)
  local ok, output = run(command)
  assert(ok, ("%s failed: %s"):format(command, output))
  return output
end

local function own_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = tonumber(f:read("l"):match("^(%d+)"))
  f:close()
  return pid
end

local ID, made = own_pid(), 0

--- nil when this process can make network namespaces (root, iproute2, a kernel that allows them) and
-- the distributed specs can run; else the reason.
function N.unavailable()
  local why = M.unavailable()
  if why then return why end
  if not launch.is_root() then return "making network namespaces needs root: the multi-host specs are skipped" end
  if not run("command -v ip") then return "ip (iproute2) is not installed: the multi-host specs are skipped" end
  local probe = ("ltprobe%d"):format(ID)
  local ok, output = run(("ip netns add %s && ip -n %s link add br0 type bridge"):format(probe, probe))
  run("ip netns del " .. probe)
  if not ok then return "network namespaces cannot be made here (" .. output:gsub("%s+$", "") .. ")" end
end

local Net = {}
Net.__index = Net

-- Namespaces (and the agent's folders) that a run which no longer exists left, when it was killed
-- before its teardown: only names of this module's pattern whose process id is gone.
local function sweep()
  local _, list = run("ip netns list")
  for ns, pid in list:gmatch("(lt%a+(%d+)%-[%d-]+)") do
    local alive = io.open("/proc/" .. pid .. "/stat")
    if alive then alive:close() end
    if (ns:match("^ltbr") or ns:match("^lthost")) and not alive then
      local _, pids = run("ip netns pids " .. ns)
      for p in pids:gmatch("%d+") do run("kill -9 " .. p) end
      run("ip netns del " .. ns)
      run(("rm -rf /tmp/netns_rsh.%s"):format(ns))
    end
  end
end

--- Hosts 1..nhosts, as namespaces joined by a bridge; a failure part way tears down what was made.
function N.create(nhosts)
  if made == 0 then sweep() end
  made = made + 1
  local net = setmetatable({namespaces = {}, hosts = {}, dir = H.tmpdir(),
    subnet = ("10.%d.%d"):format((ID >> 8) & 255, ID & 255)}, Net)
  net.bridge = ("ltbr%d-%d"):format(ID, made)
  local ok, err = pcall(function()
    local b = net.bridge
    must("ip netns add " .. b)
    net.namespaces[#net.namespaces + 1] = b
    must(("ip -n %s link set lo up && ip -n %s link add br0 type bridge && ip -n %s link set br0 up && " ..
      "ip -n %s addr add %s.254/24 dev br0"):format(b, b, b, b, net.subnet))
    for i = 1, nhosts do
      local h = ("lthost%d-%d-%d"):format(ID, made, i)
      must("ip netns add " .. h)
      net.namespaces[#net.namespaces + 1] = h
      net.hosts[i] = h
      must(("ip -n %s link set lo up && ip -n %s link add eth0 type veth peer name p%d netns %s && " ..
        "ip -n %s link set p%d master br0 up && ip -n %s addr add %s.%d/24 dev eth0 && ip -n %s link set eth0 up")
        :format(h, h, i, b, b, i, h, net.subnet, i, h))
    end
  end)
  if not ok then
    net:teardown()
    error(err, 0)
  end
  return net
end

--- The processes inside the namespaces made (their PIDs).
function Net:pids()
  local list = {}
  for _, ns in ipairs(self.namespaces) do
    local _, output = run("ip netns pids " .. ns)
    for pid in output:gmatch("%d+") do list[#list + 1] = tonumber(pid) end
  end
  return list
end

--- Ends every process left in the namespaces (SIGKILL, by PID) and deletes the namespaces, the bridge
-- and veths with them. Safe to call twice.
function Net:teardown()
  for _ = 1, 50 do
    local pids = self:pids()
    if #pids == 0 then break end
    for _, pid in ipairs(pids) do run("kill -9 " .. pid) end
    run("sleep 0.1")
  end
  for i = #self.namespaces, 1, -1 do run("ip netns del " .. self.namespaces[i]) end
  for _, h in ipairs(self.hosts) do run(("rm -rf /tmp/netns_rsh.%s"):format(h)) end   -- (the agent's TMPDIR)
  self.namespaces = {}
  H.rmdir(self.dir)
end

--- Host i's link to the bridge "up" or "down" (from the host's side).
function Net:link(state, i)
  must(("ip -n %s link set eth0 %s"):format(self.hosts[i], state))
end

--- A hostfile of every host with `slots` slots.
function Net:hostfile(slots)
  local lines = {}
  for _, h in ipairs(self.hosts) do lines[#lines + 1] = ("%s slots=%d\n"):format(h, slots) end
  local path = self.dir .. "/hostfile"
  H.write_file(path, table.concat(lines))
  return path
end

--- The MCA parameters that make Open MPI use the namespaces' network: the agent, TCP, the subnet.
function Net:mca()
  local subnet = self.subnet .. ".0/24"
  return {{"plm_rsh_agent", N.AGENT}, {"btl", "tcp,self"}, {"oob_tcp_if_include", subnet},
    {"btl_tcp_if_include", subnet}}
end

--- mpi_helpers.mpirun of per_host processes on each host: mpirun started in the bridge's namespace
-- with the hostfile, the MCA parameters above and opts.mca after them, the module paths passed with -x
-- as on real hosts.
function Net:mpirun(per_host, scenario, options, opts)
  opts = opts or {}
  local mca = self:mca()
  for _, pair in ipairs(opts.mca or {}) do mca[#mca + 1] = pair end
  local cpath = package.cpath:gsub("([^;]+)", function(p) return p:sub(1, 1) == "/" and p or X.ROOT .. "/" .. p end)
  return M.mpirun(#self.hosts * per_host, scenario, options, {mca = mca, hostfile = self:hostfile(per_host),
    wrap = {"ip", "netns", "exec", self.bridge}, timeout = opts.timeout,
    env = {"LUA_PATH_5_4=" .. X.ROOT .. "/lua/?.lua;" .. X.ROOT .. "/lua/?/init.lua;" .. X.ROOT .. "/spec/?.lua;;",
      "LUA_CPATH_5_4=" .. cpath}})
end

return N
