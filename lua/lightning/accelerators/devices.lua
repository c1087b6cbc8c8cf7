--- The Trainer's `devices` option, which every accelerator reads alike: one device per process
-- ("auto" or 1); several devices are several processes (strategy = "ddp" under mpirun).
local options = require "lightning.util.options"

local devices = {}

--- nil when value is a devices option, else the message.
function devices.problem(value)
  if value == "auto" or value == 1 then return nil end
  return ("devices must be \"auto\" or 1 (one device per process; several processes: strategy = \"ddp\" under " ..
    "mpirun), got %s"):format(options.describe(value))
end

--- The number of devices value asks for: 1.
function devices.parse(value)
  local problem = devices.problem(value)
  if problem then options.fail("Trainer", "%s", problem) end
  return 1
end

return devices
