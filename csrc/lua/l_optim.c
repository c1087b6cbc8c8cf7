/* Bindings for optimizers (lightning.optim): functions in lightning.core.optim. */
#include "l_util.h"

void lt_open_optim(lua_State *L, int module) {
    static const luaL_Reg fns[] = {{NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "optim");
}
