-- Writes fuzz/seeds/tensor_api/*.bin: readable programs encoded in the byte format of
-- fuzz/tensor_api_fuzz.lua (whose OPS and ARGS tables it loads). The first ones are the cases issue 9
-- found; each later finding of the fuzzer, once fixed, gets a program here and a spec.
-- Run from the repository root: lua5.4 fuzz/tensor_api_seeds.lua
local M = dofile("fuzz/tensor_api_fuzz.lua")

-- The pool the driver starts with: 1 zeros(3, 4), 2 arange(6), 3 empty(0), 4 ones(2, 1, 3),
-- 5 rand(3, 2):t(), 6 zeros(1):expand(4), 7 zeros(3, 0), 8 a narrowed 2x3x2 view. Results go to the
-- next slot.
local function T(k) return {tensor = k} end
local NAN = setmetatable({}, {__tostring = function() return "nan" end})

local function same(a, b)
  if a == NAN then return type(b) == "number" and b ~= b end
  if type(a) == "table" and type(b) == "table" then
    if a.tensor or b.tensor then return a.tensor == b.tensor end
    if #a ~= #b then return false end
    for i = 1, #a do if a[i] ~= b[i] or math.type(a[i]) ~= math.type(b[i]) then return false end end
    return true
  end
  return a == b and math.type(a) == math.type(b)
end

local function index_of(list, value, what)
  for i, v in ipairs(list) do if same(value, v) then return i - 1 end end
  error(("no %s %s in the driver's table"):format(what, tostring(value)))
end

-- program: a list of {op, slot, arg...}
local function encode(program)
  local out = {}
  for _, step in ipairs(program) do
    out[#out + 1] = string.char(index_of(M.OPS, step[1], "operation"), step[2] - 1, #step - 2)
    for i = 3, #step do out[#out + 1] = string.char(index_of(M.ARGS, step[i], "argument")) end
  end
  return table.concat(out)
end

local seeds = {
  -- issue 9: narrow with math.mininteger as start, then fill (corrupted the heap)
  narrow_mininteger = {{"narrow", 1, 1, math.mininteger, 2}, {"fill", 2, 3}},
  -- issue 9: a length of math.maxinteger was accepted
  narrow_maxinteger = {{"narrow", 1, 1, 2, math.maxinteger}, {"fill", 2, 1}},
  -- issue 9: an empty tensor viewed as 2^32 x 2^32, then indexed (segfaulted)
  view_empty_huge = {{"view", 3, 1 << 32, 1 << 32}, {"[]", 4, 1}, {"get", 4, 1, 1}},
  -- issue 9: a (3, 1) tensor expanded to 3 x 2^62 (negative numel, printing never returned)
  expand_huge = {{"L.zeros", 1, 3, 1}, {"expand", 2, 3, 1 << 62}, {"numel", 3}, {"tostring", 3}},
  -- extreme indices and sizes through every kind of argument
  extremes = {
    {"select", 1, 1, math.maxinteger}, {"[]", 1, math.mininteger}, {"[]=", 1, 1 << 62, 1},
    {"set", 1, 1, math.mininteger, 1}, {"view", 2, -1, 1 << 62}, {"reshape", 2, 1 << 31, 1 << 31},
    {"unsqueeze", 2, math.mininteger}, {"permute", 4, 3, 1, 2}, {"resize", 1, 1 << 62, 4},
    {"narrow", 2, 1, NAN, 1}, {"narrow", 2, 1, math.huge, 1}, {"narrow", 2, 1, 1.5, 1}, {"select", 2, 1, 2 ^ 63},
    {"L.zeros", 1, {1 << 62, 4}}, {"L.empty", 1, {0, 1 << 41}}, {"L.arange", 1, 1e300},
  },
  -- empty tensors: creation, clone, fill, arithmetic, reductions, printing
  empty_tensors = {
    {"L.randn", 1, 3, 0}, {"clone", 7}, {"fill", 8, 1}, {"+", 7, T(7)}, {"sum", 7, 2}, {"mean", 7, 1},
    {"max", 7, 2}, {"transpose", 7, 1, 2}, {"clone", 8}, {"tostring", 7}, {"view", 7, 0, 5},
  },
  -- resize of a view keeps its offset
  resize_view = {{"narrow", 2, 1, 3, 2}, {"resize", 3, 2}, {"fill", 3, 5}, {"sum", 2}},
  -- wrong types everywhere
  wrong_types = {
    {"add", 1, "x"}, {"view", 1, {}}, {"narrow", 1, true, 1, 1}, {"copy", 1, "nil"}, {"expand", 1, "2"},
    {"mm", 1, T(3)}, {"L.tensor", 1, "x"}, {"free", 4}, {"sum", 4}, {"+", 4, T(4)},
  },
}

os.execute("mkdir -p fuzz/seeds/tensor_api")
local names = {}
for name in pairs(seeds) do names[#names + 1] = name end
table.sort(names)
for _, name in ipairs(names) do
  local f = assert(io.open(("fuzz/seeds/tensor_api/%s.bin"):format(name), "wb"))
  f:write(encode(seeds[name]))
  f:close()
end
print(("wrote %d seeds to fuzz/seeds/tensor_api/"):format(#names))
