/* Bindings for classification metrics (confusion matrix): functions in lightning.core.metrics. */
#include "l_util.h"

void lt_open_metrics(lua_State *L, int module) {
    static const luaL_Reg fns[] = {{NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "metrics");
}
