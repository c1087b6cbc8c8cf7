--- Classes: `local Model = class("Model", Parent)`, then `Model(args)` builds an instance and calls
-- `__init(self, args)`; methods are looked up on the class, then its parents. `Model.super` is the
-- parent; `class.is_instance(x, Model)` tests membership. Metamethods (__tostring, __call, ...) defined
-- on a class apply to its instances and are inherited. A class (or an ancestor) with a function
-- `__on_define(cls, key, value)` sees every later definition on its subclasses and returns the value to
-- store (nn.Module uses it to record forward for autograd).
local class = {}

local metamethods = {"__tostring", "__len", "__call", "__eq", "__lt", "__le", "__concat", "__close", "__unm",
  "__add", "__sub", "__mul", "__div"}

local function new_class(_, name, parent)
  assert(type(name) == "string", "class: the first argument must be the class name")
  local cls = {}
  cls.__name = name
  cls.__index = cls
  cls.super = parent
  if parent then
    for _, m in ipairs(metamethods) do
      if rawget(cls, m) == nil and parent[m] ~= nil then cls[m] = parent[m] end
    end
  end
  return setmetatable(cls, {
    __index = parent,
    __newindex = function(c, key, value)
      local hook = c.__on_define
      if hook then value = hook(c, key, value) end
      rawset(c, key, value)
    end,
    __call = function(c, ...)
      local self = setmetatable({}, c)
      if c.__init then c.__init(self, ...) end
      return self
    end,
    __tostring = function() return "class " .. name end,
  })
end

function class.is_instance(x, cls)
  if type(x) ~= "table" then return false end
  local c = getmetatable(x)
  while c do
    if c == cls then return true end
    c = c.super
  end
  return false
end

function class.name_of(x)
  local mt = type(x) == "table" and getmetatable(x)
  return mt and rawget(mt, "__name") or type(x)
end

return setmetatable(class, {__call = new_class})
