-- A damaged last checkpoint is an error that names it, never a silent fresh start (as Lightning
-- refuses a corrupt last.ckpt): last.safetensors empty, cut inside its header, with a garbage header,
-- a folder or a FIFO, with epoch=*.safetensors beside it. Every path that opens a checkpoint goes
-- through the checked open of L.load_safetensors, so a FIFO is refused instead of blocking: the FIFO
-- cases run in a child process under `timeout`, so that one that blocks fails instead of hanging.
local L = require "lightning"
local H = require "helpers"
local S = require "trainer_standins"
local X = require "script_helpers"
local checkpoint = require "lightning.trainer.checkpoint"
local output = require "lightning.util.output"

-- Runs a Regression fit of max_epochs under dir/exp (CSVLogger, ModelCheckpoint with save_last).
local function run(dir, max_epochs, ckpt_path)
  L.manual_seed(5)
  local model = S.Regression{}(3)
  local logger = L.loggers.CSVLogger{save_dir = dir, name = "exp"}
  local trainer = L.Trainer(S.quiet(dir, {max_epochs = max_epochs, logger = logger, enable_checkpointing = true,
    callbacks = {L.callbacks.ModelCheckpoint{save_last = true, save_top_k = -1}}}))
  local batches = S.regression_batches(3, 4, 3, 1)
  local text = output.capture(trainer.fit, trainer, model, S.Loader({batches[1], batches[2]}), S.Loader({batches[3]}),
    {ckpt_path = ckpt_path})
  return trainer, text
end

-- The ways last.safetensors can be damaged: name -> function(path) that damages it.
local DAMAGE = {
  ["zero bytes"] = {function(path) H.write_file(path, "") end, "0 bytes are too few"},
  ["cut inside its header"] = {function(path) H.write_file(path, H.read_file(path):sub(1, 40)) end, "truncated"},
  ["a garbage header"] = {function(path) H.write_file(path, string.pack("<I8", 8) .. "garbage!") end, "invalid header"},
  ["a folder"] = {function(path) os.remove(path) assert(os.execute(("mkdir %q"):format(path))) end, "it is a folder"},
  ["not a lightning checkpoint"] = {function(path) L.save_safetensors(path, {w = L.ones(2)}) end,
    "not a lightning checkpoint"},
}

local function quoted(text) return (text:gsub("%p", "%%%0")) end

describe("resuming from a damaged last checkpoint", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  for what, case in pairs(DAMAGE) do
    it("fails naming the file when last.safetensors is " .. what, function()
      local t0 = run(dir, 2)
      local folder = t0.checkpoint_callback.dirpath
      assert.is_truthy(L.core.io.file_type(folder .. "/epoch=0-step=2.safetensors"))
      local last = folder .. "/last.safetensors"
      case[1](last)
      local ok, err = pcall(checkpoint.find_last, {folder})
      assert.is_false(ok)
      assert.matches("the last checkpoint " .. quoted(last) .. " cannot be read: [^\n]*" .. case[2], err)
      -- the Trainer fails too, and makes no new version
      local trainer
      ok, err = pcall(function() trainer = run(dir, 3, "last") end)
      assert.is_false(ok)
      assert.matches(quoted(last) .. " cannot be read", tostring(err))
      assert.equal("version_0", table.concat(L.core.io.listdir(dir .. "/exp"), " "))
    end)
  end

  it("names the checkpoint whose weights do not fit the model", function()
    local t0 = run(dir, 1)
    local last = t0.checkpoint_callback.dirpath .. "/last.safetensors"
    local tensors, meta = L.load_safetensors(last)
    for name, t in pairs(tensors) do if name:match("weight$") then tensors[name] = L.zeros(t:numel() + 1) end end
    L.save_safetensors(last, tensors, meta)
    local ok, err = pcall(run, dir, 2, "last")
    assert.is_false(ok)
    assert.matches("checkpoint " .. quoted(last) .. ": its weights do not fit this model: ", tostring(err))
  end)
end)

describe("lightning.core.io.safetensors_metadata", function()
  it("reads the metadata alone, with load_safetensors' checks", function()
    local read = L.core.io.safetensors_metadata
    local dir = H.tmpdir()
    local path = dir .. "/w.safetensors"
    L.save_safetensors(path, {w = L.ones(3)}, {format = "x", n = "2"})
    assert.same({format = "x", n = "2"}, read(path))
    H.write_file(path, H.read_file(path):sub(1, -2))   -- cut inside its data: the offsets no longer fit
    local ok, err = pcall(read, path)
    H.rmdir(dir)
    assert.is_false(ok)
    assert.matches("^lightning%.core%.io%.safetensors_metadata: " .. quoted(path) .. ": ", err)
  end)
end)

describe("a FIFO where a checkpoint is expected", function()
  local dir, fifo
  before_each(function()
    dir = H.tmpdir()
    fifo = dir .. "/pipe.safetensors"
    assert(os.execute(("mkfifo %q"):format(fifo)))
  end)
  after_each(function() H.rmdir(dir) end)

  -- Runs code in a child lua5.4 under timeout; returns its output and exit status.
  local function child(code)
    local script = dir .. "/child.lua"
    H.write_file(script, ("local L = require 'lightning'\nlocal dir, fifo = %q, %q\n%s\n"):format(dir, fifo, code))
    local p = assert(io.popen(("%s timeout 30 lua5.4 %q 2>&1; echo \"exit $?\""):format(X.module_env(), script)))
    local out = p:read("a")
    p:close()
    return out
  end

  it("is refused by load_from_checkpoint and read_metadata", function()
    local out = child([[
print(pcall(L.models.BasicImageClassifier.load_from_checkpoint, fifo))
print(require("lightning.trainer.checkpoint").read_metadata(fifo))]])
    assert.is_nil(out:find("exit 124", 1, true), "blocked: " .. out)
    assert.matches("false\tBasicImageClassifier%.load_from_checkpoint: cannot read checkpoint [^\n]*pipe%.safetensors: it is "
      .. "a FIFO %(named pipe%), not a regular file\n", out)
    assert.matches("nil\tit is a FIFO %(named pipe%), not a regular file\n", out)
  end)

  it("named last.safetensors is refused by ckpt_path = \"last\"", function()
    local out = child([[
local folder = dir .. "/checkpoints"
L.core.io.mkdirs(folder)
os.execute(("mkfifo %q"):format(folder .. "/last.safetensors"))
print(pcall(require("lightning.trainer.checkpoint").find_last, {folder}))]])
    assert.is_nil(out:find("exit 124", 1, true), "blocked: " .. out)
    assert.matches("false\tthe last checkpoint [^\n]*/checkpoints/last%.safetensors cannot be read: it is a FIFO", out)
  end)

  it("is refused by predict.lua --checkpoint", function()
    local code, out = X.run("predict.lua", ("--checkpoint %q %q"):format(fifo, X.ROOT .. "/spec/fixtures/data/png/0_cat.png"),
      {env = "timeout 30"})
    assert.equal(1, code, out)
    assert.matches("Prediction failed: [^\n]*pipe%.safetensors: it is a FIFO %(named pipe%)", out)
  end)
end)
