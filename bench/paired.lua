--- Paired measurement, the one way the benchmarks compare us with a peer. This machine's speed drifts
-- by 2x within minutes, so a single timed run of each proves nothing: ours and the peer run
-- alternately in short rounds (a pair), each pair gives a ratio, and the report is the median of the
-- per-pair ratios with their range.
--   local paired = dofile("bench/paired.lua")
--   local result = paired.run(5, function() return {train = 812} end, function() return {train = 640} end)
--   paired.report(result, {"train", "eval"}, {ours = "lightning", peer = "PyTorch 2.15"})
--   paired.report(result, {"save"}, names, {unit = "ms", lower = true})   -- times: ratio = peer / ours
-- A measurement function returns a table of named figures; a figure missing from either side of a pair
-- leaves that pair out of that figure's ratio. Ratios are oriented so that > 1 means ours is better:
-- ours / peer for rates (larger is better, the default), peer / ours for times (`lower = true`).
-- The peer runs as one subprocess per round (paired.command) printing "name value" lines; without a
-- peer (paired.python says why), paired.run(n, ours) runs ours alone and the report gives its medians.
local paired = {}

function paired.median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

--- Runs n pairs: ours() then peer() (the order alternates from pair to pair, so that neither side
-- always runs on a machine warmed or cooled by the other). Returns {pairs = {{ours = t, peer = t}, ...}}.
-- Without peer, runs ours n times ({ours = t} each).
function paired.run(n, ours, peer)
  assert(n >= 1, "paired.run: at least one pair")
  local result = {pairs = {}}
  for i = 1, n do
    local a, b
    if not peer then a = ours()
    elseif i % 2 == 1 then a = ours() b = peer() else b = peer() a = ours() end
    result.pairs[i] = {ours = a, peer = b}
  end
  return result
end

-- A row of the report: "key", or {ours = key, peer = key or false, label = ..., unit = ..., lower = ...}
-- (peer = false: a figure of ours alone; the peer's key defaults to ours).
local function row_of(row, opts)
  if type(row) == "string" then row = {ours = row} end
  local peer = row.peer
  if peer == nil then peer = row.ours end
  local lower = row.lower
  if lower == nil then lower = opts.lower or false end
  return {ours = row.ours, peer = peer, label = row.label or row.ours, unit = row.unit or opts.unit or "img/s",
    lower = lower}
end

local function figure(p, side, key) return key and p[side] and p[side][key] end

--- The per-pair ratios of one figure (> 1: ours is better: ours / peer, or peer / ours with lower), their
-- median, lowest and highest. `row` is a key or a report row; `lower` as in the report's options.
function paired.ratios(result, row, lower)
  row = row_of(row, {lower = lower})
  local ratios = {}
  for _, p in ipairs(result.pairs) do
    local a, b = figure(p, "ours", row.ours), figure(p, "peer", row.peer)
    if a and b and a > 0 and b > 0 then ratios[#ratios + 1] = row.lower and b / a or a / b end
  end
  if #ratios == 0 then return ratios end
  return ratios, paired.median(ratios), math.min(table.unpack(ratios)), math.max(table.unpack(ratios))
end

-- Three significant figures at most, no exponent: 812, 95.3, 2.40, 0.341.
local function num(v)
  local a = math.abs(v)
  return (a >= 100 and "%.0f" or a >= 10 and "%.1f" or a >= 1 and "%.2f" or "%.3f"):format(v)
end

local function values(result, side, key)
  local list = {}
  for _, p in ipairs(result.pairs) do list[#list + 1] = figure(p, side, key) end
  return list
end

--- Prints each pair and, per figure, the median of the per-pair ratios with their range and the medians
-- of both sides (for a figure of ours alone, or a run without the peer: our median and range).
-- rows: keys or report rows (see row_of); names = {ours = "lightning", peer = "PyTorch 2.15"};
-- opts = {unit = "img/s" (default) or "ms", lower = true for figures where lower is better (times)}.
function paired.report(result, rows, names, opts)
  opts = opts or {}
  local any_peer, list, seen = false, {}, {}
  for _, p in ipairs(result.pairs) do any_peer = any_peer or p.peer ~= nil end
  for _, r in ipairs(rows) do
    r = row_of(r, opts)
    -- without the peer, rows that differ only in the peer's figure are one figure of ours
    if any_peer or not seen[r.ours] then list[#list + 1], seen[r.ours] = r, true end
  end
  for i, p in ipairs(result.pairs) do
    local cells = {}
    for _, r in ipairs(list) do
      local a, b = figure(p, "ours", r.ours), figure(p, "peer", r.peer)
      local cell = ("%s %s %s"):format(r.label, a and num(a) or "-", r.unit)
      if any_peer and r.peer then
        cell = cell .. (" / %s %s"):format(b and num(b) or "-", r.unit)
        if a and b and a > 0 and b > 0 then cell = cell .. (" (%.2fx)"):format(r.lower and b / a or a / b) end
      end
      cells[#cells + 1] = cell
    end
    print(("%s %d: %s"):format(any_peer and "pair" or "round", i, table.concat(cells, ", ")))
  end
  for _, r in ipairs(list) do
    local ratios, med, lo, hi = paired.ratios(result, r)
    local ours = values(result, "ours", r.ours)
    if med then
      local peers = values(result, "peer", r.peer)
      print(("%s: %s, median of %d pairs %.2fx (pairs %.2f-%.2fx), > 1: %s is faster; medians %s %s %s, %s %s %s")
        :format(r.label, r.lower and ("%s's time / %s's"):format(names.peer, names.ours)
          or ("%s / %s"):format(names.ours, names.peer), #ratios, med, lo, hi, names.ours,
          names.ours, num(paired.median(ours)), r.unit, names.peer, num(paired.median(peers)), r.unit))
    elseif #ours > 0 then
      print(("%s: %s %s %s, median of %d rounds (rounds %s-%s %s)"):format(r.label, names.ours,
        num(paired.median(ours)), r.unit, #ours, num(math.min(table.unpack(ours))),
        num(math.max(table.unpack(ours))), r.unit))
    end
  end
end

--- This process's memory in MB from /proc/self/status: "VmHWM" its peak resident set, "VmRSS" now.
function paired.memory_mb(key)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. key .. ":%s+(%d+) kB")
    if v then return tonumber(v) / 1024 end
  end
end

--- The largest value of one side's figure over the pairs (e.g. the peer's peak_rss_mb); 0 when none has it.
function paired.max(result, side, key)
  local m = 0
  for _, p in ipairs(result.pairs) do m = math.max(m, p[side] and p[side][key] or 0) end
  return m
end

-- ---- the peer ----

--- The peers by --peer name: PyTorch 2.x in the peers' venv (bench/setup_peers.sh), Debian's python3-torch.
-- LIGHTNING_PEER_PYTHON names another Python for --peer torch (the GPU machine's, tools/gpu_check/run.sh).
paired.PYTHON = {torch = os.getenv("LIGHTNING_PEER_PYTHON") or ".venv-peers/bin/python", ["torch1.13"] = "/usr/bin/python3",
  none = false}

--- The Python of the peer named by --peer, once it imports `modules` (default {"torch"}); nil and one line
-- saying why when there is no such peer here.
function paired.python(peer, modules)
  local python = paired.PYTHON[peer]
  if python == nil then error("--peer must be torch, torch1.13 or none, not " .. tostring(peer), 2) end
  if not python then return nil, "no peer (--peer none): lightning's figures alone" end
  modules = modules or {"torch"}
  local imports = table.concat(modules, ", ")
  if os.execute(("%s -c 'import %s' >/dev/null 2>&1"):format(python, imports)) ~= true then
    return nil, ("no peer: %s cannot import %s (%s); lightning's figures alone"):format(python, imports,
      peer == "torch" and "bench/setup_peers.sh installs them in .venv-peers"
      or "Debian's python3-" .. table.concat(modules, ", python3-"))
  end
  return python
end

--- Runs one round of the peer: a command that prints "name value" lines; returns them as a table
-- (numbers where they read as one). Errors naming the command when it fails.
function paired.command(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do
    local k, v = line:match("^(%S+) (%S+)$")
    if k then out[k] = tonumber(v) or v end
  end
  if not p:close() then error("the peer failed: " .. cmd, 2) end
  return out
end

--- The command line of a bench script: "--name value" for each name in `defaults` (a number where the
-- default is one), bare arguments into the names of `positional` in turn. Returns a copy of defaults
-- with them set; anything else errors with `usage`.
function paired.options(argv, defaults, positional, usage)
  local opts, next_positional, i = {}, 1, 1
  for k, v in pairs(defaults) do opts[k] = v end
  while i <= #argv do
    local key = argv[i]:match("^%-%-([%w_]+)$")
    if key then
      local value = argv[i + 1]
      if defaults[key] == nil or value == nil then error("usage: " .. usage, 0) end
      if type(defaults[key]) == "number" then
        value = tonumber(value)
        if not value then error(("--%s takes a number; usage: %s"):format(key, usage), 0) end
      end
      opts[key] = value
      i = i + 2
    else
      local name = positional and positional[next_positional]
      if not name then error("usage: " .. usage, 0) end
      opts[name] = type(defaults[name]) == "number" and tonumber(argv[i]) or argv[i]
      if opts[name] == nil then error(("%s takes a number; usage: %s"):format(name, usage), 0) end
      next_positional = next_positional + 1
      i = i + 1
    end
  end
  return opts
end

return paired
