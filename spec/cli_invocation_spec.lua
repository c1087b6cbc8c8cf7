-- The commands that train.lua prints can be pasted: the resume hint after a failure or Ctrl-C and
-- --nproc's mpirun line name the script as the user started it (`lightning-train`, not LuaRocks'
-- wrapper expansion `lua5.4 -e 'package.path=...' .../rocks-5.4/lightning/scm-1/bin/lightning-train`), and
-- errors show no file positions of the installed script either. The installed commands are stood in
-- for by a LuaRocks-like tree in a temporary folder: <tree>/bin/<name>, a wrapper as LuaRocks writes it,
-- runs <tree>/lib/luarocks/rocks-5.4/lightning/scm-1/bin/<name> (a copy of the example script).
local H = require "helpers"
local X = require "script_helpers"
local cli = require "lightning.cli"

local ROCK_BIN = "/lib/luarocks/rocks-5.4/lightning/scm-1/bin/"

-- Installs the example scripts as commands under tree (and a stand-in mpirun that prints its words).
local function install(tree)
  assert(os.execute(("mkdir -p %q %q"):format(tree .. "/bin", tree .. ROCK_BIN)))
  local cpath = package.cpath:gsub("([^;]+)", function(p) return p:sub(1, 1) == "/" and p or X.ROOT .. "/" .. p end)
  local paths = ("package.path=%q..package.path;package.cpath=%q..package.cpath"):format(
    X.ROOT .. "/lua/?.lua;" .. X.ROOT .. "/lua/?/init.lua;", cpath .. ";")
  for name, script in pairs {["lightning-train"] = "train.lua", ["lightning-predict"] = "predict.lua"} do
    H.write_file(tree .. ROCK_BIN .. name, H.read_file(X.ROOT .. "/examples/" .. script))
    H.write_file(tree .. "/bin/" .. name, ("#!/bin/sh\n\nexec lua5.4 -e '%s' '%s' \"$@\"\n"):format(paths,
      tree .. ROCK_BIN .. name))
  end
  H.write_file(tree .. "/bin/mpirun", '#!/bin/sh\necho "mpirun ran: $*"\n')
  assert(os.execute(("chmod +x %q/bin/*"):format(tree)))
end

-- Runs a shell command line in dir with tree/bin first on PATH; returns the exit status and the output.
local function sh(dir, tree, line)
  local p = io.popen(("cd %q && PATH=%q:\"$PATH\" %s 2>&1"):format(dir, tree .. "/bin", line))
  local text = p:read("a")
  local _, _, code = p:close()
  return code, text
end

describe("lightning.cli.invocation", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("is the interpreter with its options and the script for a script run with lua", function()
    assert.same({"lua5.4", "examples/train.lua"}, cli.invocation({[-1] = "lua5.4", [0] = "examples/train.lua"}))
    assert.same({"lua5.4", "-W", "t.lua"}, cli.invocation({[-2] = "lua5.4", [-1] = "-W", [0] = "t.lua", "--x"}))
  end)

  it("is the installed command for a script that LuaRocks' wrapper runs", function()
    install(dir)
    local argv = {[-3] = "/usr/bin/lua5.4", [-2] = "-e", [-1] = "package.path='x'", [0] = dir .. ROCK_BIN ..
      "lightning-train", "--cifar10", "--data_root", "my data"}
    -- (this process's PATH does not hold dir/bin: the wrapper's path, which runs from anywhere)
    assert.same({dir .. "/bin/lightning-train"}, cli.invocation(argv))
    assert.equal(dir .. "/bin/lightning-train --cifar10 --data_root 'my data' --resume last",
      cli.command(argv, {resume = "last"}))
    -- a rock's file without its wrapper: run as it was
    os.remove(dir .. "/bin/lightning-train")
    assert.equal("/usr/bin/lua5.4 -e 'package.path='\\''x'\\''' " .. dir .. ROCK_BIN .. "lightning-train --cifar10",
      cli.command({[-3] = "/usr/bin/lua5.4", [-2] = "-e", [-1] = "package.path='x'", [0] = dir .. ROCK_BIN ..
      "lightning-train", "--cifar10"}))
  end)

  it("drops the installed script's positions from error messages", function()
    local script = "/usr/local" .. ROCK_BIN .. "lightning-train"
    assert.same({"Trainer: val_check_interval must be ...", false}, {cli.describe_error(
      "...b/luarocks/rocks-5.4/lightning/scm-1/bin/lightning-train:342: Trainer: val_check_interval must be ...", script)})
  end)
end)

describe("the installed commands (lightning-train, lightning-predict)", function()
  local dir, tree
  setup(function()
    dir = H.tmpdir()
    tree = dir .. "/tree"
    install(tree)
    X.image_folder(dir .. "/images", 5)   -- 12 training images: 3 batches of 4
  end)
  teardown(function() H.rmdir(dir) end)

  local COMMON = "--data_dir images --image_size 16 --batch_size 4 --num_workers 0 --output_dir out --no_progress_bar"

  it("fail without file positions", function()
    local code, text = sh(dir, tree, "lightning-train " .. COMMON .. " --val_check_interval -1")
    assert.equal(1, code, text)
    assert.matches("\nTraining failed: Trainer: val_check_interval must be ", text)
    assert.is_nil(text:find(":%d+: "), text)
    code, text = sh(dir, tree, "lightning-predict --checkpoint nothing.safetensors images")
    assert.equal(1, code, text)
    assert.matches("\nPrediction failed: BasicImageClassifier%.load_from_checkpoint: checkpoint nothing%.safetensors not " ..
      "found", text)
    assert.is_nil(text:find(":%d+: "), text)
  end)

  it("echo --nproc's mpirun line with the command as typed", function()
    local code, text = sh(dir, tree, "lightning-train " .. COMMON .. " --nproc 2")
    assert.equal(0, code, text)
    local line = text:match("(mpirun %-np 2 [^\n]*)\n")
    assert.is_not_nil(line, text)
    assert.matches(" lightning%-train %-%-data_dir images %-%-image_size 16 [^\n]*%-%-no_progress_bar$", line)
    assert.is_nil(line:find("package", 1, true), line)
    assert.matches("mpirun ran: %-np 2 [^\n]* lightning%-train %-%-data_dir images ", text)
  end)

  it("print a resume command that can be pasted after Ctrl-C", function()
    -- the wrapper execs lua, so the background job's pid is the training process's
    local log, pid = dir .. "/ctrlc.log", dir .. "/ctrlc.pid"
    local line = ("lightning-train %s --max_epochs 1000 --quiet > %q 2>&1 & echo $! > %q; wait $!; echo EXIT=$? >> %q")
      :format(COMMON, log, pid, log)
    assert(os.execute(("cd %q && PATH=%q:\"$PATH\" sh -c '%s' > /dev/null 2>&1 &"):format(dir, tree .. "/bin", line)))
    local function wait_for(pattern)
      for _ = 1, 600 do
        local f = io.open(log)
        local text = f and f:read("a") or ""
        if f then f:close() end
        if text:find(pattern) then return text end
        os.execute("sleep 0.1")
      end
      error("timed out waiting for " .. pattern .. " in " .. log)
    end
    wait_for("\nEpoch 1: ")
    assert(os.execute(("kill -INT $(cat %q)"):format(pid)))
    local text = wait_for("EXIT=%d+")
    assert.matches("EXIT=130", text)
    assert.matches("resume with %-%-resume last:\n  lightning%-train %-%-data_dir images %-%-image_size 16 [^\n]*" ..
      "%-%-quiet %-%-resume last\n", text)
    -- pasted, it continues the run
    local command = text:match("\n  (lightning%-train [^\n]*)\n")
    local epoch = tonumber(text:match("interrupted by SIGINT %(Ctrl%-C%) at epoch (%d+)"))
    local code, out = sh(dir, tree, (command:gsub("%-%-max_epochs 1000", "--max_epochs " .. epoch + 1)))
    assert.equal(0, code, out)
    assert.matches("Restored out/[^\n]*/on_exception%.safetensors", out)
  end)
end)
