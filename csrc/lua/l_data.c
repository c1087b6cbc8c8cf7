/* Bindings for data sets, images, transforms and the loader (lightning.data): functions in lightning.core.data. */
#include "l_util.h"

void lt_open_data(lua_State *L, int module) {
    static const luaL_Reg fns[] = {{NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "data");
}
