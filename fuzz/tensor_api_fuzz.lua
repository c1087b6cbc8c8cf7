-- The driver of fuzz/tensor_api_fuzz.c: turns the fuzz input (a string of bytes, the chunk's argument)
-- into up to MAX_OPS tensor operations through lightning.core, the C module alone. Every operation runs
-- in pcall: an error is an answer, not a finding. After each one the result is read back whole (sum,
-- tostring, totable when small), so that a view reaching outside its storage is caught by AddressSanitizer.
--
-- Input format, one operation after another until the bytes run out:
--   op byte      OPS[1 + b % #OPS]
--   slot byte    the pool tensor it works on (self for methods), 1 + b % POOL
--   count byte   how many arguments follow, b % (MAX_ARGS + 1)
--   arg bytes    ARGS[1 + b % #ARGS]: extreme numbers, wrong types, tables of sizes, pool tensors
-- A tensor result goes to the next pool slot. fuzz/tensor_api_seeds.lua writes the seeds in this format
-- from readable programs; keep the two in step (it loads this file's tables).
local bytes, replay_path = ...
-- `lua5.4 fuzz/tensor_api_fuzz.lua --replay <input>` (with LUA_CPATH='build.luarocks/?.so;build-asan/?.so')
-- runs one input outside libFuzzer and prints each operation and its outcome.
local trace = bytes == "--replay"
if trace then
  local f = assert(io.open(replay_path, "rb"))
  bytes = f:read("a")
  f:close()
end
local POOL, MAX_ARGS, MAX_OPS = 8, 4, 64

local M = {}

-- Values an argument byte picks. Pool tensors are {tensor = k}; the rest are passed as they are.
M.ARGS = {
  math.mininteger, math.maxinteger, 0, -1, 1, 2, 3, 4,
  1 << 31, 1 << 32, 1 << 62, 0 / 0, math.huge, -math.huge, 2 ^ 63, 1.5,
  -2, "nil", "x", {}, true, {2, 3}, {1 << 32, 1 << 32}, {0},
  {tensor = 1}, {tensor = 2}, {tensor = 3}, {tensor = 4}, {tensor = 5}, {tensor = 6}, {tensor = 7}, {tensor = 8},
  (1 << 31) - 1, -(1 << 31), 1e300, 5, 8, 9, 1 << 20, 1 << 40,
  -(1 << 62), {-1}, {3, -1}, "2", -0.0, 1e-40, {1 << 62, 4}, {0, 1 << 41},
}

-- Operations: a method name (called on the slot's tensor), or "L.name" for a module function, or one
-- of the metamethod forms below.
M.OPS = {
  "size", "stride", "dim", "numel", "is_contiguous", "view", "reshape", "resize", "resize_as", "expand",
  "narrow", "select", "transpose", "t", "permute", "squeeze", "unsqueeze", "contiguous", "get", "set",
  "item", "totable", "copy", "clone", "fill", "zero", "uniform", "normal", "free", "add",
  "sub", "mul", "div", "cmul", "cdiv", "pow", "neg", "abs", "sqrt", "exp",
  "log", "sign", "tanh", "sigmoid", "clamp", "addcmul", "eq", "ne", "gt", "lt",
  "ge", "le", "sum", "mean", "max", "min", "argmax", "argmin", "var", "std",
  "norm", "mm", "bmm", "matmul", "addmm",
  "[]", "[]=", "tostring", "#", "+", "-", "*", "/", "^", "unm",
  "L.zeros", "L.ones", "L.empty", "L.rand", "L.randn", "L.full", "L.arange", "L.tensor", "L.mm", "L.bmm",
  "L.matmul", "L.addmm", "L.manual_seed", "L.set_rng_state", "L.get_rng_state", "L.is_tensor",
}

if bytes == nil then return M end  -- loaded by the seed writer for its tables

local core = require "lightning.core"
core.set_num_threads(1)
core.manual_seed(1)

local pool = {
  core.zeros(3, 4), core.arange(6), core.empty(0), core.ones(2, 1, 3),
  core.rand(3, 2):t(), core.zeros(1):expand(4), core.zeros(3, 0), core.arange(24):view(2, 3, 4):narrow(3, 2, 2),
}

local pos = 1
local function next_byte()
  local b = bytes:byte(pos)
  pos = pos + 1
  return b
end

local function arg_value(b)
  local v = M.ARGS[1 + b % #M.ARGS]
  if v == "nil" then return nil end
  if type(v) == "table" and v.tensor then return pool[v.tensor] end
  if type(v) == "table" then  -- a fresh copy: an operation may keep or change the table
    local copy = {}
    for i, x in ipairs(v) do copy[i] = x end
    return copy
  end
  return v
end

local function run(name, self, args, n)
  local u = table.unpack
  if name == "[]" then return self[args[1]]
  elseif name == "[]=" then self[args[1]] = args[2] return
  elseif name == "tostring" then return tostring(self)
  elseif name == "#" then return #self
  elseif name == "+" then return self + args[1]
  elseif name == "-" then return self - args[1]
  elseif name == "*" then return args[1] * self
  elseif name == "/" then return self / args[1]
  elseif name == "^" then return self ^ args[1]
  elseif name == "unm" then return -self
  elseif name:sub(1, 2) == "L." then return core[name:sub(3)](u(args, 1, n))
  else return self[name](self, u(args, 1, n)) end
end

-- Reads every element of t (through the C code: sum and printing walk the whole view).
local function touch(t)
  if not core.is_tensor(t) then return end
  pcall(t.sum, t)
  pcall(tostring, t)
  local ok, n = pcall(t.numel, t)
  if ok and n <= 4096 then pcall(t.totable, t) end
end

local function show(v)
  if core.is_tensor(v) then local ok, s = pcall(function() return "tensor " .. tostring(v:size()) end) return ok and s or "closed tensor" end
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = show(x) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return type(v) == "string" and ("%q"):format(v) or tostring(v)
end

for _ = 1, MAX_OPS do
  local op = next_byte()
  if not op then break end
  local name = M.OPS[1 + op % #M.OPS]
  local slot = 1 + (next_byte() or 0) % POOL
  local n = (next_byte() or 0) % (MAX_ARGS + 1)
  local args = {}
  for i = 1, n do args[i] = arg_value(next_byte() or 0) end
  local ok, result = pcall(run, name, pool[slot], args, n)
  if trace then
    local shown = {}
    for i = 1, n do shown[i] = show(args[i]) end
    print(("%s slot %d (%s)"):format(name, slot, table.concat(shown, ", ")), ok and "->" or "error:", show(result))
  end
  if ok and core.is_tensor(result) then
    touch(result)
    pool[slot % POOL + 1] = result
  end
  touch(pool[slot])
end
