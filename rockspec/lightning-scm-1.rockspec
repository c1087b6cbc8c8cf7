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
   },
   install = {
      -- the training script as a command (LuaRocks wraps it so that it finds the installed library)
      bin = {
         ["lightning-train"] = "examples/train.lua",
      },
   },
}
