-- examples/train.lua in a real terminal (tmux, 100x30): what the debug report, warnings and summaries
-- print goes above the progress bar, never glued to it, every bar line fits the terminal, and Ctrl-C
-- reads as an interruption with the command that resumes (which then continues the run).
local H = require "helpers"
local X = require "script_helpers"

local SOCKET = "lightning-spec-" .. io.open("/proc/self/stat"):read("n")

local function tmux(args)
  local p = io.popen(("tmux -L %s %s 2>&1"):format(SOCKET, args))
  local out = p:read("a")
  p:close()
  return out
end

-- The whole pane (history included), wrapped lines joined.
local function screen(name)
  local text = tmux(("capture-pane -p -J -S - -t %s"):format(name))
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = (line:gsub("%s+$", "")) end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  return lines, table.concat(lines, "\n")
end

local function wait_for(name, pattern, seconds)
  local deadline = os.time() + seconds
  while os.time() <= deadline do
    local _, text = screen(name)
    if text:find(pattern) then return text end
    os.execute("sleep 0.2")
  end
  local _, text = screen(name)
  error(("no %q on the screen after %d s:\n%s"):format(pattern, seconds, text), 2)
end

-- Starts train.lua with args in a detached 100x30 session; the pane stays open after it ends.
local function start(name, dir, args)
  local cmd = ("cd %q && %s lua5.4 %s/examples/train.lua %s; echo EXIT=$?; sleep 60"):format(dir, X.module_env(),
    X.ROOT, args)
  local quoted = "'" .. cmd:gsub("'", "'\\''") .. "'"   -- ($? is the pane's shell's)
  local out = tmux(("new-session -d -x 100 -y 30 -s %s %s"):format(name, quoted))
  assert(out == "", out)
end

local BAR = {"^Epoch %d+: ", "^Validation: ", "^Sanity Checking: ", "^Testing: "}

-- Every line that shows a bar is a bar line alone: no text before it, nothing glued after it, and no
-- longer than the terminal.
local function assert_no_glued_lines(lines, text)
  for _, line in ipairs(lines) do
    local has_bar = line:find("█", 1, true) or line:find("it/s", 1, true) or line:find("s/it", 1, true)
    if has_bar then
      local is_bar = false
      for _, p in ipairs(BAR) do if line:match(p) then is_bar = true end end
      assert.is_true(is_bar, ("a line with a bar inside other text: %q\n%s"):format(line, text))
      -- whole, or cut two columns short of the width, where the terminal's echo of Ctrl-C ("^C") may follow
      local bar = line:gsub("%^C$", "")
      assert.is_true(utf8.len(bar) <= 98, ("a bar line wider than the terminal: %q"):format(line))
      assert.is_true(bar:sub(-1) == "]" or utf8.len(bar) >= 97, ("text glued after a bar: %q"):format(line))
    end
  end
end

describe("examples/train.lua in a terminal (tmux)", function()
  local dir
  setup(function()
    assert.is_truthy(io.popen("command -v tmux"):read("l"), "tmux is not installed (setup.sh installs it)")
    dir = H.tmpdir()
    X.image_folder(dir .. "/images", 8)
  end)
  teardown(function()
    tmux("kill-server")
    H.rmdir(dir)
  end)

  it("prints the report, warnings and summaries above the bar: no glued lines", function()
    start("report", dir, "--data_dir images --image_size 16 --batch_size 4 --num_workers 0 --output_dir out1 " ..
      "--max_epochs 2 --debug --test")
    local text = wait_for("report", "EXIT=%d+", 120)
    local lines = screen("report")
    assert.matches("EXIT=0", text)
    assert_no_glued_lines(lines, text)
    local function has_line(pattern)
      for _, line in ipairs(lines) do if line:match(pattern) then return true end end
      return false
    end
    for _, pattern in ipairs {"^TRAINING STEP %- Batch 1$", "^VALIDATION STEP %- Batch 1$", "^FORWARD PASS DEBUG$",
      "^%s*Dead neurons: %d+ / %d+$", "^VALIDATION EPOCH 0 SUMMARY$", "^TRAINING EPOCH 1 SUMMARY$",
      "^GRADIENT FLOW %- Epoch 1, Batch 1$", "^parameter +shape +grad norm", "^Training finished after 2 epochs",
      "^Best checkpoint: ", "^Testing the best checkpoint: ", "^Test metric +DataLoader 1$"} do
      assert.is_true(has_line(pattern), pattern .. " is not a line of its own:\n" .. text)
    end
    -- one line kept per epoch
    local kept = {}
    for _, line in ipairs(lines) do
      local e = line:match("^Epoch (%d+): 100%%")
      if e then kept[#kept + 1] = tonumber(e) end
    end
    assert.same({0, 1}, kept, text)
  end)

  it("Ctrl-C stops between batches, says how to resume, and the resume continues", function()
    start("ctrlc", dir, "--data_dir images --image_size 16 --batch_size 4 --num_workers 0 --output_dir out2 " ..
      "--max_epochs 1000 --quiet")
    wait_for("ctrlc", "\nEpoch 1: ", 120)
    tmux("send-keys -t ctrlc C-c")
    local text = wait_for("ctrlc", "EXIT=%d+", 60)
    assert.matches("EXIT=130", text)
    assert_no_glued_lines(screen("ctrlc"), text)
    -- at the epoch's start when Ctrl-C came during the epoch's end, else after the batch that ran
    local where = text:match("\nTraining interrupted: Trainer:fit interrupted by SIGINT %(Ctrl%-C%) at (epoch %d+[^(]*) " ..
      "%(global step %d+%)\n")
    assert.is_not_nil(where, text)
    local epoch, batch = where:match("^epoch (%d+)$"), "0"
    if not epoch then epoch, batch = where:match("^epoch (%d+) after batch (%d+)$") end
    assert.is_not_nil(epoch, where)
    assert.is_nil(text:find("Training failed", 1, true))
    assert.matches("The last good state was saved to out2/image_classifier/version_0/checkpoints/on_exception%.safetensors; " ..
      "resume with %-%-resume last:\n  lua5%.4 [^\n]*examples/train%.lua %-%-data_dir images [^\n]*%-%-quiet %-%-resume last", text)
    -- the command it gives continues the run from there
    local code, out = X.run("train.lua", ("--data_dir images --image_size 16 --batch_size 4 --num_workers 0 " ..
      "--output_dir out2 --max_epochs %d --quiet --no_progress_bar --resume last"):format(tonumber(epoch) + 1), {cwd = dir})
    assert.equal(0, code, out)
    assert.matches(("Restored out2/image_classifier/version_0/checkpoints/on_exception%%.safetensors: continuing at " ..
      "epoch %s%s"):format(epoch, batch ~= "0" and (" after batch " .. batch) or ""), out)
    assert.matches("Training finished after " .. (tonumber(epoch) + 1) .. " epochs", out)
  end)
end)
