rockspec_format = "3.0"
package = "lightning"
version = "scm-1"
source = {
   url = "git+file://."
}
description = {
   summary = "Deep learning for Lua 5.4 with a C core: tensors, layers, data loading and a Lightning-style Trainer",
   detailed = [[
      Tensors, layers, losses, optimizers, data sets and file formats (safetensors, TensorBoard, PNG) in C
      as Lua userdata; a training loop in the style of PyTorch Lightning in Lua.
   ]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4",
   "argparse",
   "lua-cjson",
}
external_dependencies = {
   OPENBLAS = { library = "openblas" },
   PNG = { header = "png.h", library = "png" },
   ZLIB = { header = "zlib.h", library = "z" },
}
build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      LUA_INCDIR = "$(LUA_INCDIR)",
      LUA_LIBDIR = "$(LIBDIR)",
      LUA_LUADIR = "$(LUADIR)",
      -- README.md, docs/ and examples/ into the rock's doc folder (luarocks doc lightning)
      LIGHTNING_DOC_DIR = "$(PREFIX)/doc",
   },
   install = {
      -- the scripts as commands (LuaRocks wraps them so that they find the installed library)
      bin = {
         ["lightning-train"] = "examples/train.lua",
         ["lightning-predict"] = "examples/predict.lua",
      },
   },
}
