-- train.lua's and predict.lua's options as a user gives them: mistakes refused before any data loads
-- (--precision at parse time, with bf16-mixed for fp16; --seed and --gradient_clip_val with their
-- ranges), --val_split 1 (no validation: no early stopping, the latest checkpoint kept), a folder's
-- images trained at their own size, --resume refusing a checkpoint of other data by name, and
-- predict.lua naming a special file for what it is.
local H = require "helpers"
local X = require "script_helpers"
local L = require "lightning"

local function run(script, args, cwd) return X.run(script, args, {cwd = cwd}) end

describe("examples/train.lua options", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local QUICK = "--batch_size 4 --num_workers 0 --output_dir out --quiet --no_progress_bar"

  it("refuses a precision when it reads the command line, before any data loads", function()
    -- (the folder is not there: reading the data would fail first)
    for precision, pattern in pairs {
      fp16 = "Error: %-%-precision fp16: fp16 is not supported on a CPU %(.-%): use %-%-precision bf16%-mixed %(bf16 " ..
        "compute, float32 weights%), or 32",
      ["16-mixed"] = "Error: %-%-precision 16%-mixed: fp16 is not supported on a CPU %(.-%): use %-%-precision bf16%-mixed",
      ["64"] = "Error: %-%-precision 64: float64 is not supported: the library computes in float32; use %-%-precision 32 " ..
        "or bf16%-mixed",
      float = "Error: %-%-precision float is not supported: use %-%-precision 32 %(float32%), bf16%-mixed or 16%-mixed " ..
        "%(on a GPU%)",
    } do
      local code, text = run("train.lua", "--data_dir nothing --precision " .. precision, dir)
      assert.equal(1, code, text)
      assert.matches(pattern, text)
      assert.is_nil(text:find("nothing", 1, true) and text:find("cannot open folder", 1, true), text)
      assert.is_nil(text:find("DEVICE", 1, true), text)
    end
  end)

  it("says the valid range of --seed and refuses a negative --gradient_clip_val", function()
    local code, text = run("train.lua", "--data_dir nothing --seed 1e300", dir)
    assert.equal(1, code)
    assert.matches("Training failed: %-%-seed must be an integer >= 0 and at most 2%^53, got 1e%+300", text)
    code, text = run("train.lua", "--data_dir nothing --seed 1.5", dir)
    assert.matches("%-%-seed must be an integer >= 0, got 1%.5", text)
    code, text = run("train.lua", "--data_dir nothing --gradient_clip_val -1", dir)
    assert.equal(1, code)
    assert.matches("Training failed: %-%-gradient_clip_val must be a number >= 0 %(0: no clipping%), got %-1", text)
    assert.is_nil(text:find("DEVICE", 1, true), text)
  end)

  it("trains with --val_split 1: no validation, no early stopping, the latest checkpoint kept", function()
    X.image_folder(dir .. "/images", 4)
    local code, text = run("train.lua", "--data_dir images --val_split 1 --max_epochs 2 " .. QUICK, dir)
    assert.equal(0, code, text)
    assert.matches("%-%-val_split 1: every image trains and nothing validates, so no early stopping on val_loss", text)
    assert.matches("Training finished after 2 epochs", text)
    assert.matches("Latest checkpoint: out/image_classifier/version_0/checkpoints/epoch=1%-step=6%.safetensors", text)
    -- what cannot work without validation is refused before training
    code, text = run("train.lua", "--data_dir images --val_split 1 --test " .. QUICK, dir)
    assert.equal(1, code)
    assert.matches("%-%-test with %-%-val_split 1 %(every image trains%) needs a test set: images has no train/ folder", text)
    code, text = run("train.lua", "--data_dir images --val_split 1 --scheduler plateau " .. QUICK, dir)
    assert.equal(1, code)
    assert.matches("%-%-scheduler plateau watches %-%-monitor val_loss, which nothing logs with %-%-val_split 1", text)
    assert.is_nil(text:find("DEVICE", 1, true), text)
  end)

  it("trains a folder at its images' own size, and says so", function()
    X.image_folder(dir .. "/images", 4)   -- 16x16
    local code, text = run("train.lua", "--data_dir images --fast_dev_run " .. QUICK, dir)
    assert.equal(0, code, text)
    assert.matches("Image size: 16x16, the images' own %(choose another with %-%-image_size%)", text)
    -- sizes that are not a multiple of 16 round up; sizes that differ take the default, with a note
    L.manual_seed(1)
    for _, name in ipairs(L.core.io.listdir(dir .. "/images/alpha")) do
      L.data.write_png(dir .. "/images/alpha/" .. name, L.rand(3, 20, 20))
    end
    for _, class in ipairs {"beta", "gamma"} do
      for i = 1, 4 do L.data.write_png(("%s/images/%s/%03d.png"):format(dir, class, i), L.rand(3, 20, 20)) end
    end
    code, text = run("train.lua", "--data_dir images --fast_dev_run " .. QUICK, dir)
    assert.equal(0, code, text)
    assert.matches("Image size: 32x32: the images' 20x20 rounded up to a multiple of 16", text)
    L.data.write_png(dir .. "/images/beta/big.png", L.rand(3, 24, 24))
    code, text = run("train.lua", "--data_dir images --fast_dev_run " .. QUICK, dir)
    assert.equal(0, code, text)
    assert.matches("Image size: 224x224, the default for folders: the images have 2 sizes: 20x20 %(12%), 24x24 %(1%); " ..
      "all are resized", text)
  end)

  it("refuses to resume from a checkpoint of other data, naming it", function()
    X.image_folder(dir .. "/images", 5)   -- 12 training images: 3 batches of 4
    local code, text = run("train.lua", "--data_dir images --max_epochs 1 " .. QUICK, dir)
    assert.equal(0, code, text)
    code, text = run("train.lua", "--data_dir images --image_size 32 --max_epochs 2 --resume last " .. QUICK, dir)
    assert.equal(1, code, text)
    assert.matches("%-%-resume: out/image_classifier/version_0/checkpoints/last%.safetensors is a checkpoint of other " ..
      "data or another network: image_size 16 %(this run: 32%)", text)
    assert.equal("version_0", table.concat(L.core.io.listdir(dir .. "/out/image_classifier"), " "))
    -- a newer run of other data in the experiment: the advice names the newest checkpoint of this data
    code, text = run("train.lua", "--data_dir images --image_size 32 --max_epochs 1 " .. QUICK, dir)
    assert.equal(0, code, text)
    code, text = run("train.lua", "--data_dir images --max_epochs 2 --resume last " .. QUICK, dir)
    assert.equal(1, code, text)
    assert.matches("%-%-resume: out/image_classifier/version_1/checkpoints/last%.safetensors is a checkpoint of other " ..
      "data or another network: image_size 32 %(this run: 16%)%. The newest checkpoint of this data there is " ..
      "out/image_classifier/version_0/checkpoints/last%.safetensors: %-%-resume out/image_classifier/version_0/" ..
      "checkpoints/last%.safetensors, or leave out %-%-resume", text)
  end)
end)

describe("examples/train.lua --resume last with a damaged last checkpoint", function()
  it("fails naming the file (empty, or a FIFO that must not block), and trains nothing", function()
    local dir = H.tmpdir()
    X.image_folder(dir .. "/images", 5)   -- 12 training images: 3 batches of 4
    local common = "--data_dir images --batch_size 4 --num_workers 0 --output_dir out --quiet --no_progress_bar"
    local code, text = run("train.lua", common .. " --max_epochs 1", dir)
    assert.equal(0, code, text)
    local last = dir .. "/out/image_classifier/version_0/checkpoints/last.safetensors"
    H.write_file(last, "")
    code, text = run("train.lua", common .. " --max_epochs 2 --resume last", dir)
    assert.equal(1, code, text)
    assert.matches("Training failed: [^\n]*the last checkpoint out/image_classifier/version_0/checkpoints/last%.safetensors " ..
      "cannot be read: 0 bytes are too few for a safetensors file", text)
    os.remove(last)
    assert(os.execute(("mkfifo %q"):format(last)))
    code, text = X.run("train.lua", common .. " --max_epochs 2 --resume last", {cwd = dir, env = "timeout 60"})
    local versions = table.concat(L.core.io.listdir(dir .. "/out/image_classifier"), " ")
    H.rmdir(dir)
    assert.equal(1, code, text)
    assert.matches("last%.safetensors cannot be read: it is a FIFO %(named pipe%), not a regular file", text)
    assert.equal("version_0", versions)
  end)
end)

describe("examples/predict.lua", function()
  it("names a special file for what it is", function()
    local code, text = run("predict.lua", "--checkpoint x.safetensors /dev/null")
    assert.equal(1, code)
    assert.matches("Prediction failed: /dev/null is a device, not a PNG image or a folder of them", text)
    code, text = run("predict.lua", "--checkpoint x.safetensors /nothing/here.png")
    assert.matches("Prediction failed: /nothing/here%.png: no such file or folder", text)
  end)
end)
