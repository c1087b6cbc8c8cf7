/* Bindings for file formats: safetensors, TensorBoard event files: functions in lightning.core.io. */
#include "l_util.h"

void lt_open_io(lua_State *L, int module) {
    static const luaL_Reg fns[] = {{NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "io");
}
