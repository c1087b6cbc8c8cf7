/* Tensor:set_(source): makes this tensor userdata a view of source's storage, with source's offset,
 * sizes and strides (PyTorch's Tensor.set_(source)); the values it held are not copied, and fields
 * stored on it (p.grad) stay. Whatever holds the userdata (an optimizer's parameter list, a layer's
 * weight field) reads and writes the new storage from then on: Module:flatten_parameters uses it to move
 * every parameter and gradient into one flat buffer (lua/lightning/nn/flat.lua). */
#include "l_util.h"

static int t_set_(lua_State *L) {
    const char *fname = "Tensor:set_";
    lt_tensor *t = lt_check_tensor_anywhere(L, 1, fname);
    lt_tensor *source = lt_check_tensor_anywhere(L, 2, fname);  /* any device: a view is not a copy */
    lt_tensor_share(t, source);  /* takes a reference to source's storage, drops the old one */
    lua_settop(L, 1);
    return 1;
}

/* Registered from luaopen_lightning_core; `methods` is the stack index of the Tensor method table. */
void lt_open_flatten(lua_State *L, int methods);
void lt_open_flatten(lua_State *L, int methods) {
    lua_pushcfunction(L, t_set_);
    lua_setfield(L, methods, "set_");
}
