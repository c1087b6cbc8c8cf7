/* Bindings for drawing plots into images (raster canvas, bitmap font): lightning.core.plot. */
#include "l_util.h"

void lt_open_plot(lua_State *L, int module) {
    static const luaL_Reg fns[] = {{NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "plot");
}
