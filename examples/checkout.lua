--- Run by the example scripts first: when they run from a checkout, they use its Lua files and the C
-- module it built (./setup.sh), not an installed and possibly older version. The argument is the
-- scripts' folder. (Installed as a command, a script finds no checkout.lua and uses the installed rock.)
local dir = ...
local root = dir .. "/.."
local f = io.open(root .. "/lua/lightning/init.lua")
if f then
  f:close()
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
  package.cpath = root .. "/build.luarocks/?.so;" .. package.cpath
end
