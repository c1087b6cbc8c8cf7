-- Every code block of README.md and docs/*.md runs, so that the docs cannot drift from the code: each
-- ```lua block of a file runs in order as its own process, in a folder of its own holding what the
-- blocks use, made small (data/: a synthetic CIFAR-10 of 8 records per batch file in the binary
-- format; my_images/: class folders of PNGs; cat.png and ship.png; the checkpoint train.lua writes,
-- outputs/image_classifier/version_0/checkpoints/last.safetensors; spec/ and examples/ of the tree).
-- A block that is not Lua (shell commands, output) or is deliberately partial says so with a marker
-- on the line before its fence, which the extractor honours and requires a reason for:
--   <!-- not run: shell commands -->
-- A Lua block that needs an optional dependency says so the same way, and runs where the build has it
-- (lightning/dist.so for MPI; the minimal build of .ci/run skips it):
--   <!-- needs: MPI -->
-- Any other block that is not Lua is an error: none is silently skipped.
local L = require "lightning"
local H = require "helpers"
local D = require "data_helpers"
local X = require "script_helpers"

local M = require "docs_markdown"

local RECORDS = 8
-- What a `needs` marker may name, and whether this build has it.
local AVAILABLE = {MPI = function() return L.distributed.available() end}
local blocks_of = M.blocks_of

local PREAMBLE = ("package.path = %q .. package.path; require 'docs_fixture'"):format(X.ROOT .. "/spec/?.lua;")

local function run_lua(dir, file, args)
  local cmd = ("cd %q && LIGHTNING_DOCS_CIFAR_RECORDS=%d %s timeout 600 lua5.4 -e %q %s %s 2>&1"):format(dir, RECORDS,
    X.module_env(), PREAMBLE, file, args or "")
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

-- What the blocks use, in dir.
local function fixtures(dir, checkpoint_from)
  D.make_cifar(dir .. "/data/cifar-10-batches-bin", RECORDS)
  X.image_folder(dir .. "/my_images", 3)
  L.manual_seed(9)
  L.data.write_png(dir .. "/cat.png", L.rand(3, 32, 32))
  L.data.write_png(dir .. "/ship.png", L.rand(3, 32, 32))
  assert(os.execute(("ln -s %q %q && ln -s %q %q"):format(X.ROOT .. "/spec", dir .. "/spec", X.ROOT .. "/examples",
    dir .. "/examples")))
  if checkpoint_from then assert(os.execute(("cp -r %q %q"):format(checkpoint_from, dir .. "/outputs"))) end
end

describe("The code blocks of README.md and docs/*.md", function()
  local made
  setup(function()
    -- one training run of train.lua on the tiny data: the checkpoint the inference blocks load
    made = H.tmpdir()
    fixtures(made)
    local code, out = run_lua(made, X.ROOT .. "/examples/train.lua", "--cifar10 --data_root data --max_epochs 1 " ..
      "--batch_size 16 --num_workers 0 --quiet --no_progress_bar --output_dir outputs")
    assert(code == 0, out)
  end)
  teardown(function() H.rmdir(made) end)

  for _, file in ipairs(M.files(X.ROOT)) do
    it(file .. ": every block runs, or says why not", function()
      local blocks = blocks_of(H.read_file(X.ROOT .. "/" .. file))
      local dir = H.tmpdir()
      fixtures(dir, made .. "/outputs")
      local ran = 0
      for _, b in ipairs(blocks) do
        if b.not_run then
          assert(b.not_run ~= "", ("%s:%d: a not-run marker needs a reason"):format(file, b.line))
        elseif b.needs and not assert(AVAILABLE[b.needs], ("%s:%d: a needs marker names MPI, got %q"):format(file,
            b.line, b.needs))() then
          -- (this build lacks it: the block is left out)
        elseif b.lang ~= "lua" then
          error(("%s:%d: a ```%s block without a marker: run it as Lua, or put <!-- not run: why --> before it")
            :format(file, b.line, b.lang), 0)
        else
          local path = ("%s/doc_block_%d.lua"):format(dir, b.line)
          H.write_file(path, b.code)
          local code, out = run_lua(dir, path)
          assert(code == 0, ("%s:%d: the block failed (exit status %s):\n%s\n-- its output:\n%s"):format(file, b.line,
            tostring(code), b.code, out))
          ran = ran + 1
        end
      end
      H.rmdir(dir)
      assert.is_true(ran + #blocks > 0)
    end)
  end
end)

describe("The docs' block extractor", function()
  it("finds indented blocks, reads the marker before a fence, and keeps blocks without one", function()
    local blocks = blocks_of(table.concat({
      "text", "```lua", "print(1)", "```", "",
      "<!-- not run: shell commands -->", "```sh", "lua x.lua", "```",
      "- item:", "  ```lua", "  local a = 1", "    local b = 2", "  ```",
      "<!-- not run:  -->", "```", "output", "```",
      "```sh", "rm -rf /", "```",
      "<!-- needs: MPI -->", "```lua", "L.distributed.init()", "```"}, "\n"))
    assert.equal(6, #blocks)
    assert.same({1 + 1, "lua", "print(1)\n"}, {blocks[1].line, blocks[1].lang, blocks[1].code})
    assert.is_nil(blocks[1].not_run)
    assert.equal("shell commands", blocks[2].not_run)
    assert.equal("local a = 1\n  local b = 2\n", blocks[3].code)
    assert.equal("", blocks[4].not_run)       -- (an empty reason, which the spec refuses)
    assert.is_nil(blocks[5].not_run)           -- a shell block without a marker: the spec fails on it
    assert.equal("sh", blocks[5].lang)
    assert.same({"MPI", "lua"}, {blocks[6].needs, blocks[6].lang})
    assert.is_nil(blocks[6].not_run)
  end)
end)
