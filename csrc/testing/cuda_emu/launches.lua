--- Rewrites a CUDA source of csrc/cuda/ for the emulated backend (README.md): every kernel launch
-- `k<<<grid, block, shared, stream>>>(args)` becomes `ltc_emu_launch<cooperative>("k", grid, block, shared,
-- stream, [](auto... a) { k(a...); }, args)`, which a C++ compiler takes. A kernel is cooperative when it calls __syncthreads or a
-- warp shuffle, directly or through functions it calls, as found in every source of the folder (the
-- runtime stops with the kernel's name if one it was told is not cooperative waits at a barrier).
--   lua5.4 launches.lua <csrc/cuda> <in.cu> <out.cc>
local dir, input, output = arg[1], arg[2], arg[3]
assert(dir and input and output, "usage: lua5.4 launches.lua <csrc/cuda> <in.cu> <out.cc>")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

-- The sources of the folder, comments removed (their words would count as calls).
local function strip_comments(text)
  return (text:gsub("/%*.-%*/", " "):gsub("//[^\n]*", ""))
end

local sources = {}
local p = io.popen(("ls %q"):format(dir))
for name in p:lines() do
  if name:match("%.cuh?$") then sources[#sources + 1] = strip_comments(read(dir .. "/" .. name)) end
end
p:close()

-- Function bodies by name: `name(params) [qualifiers] {body}`, control statements left out.
local CONTROL = {["if"] = true, ["for"] = true, ["while"] = true, ["switch"] = true, ["return"] = true, catch = true}
local bodies = {}
for _, text in ipairs(sources) do
  for name, body in text:gmatch("([%a_][%w_]*)%s*%b()%s*[%w_ ]-%s*(%b{})") do
    if not CONTROL[name] then bodies[name] = (bodies[name] or "") .. body end
  end
end

-- The names whose bodies wait at a barrier, to a fixpoint through the calls between them.
local waits = {}
for name, body in pairs(bodies) do
  if body:find("__syncthreads", 1, true) or body:find("__shfl", 1, true) then waits[name] = true end
end
repeat
  local grew = false
  for name, body in pairs(bodies) do
    if not waits[name] then
      for callee in body:gmatch("([%a_][%w_]*)%s*[%(<]") do
        if waits[callee] and callee ~= name then
          waits[name], grew = true, true
          break
        end
      end
    end
  end
until not grew

-- Arguments at the top level of a bracketed list's inside.
local function split_top(s)
  local out, depth, cur = {}, 0, {}
  for ch in s:gmatch(".") do
    if ch:match("[%(%[{]") then depth = depth + 1 elseif ch:match("[%)%]}]") then depth = depth - 1 end
    if ch == "," and depth == 0 then
      out[#out + 1] = table.concat(cur)
      cur = {}
    else
      cur[#cur + 1] = ch
    end
  end
  out[#out + 1] = table.concat(cur)
  return out
end

local src = read(input)
local out, pos, launches = {}, 1, 0
while true do
  local open = src:find("<<<", pos, true)
  if not open then break end
  -- the kernel: a name, maybe with template arguments, just before <<<
  local stop = open - 1
  while src:sub(stop, stop):match("%s") do stop = stop - 1 end
  local start = stop
  if src:sub(stop, stop) == ">" then
    local depth = 0
    repeat
      local ch = src:sub(start, start)
      if ch == ">" then depth = depth + 1 elseif ch == "<" then depth = depth - 1 end
      start = start - 1
    until depth == 0
  end
  while src:sub(start, start):match("[%w_:]") do start = start - 1 end
  start = start + 1
  local kernel = src:sub(start, stop)
  local base = kernel:match("^[%w_:]+"):gsub("^.*::", "")
  assert(bodies[base], ("%s: no kernel %s found for the launch at byte %d"):format(input, base, open))
  local close = assert(src:find(">>>", open, true), input .. ": <<< without >>>")
  local config = split_top(src:sub(open + 3, close - 1))
  assert(#config == 4, ("%s: the launch of %s needs grid, block, shared bytes and stream"):format(input, kernel))
  local args_start = src:find("%S", close + 3)
  assert(src:sub(args_start, args_start) == "(", input .. ": a launch without arguments")
  local args_end = select(2, src:find("%b()", args_start))
  local args = src:sub(args_start + 1, args_end - 1)
  out[#out + 1] = src:sub(pos, start - 1)
  -- (the kernel called from a generic lambda: its default arguments and conversions apply as in a launch)
  out[#out + 1] = ("ltc_emu_launch<%s>(%q, %s, %s, %s, %s, [](auto... a) { %s(a...); }%s)"):format(
    tostring(waits[base] == true), base, config[1], config[2], config[3], config[4], kernel,
    args:match("%S") and (", " .. args) or "")
  -- (the lines the launch took, kept: compiler messages point at the source's lines)
  local _, lines = src:sub(start, args_end):gsub("\n", "")
  out[#out + 1] = ("\n"):rep(lines)
  pos = args_end + 1
  launches = launches + 1
end
out[#out + 1] = src:sub(pos)
local f = assert(io.open(output, "wb"))
f:write(('#line 1 "%s"\n'):format(input), table.concat(out))
f:close()
