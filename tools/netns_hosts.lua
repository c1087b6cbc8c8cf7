-- Hosts on one machine: network namespaces joined by a bridge, each one a "host" that Open MPI reaches
-- through tools/netns_rsh (`ip netns exec HOST ...`) over TCP. The multi-host specs
-- (spec/netns_hosts.lua adds their mpirun) and bench/ddp_bench.lua --hosts N use it; it needs root,
-- iproute2 (and nft for loss) but nothing of busted.
--   local N = dofile("tools/netns_hosts.lua")   -- (or require with tools/?.lua on package.path)
--   local why = N.unavailable()         -- nil, or why namespaces cannot be made here
--   local net = N.create(3)             -- 3 hosts; always net:teardown() (in a finally, or pcall)
--   net:link("down", 2)                 -- host 2's link
--   net:rate("1gbit")                   -- every link limited to 1 Gbit/s each way (tc tbf); nil: none
--   net:loss(0.01)                      -- every host drops 1 % of the packets it sends (nftables)
--   net:command(2, script, args)        -- the mpirun argv of 2 processes of script on each host
-- The bridge lives in a namespace of its own, with one veth per host namespace (eth0 there, p<i> on the
-- bridge); the addresses, 10.A.B.0/24 from this process's id, exist only in these namespaces. mpirun
-- itself runs in the bridge's namespace (its lo and the bridge are all it has): the processes' traffic
-- never leaves the namespaces made here. Names carry this process's id and a counter.
local launch = require "lightning.distributed.launch"

local N = {}
-- the agent lies beside this file (an absolute path: the daemons start it from anywhere)
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
if here:sub(1, 1) ~= "/" then here = io.popen("pwd"):read("l") .. "/" .. here end
N.AGENT = here .. "/netns_rsh"

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

--- nil when this process can make network namespaces (root, iproute2, a kernel that allows them); else
-- the reason.
function N.unavailable()
  if not launch.is_root() then return "making network namespaces needs root" end
  if not run("command -v ip") then return "ip (iproute2) is not installed" end
  local probe = ("ltprobe%d"):format(ID)
  local ok, output = run(("ip netns add %s && ip -n %s link add br0 type bridge"):format(probe, probe))
  run("ip netns del " .. probe)
  if not ok then return "network namespaces cannot be made here (" .. output:gsub("%s+$", "") .. ")" end
end

local Net = {}
Net.__index = Net
N.Net = Net   -- (the hosts' methods: spec/netns_hosts.lua adds the specs' mpirun)

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
      run(("rm -rf /tmp/netns_rsh.%s /tmp/netns_hosts.%s"):format(ns, ns))
    end
  end
end

--- Hosts 1..nhosts, as namespaces joined by a bridge; a failure part way tears down what was made.
function N.create(nhosts)
  if made == 0 then sweep() end
  made = made + 1
  local net = setmetatable({namespaces = {}, hosts = {}, subnet = ("10.%d.%d"):format((ID >> 8) & 255, ID & 255)}, Net)
  net.bridge = ("ltbr%d-%d"):format(ID, made)
  local ok, err = pcall(function()
    local b = net.bridge
    -- (the hostfile's folder, named after the bridge: a run killed before its teardown leaves it to sweep)
    net.dir = "/tmp/netns_hosts." .. b
    must(("rm -rf %q && mkdir -m 700 %q"):format(net.dir, net.dir))
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
-- and veths with them (their qdiscs and nftables tables go with them). Safe to call twice.
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
  if self.dir then run(("rm -rf %q"):format(self.dir)) end
  self.dir = nil
end

--- Host i's link to the bridge "up" or "down" (from the host's side).
function Net:link(state, i)
  must(("ip -n %s link set eth0 %s"):format(self.hosts[i], state))
end

--- Every host's link limited to `rate` (tc's words: "10gbit", "100mbit") each way: a token bucket (tbf)
-- on both ends of each veth; nil removes the limits. The bucket holds 2 ms at the rate, at least 256
-- KB (a veth passes segments of up to 64 KB whole: a smaller bucket drops them all).
function Net:rate(rate)
  for i, h in ipairs(self.hosts) do
    for _, dev in ipairs({{h, "eth0"}, {self.bridge, "p" .. i}}) do
      run(("tc -n %s qdisc del dev %s root"):format(dev[1], dev[2]))   -- (none yet: fails, harmlessly)
      if rate then
        local value, unit = rate:match("^([%d.]+)(%a+)$")
        local bits = assert(tonumber(value), "Net:rate: a rate such as 1gbit") *
          assert(({gbit = 1e9, mbit = 1e6, kbit = 1e3})[unit], "Net:rate: the unit is gbit, mbit or kbit")
        local burst = math.max(256 * 1024, math.floor(bits / 8 * 0.002))
        must(("tc -n %s qdisc add dev %s root tbf rate %s burst %d latency 50ms"):format(dev[1], dev[2], rate, burst))
      end
    end
  end
end

--- Every host drops the fraction p of the packets it sends (a random drop rule in a table of its own,
-- inet ltloss, in the host's namespace: this kernel has no netem); 0 or nil removes it.
function Net:loss(p)
  for _, h in ipairs(self.hosts) do
    run(("ip netns exec %s nft delete table inet ltloss"):format(h))   -- (none yet: fails, harmlessly)
    if p and p > 0 then
      must(("ip netns exec %s nft add table inet ltloss"):format(h))
      must(("ip netns exec %s nft add chain inet ltloss out '{ type filter hook output priority 0; }'"):format(h))
      must(("ip netns exec %s nft add rule inet ltloss out numgen random mod 10000 '<' %d drop")
        :format(h, math.floor(p * 10000 + 0.5)))
    end
  end
end

--- A hostfile of every host with `slots` slots.
function Net:hostfile(slots)
  local lines = {}
  for _, h in ipairs(self.hosts) do lines[#lines + 1] = ("%s slots=%d\n"):format(h, slots) end
  local path = self.dir .. "/hostfile"
  local f = assert(io.open(path .. ".new", "w"))
  f:write(table.concat(lines))
  f:close()
  assert(os.rename(path .. ".new", path))
  return path
end

--- The MCA parameters that make Open MPI use the namespaces' network: the agent, TCP, the subnet.
function Net:mca()
  local subnet = self.subnet .. ".0/24"
  return {{"plm_rsh_agent", N.AGENT}, {"btl", "tcp,self"}, {"oob_tcp_if_include", subnet},
    {"btl_tcp_if_include", subnet}}
end

--- The words that start mpirun in the bridge's namespace.
function Net:wrap()
  return {"ip", "netns", "exec", self.bridge}
end

--- The argv of mpirun (started in the bridge's namespace) for per_host processes of `script` (an
-- absolute path) on each host: the hostfile, the MCA parameters above; opts.env more "NAME=value"
-- settings, opts.threads per process.
function Net:command(per_host, script, args, opts)
  opts = opts or {}
  local argv = launch.command{nproc = #self.hosts * per_host, root = launch.is_root(), hostfile = self:hostfile(per_host),
    mca = self:mca(), env = opts.env, threads = opts.threads, script = script, args = args}
  return table.move(argv, 1, #argv, #self:wrap() + 1, self:wrap())
end

return N
