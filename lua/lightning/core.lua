--- lightning.core: the C library (lightning/core.so on package.cpath), loaded after lightning.env
-- has set the thread runtime's defaults. OpenMP reads its environment once, when core.so brings it in,
-- so the defaults must be in the environment before: every `require "lightning.core"` comes here (Lua
-- files are searched before C libraries) and then loads the C module as require would.
-- core.thread_env tells what was chosen: {GOMP_SPINCOUNT = {value = "10000", chosen_by = "lightning"}}.
-- Every build makes lightning/env.so beside core.so (CMakeLists.txt); after updating the sources, build
-- again (cmake --build build.luarocks, or ./setup.sh) so that both are there.
local env = require "lightning.env"

local name = ...
name = name or "lightning.core"
local path, tried = package.searchpath(name, package.cpath)
if not path then error(("module '%s' not found (the C library):%s"):format(name, tried), 2) end
local open, err = package.loadlib(path, "luaopen_" .. name:gsub("%.", "_"))
if not open then error(("error loading module '%s' from file '%s':\n\t%s"):format(name, path, err), 2) end
local core = open(name, path)
env.restore()   -- read by now: child processes see the user's own environment again
core.thread_env = {GOMP_SPINCOUNT = env.GOMP_SPINCOUNT}
return core
