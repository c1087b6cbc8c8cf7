/* Bindings for layers and losses (lightning.nn): functions in lightning.core.nn. */
#include "l_util.h"

void lt_open_nn(lua_State *L, int module) {
    static const luaL_Reg fns[] = {{NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "nn");
}
