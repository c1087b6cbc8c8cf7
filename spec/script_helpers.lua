-- Shared by the specs that run the example scripts as a user does (child lua5.4 processes with the
-- tree's module paths): running a script, and a small folder of class folders of PNG images.
local L = require "lightning"

local X = {}

X.ROOT = io.popen("pwd"):read("l")

-- LUA_PATH_5_4 and LUA_CPATH_5_4 for a child process: the tree's Lua files and the specs' C module.
function X.module_env()
  return ("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q"):format(X.ROOT .. "/lua/?.lua;" .. X.ROOT .. "/lua/?/init.lua;;",
    package.cpath:gsub("([^;]+)", function(p) return p:sub(1, 1) == "/" and p or X.ROOT .. "/" .. p end))
end

--- Runs a Lua script (a path, or a name in examples/) with args; returns its exit status and output
-- (stdout and stderr). opts: cwd (default: the tree's root), env (more "NAME=value" settings), pty
-- (run it on a pseudo-terminal with script(1), TERM=xterm, where progress bars draw).
function X.run(script, args, opts)
  opts = opts or {}
  if not script:find("/", 1, true) then script = X.ROOT .. "/examples/" .. script end
  local cmd = ("%s %s lua5.4 %s %s"):format(X.module_env(), opts.env or "", script, args or "")
  if opts.pty then cmd = ("TERM=xterm COLUMNS=200 script -qec %q /dev/null"):format(cmd) end
  local p = io.popen(("cd %q && %s 2>&1"):format(opts.cwd or X.ROOT, cmd))
  local text = p:read("a")
  local _, _, code = p:close()
  return code, text
end

--- A folder of class folders of 16x16 PNGs: class k of {"alpha", "beta", "gamma"} has a bright band at
-- rows 4k-3..4k; per_class images each.
function X.image_folder(dir, per_class)
  L.manual_seed(3)
  for k, name in ipairs {"alpha", "beta", "gamma"} do
    os.execute(("mkdir -p %q"):format(dir .. "/" .. name))
    for i = 1, per_class do
      local img = L.rand(3, 16, 16) * 0.3
      img:narrow(2, (k - 1) * 4 + 1, 4):add(0.6)
      L.data.write_png(("%s/%s/%03d.png"):format(dir, name, i), img)
    end
  end
end

return X
