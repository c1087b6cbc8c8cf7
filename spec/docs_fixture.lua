-- Loaded before each code block of README.md and docs/*.md that spec/docs_examples_spec.lua runs (and
-- before the train.lua run that makes their checkpoint): the CIFAR-10 folder there is a tiny synthetic
-- one in the binary format, RECORDS records per batch file, so the data sets read that many.
local RECORDS = tonumber(os.getenv("LIGHTNING_DOCS_CIFAR_RECORDS") or "")
if not RECORDS then return end
local datasets = require "lightning.data.datasets"
local data = require "lightning.data"
local CIFAR10 = datasets.CIFAR10
local function small_cifar10(opts)
  if type(opts) == "table" and opts.records_per_file == nil then
    local copy = {}
    for k, v in pairs(opts) do copy[k] = v end
    copy.records_per_file = RECORDS
    opts = copy
  end
  return CIFAR10(opts)
end
datasets.CIFAR10, data.CIFAR10 = small_cifar10, small_cifar10
