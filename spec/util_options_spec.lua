-- lightning.util.options, the one option checker: how values are shown, what a spec accepts, the
-- messages for unknown names, and that errors point at the caller's line.
local L = require "lightning"
local H = require "helpers"
local options = require "lightning.util.options"
local closest = require "lightning.util.closest"

describe("util.options", function()
  it("describes values one way", function()
    local cases = {{0, "0"}, {-2, "-2"}, {1.5, "1.5"}, {2.0, "2.0"}, {0.1, "0.1"}, {1e-8, "1e-08"}, {0 / 0, "nan"},
      {math.huge, "inf"}, {-math.huge, "-inf"}, {"yes", '"yes"'}, {true, "true"}, {false, "false"}, {nil, "nil"},
      {L.zeros(2), "tensor"}, {{}, "table"}, {L.nn.ReLU(), "ReLU"}, {print, "function"}}
    for i, c in ipairs(cases) do assert.equal(c[2], options.describe(c[1]), "case " .. i) end
  end)

  local specs = {
    count = {kind = "integer", min = 1, default = 2},
    rate = {kind = "number", min = 0, below = 1},
    scale = {kind = "number", above = 0, max = 1},
    mode = {kind = "string", one_of = {"min", "max"}, default = "min"},
    flag = {kind = "boolean"},
    size = {kind = {"integer", "table"}},
    custom = {test = function(v) return v == "a" or v == 3 end, expected = '"a" or 3'},
    whole = {check = function(v) if v ~= 1 then return "whole: only 1 will do, got " .. options.describe(v) end end},
    needed = {kind = "string", required = true},
  }

  it("fills defaults, keeps what is given and makes integral floats integers", function()
    local o = options.check("F", {count = 3.0, needed = "x", flag = false}, specs)
    assert.equal(3, o.count)
    assert.equal("integer", math.type(o.count))
    assert.equal("min", o.mode)
    assert.is_false(o.flag)
    assert.is_nil(o.rate)
    assert.same({count = 2, mode = "min", needed = "y"}, options.check("F", {needed = "y"}, specs))
  end)

  it("says what a value must be and what it got", function()
    local function problem(opts)
      opts.needed = opts.needed or "x"
      return H.error_of(options.check, "F", opts, specs)
    end
    assert.equal("F: count must be an integer >= 1, got 0", problem{count = 0})
    assert.equal("F: count must be an integer >= 1, got 1.5", problem{count = 1.5})
    assert.equal("F: rate must be a number in [0, 1), got 1", problem{rate = 1})
    assert.equal("F: rate must be a number in [0, 1), got nan", problem{rate = 0 / 0})
    assert.equal("F: scale must be a number in (0, 1], got 0", problem{scale = 0})
    assert.equal('F: mode must be "min" or "max", got "low"', problem{mode = "low"})
    assert.equal('F: flag must be a boolean, got "yes"', problem{flag = "yes"})
    assert.equal("F: size must be an integer or a table, got true", problem{size = true})
    assert.equal('F: custom must be "a" or 3, got 4', problem{custom = 4})
    assert.equal("F: whole: only 1 will do, got 2", problem{whole = 2})
    assert.equal("F: option needed is required (it has no default)", H.error_of(options.check, "F", {}, specs))
    assert.equal('F: expected a table of options, got "x"', H.error_of(options.check, "F", "x", specs))
    assert.equal("F: expected a table of options, got tensor", H.error_of(options.check, "F", L.zeros(1), specs))
  end)

  it("tells a positive integer (the test behind nn's and data's positive_int checkers)", function()
    local function check(v) return {options.positive_int(v)} end
    assert.same({3}, check(3))
    assert.equal("integer", math.type(options.positive_int(3.0)))
    assert.same({math.maxinteger}, check(math.maxinteger))
    assert.same({2 ^ 53 - 1}, check(2 ^ 53 - 1))
    for _, v in ipairs{1.5, 2 ^ 53, 1e300, math.huge, -math.huge, 0 / 0, "3", true, {}} do
      assert.same({nil, "an integer"}, check(v), options.describe(v))
    end
    assert.same({nil, "an integer"}, check(nil))
    for _, v in ipairs{0, -1, 0.0, math.mininteger} do assert.same({nil, "positive"}, check(v), options.describe(v)) end
    -- one checker words it, for the layers and the rest of the library alike
    local nn_util, data_util = require "lightning.nn.util", require "lightning.util.checks"
    assert.equal(data_util.positive_int, nn_util.positive_int)
    assert.equal("F: n must be positive, got 0", H.error_of(nn_util.positive_int, "F", "n", 0))
    assert.equal("F: n must be an integer, got inf", H.error_of(nn_util.positive_int, "F", "n", math.huge))
    assert.equal("F: n must be an integer, got 1.5", H.error_of(data_util.positive_int, "F", "n", 1.5))
    assert.equal(4, data_util.positive_int("F", "n", 4.0))
  end)

  it("names unknown options, suggests the closest and lists the known ones", function()
    local known = "(known: count, custom, flag, mode, needed, rate, scale, size, whole)"
    assert.equal("F: unknown option 'cuont' (did you mean 'count'?) " .. known,
      H.error_of(options.check, "F", {cuont = 1}, specs))
    assert.equal("F: unknown option 'zzz' " .. known, H.error_of(options.check, "F", {zzz = 1}, specs))
    assert.equal("F: unknown options 'flagg' (did you mean 'flag'?), 'zzz' " .. known,
      H.error_of(options.check, "F", {zzz = 1, flagg = true}, specs))
    assert.equal("F: unknown option [1] " .. known, H.error_of(options.check, "F", {5}, specs))
    assert.equal("F: group 2: unknown option 'zzz' (known: a)",
      H.error_of(options.check, "F", {zzz = 1}, {a = {kind = "any"}}, {where = "group 2: "}))
    assert.same({a = 1, b = 2}, options.check("F", {a = 1, b = 2}, {a = {kind = "any"}}, {allow = {b = true}}))
  end)

  it("names the class the user called, a subclass included, and suggests the option it abbreviates", function()
    local MyNet = L.class("MyNet", L.models.BasicImageClassifier)
    assert.matches("^MyNet: unknown option 'dropout' %(did you mean 'dropout_rate'%?%)", H.error_of(MyNet, {dropout = 0.5}))
    assert.matches("^ImageClassifier: unknown option 'lr' %(did you mean 'learning_rate'%?%)",
      H.error_of(L.models.ImageClassifier, {lr = 0.1}))
    local Saver = L.class("Saver", L.callbacks.ModelCheckpoint)
    assert.matches("^Saver: unknown option 'monitr' %(did you mean 'monitor'%?%)", H.error_of(Saver, {monitr = "x"}))
    assert.matches("^EarlyStopping: monitor must be", H.error_of(L.callbacks.EarlyStopping, {}))
  end)

  it("suggests only near names: one edit per three letters", function()
    local known = {lr = true, eps = true, max_epochs = true, patience = true}
    assert.equal("lr", closest.suggestion("lrr", known))
    assert.is_nil(closest.suggestion("eta", known))          -- two edits from eps: too far for three letters
    assert.equal("max_epochs", closest.suggestion("max_epoch", known))
    assert.equal("patience", closest.suggestion("patiense", known))
    assert.is_nil(closest.suggestion("momentum", known))
    -- a name whose words abbreviate one known name's, are its initials or lie among its words
    local names = {val_acc = true, val_loss = true, dropout_rate = true, learning_rate = true, max_epochs = true,
      min_epochs = true}
    assert.equal("val_acc", closest.suggestion("val_accuracy", names))
    assert.equal("learning_rate", closest.suggestion("lr", names))
    assert.equal("dropout_rate", closest.suggestion("dropout", names))
    assert.is_nil(closest.suggestion("epochs", names))           -- max_epochs or min_epochs: no guess
    assert.is_nil(closest.suggestion("loss", names, {words = false}))
    assert.equal("val_loss", closest.suggestion("loss", names))
    assert.equal(3, closest.distance("kitten", "sitting"))
    assert.equal(1, closest.distance("bais", "bias"))       -- a swap is one edit
    assert.equal(1, closest.distance("singel", "single"))
  end)

  it("raises at the caller's line, through the library's own frames", function()
    local line
    local ok, err = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      L.nn.Linear(2, 2, {bais = true})  -- (not a tail call: that frame would be gone)
    end)
    assert.is_false(ok)
    assert.matches("^spec/util_options_spec%.lua:" .. line .. ": Linear: unknown option 'bais' %(did you mean 'bias'%?%)", err)
    -- called straight from pcall (a C function) there is no line to name
    assert.matches("^Linear: unknown option 'bais'", H.error_of(L.nn.Linear, 2, 2, {bais = true}))
    -- the same through the class machinery and a lazily loaded module
    ok, err = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      L.callbacks.EarlyStopping{monitor = "x", patience = -1}
    end)
    assert.matches("^spec/util_options_spec%.lua:" .. line .. ": EarlyStopping: patience must be an integer >= 0, got %-1", err)
  end)
end)
