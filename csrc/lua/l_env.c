/* luaopen_lightning_env: the thread runtime's defaults, set before lightning/core.so loads (the module
 * lightning.core, lua/lightning/core.lua, requires this one first). It links no OpenMP itself: GNU
 * OpenMP (libgomp, which the core and Debian's oneDNN use) reads its environment once, in a constructor
 * that runs when core.so loads it, so nothing inside core.so could still change it.
 *
 * Why: a thread that has finished its share of a parallel loop, or waits for the next one, spins
 * GOMP_SPINCOUNT times before it sleeps (libgomp's default is 300,000, about 3 ms). On a machine where
 * another process competes for the cores, the spinning thread keeps a core from the thread it waits
 * for, and every parallel loop waits a scheduler time slice: two threads trained 2-5x slower than one.
 * A short spin keeps the quiet machine's speed (a thread that waits microseconds still finds its work
 * without sleeping) and lets a waiting thread give its core away within about 0.1 ms.
 *
 * A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins. lightning.env.restore() unsets what was set here
 * once the runtime has read it, so that child processes see the environment the user gave them. */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

/* Spins before a waiting thread sleeps (libgomp counts about 100,000 a millisecond). */
#define LT_SPINCOUNT "10000"

static const char *set_here;  /* the variable set here, NULL if none */

/* restore() unsets what luaopen set (once the runtime has read it); a no-op when it set nothing. */
static int l_restore(lua_State *L) {
    if (set_here) unsetenv(set_here);
    set_here = NULL;
    return 0;
}

/* The module: {GOMP_SPINCOUNT = {value = "10000", chosen_by = "lightning" or "user"}, restore = f}.
 * chosen_by is "user" when the user set GOMP_SPINCOUNT or OMP_WAIT_POLICY (value: theirs, or nil). */
__attribute__((visibility("default"))) int luaopen_lightning_env(lua_State *L);
int luaopen_lightning_env(lua_State *L) {
    const char *spin = getenv("GOMP_SPINCOUNT"), *policy = getenv("OMP_WAIT_POLICY");
    const char *value = spin, *by = "user";
    if (!spin && !policy) {
        if (setenv("GOMP_SPINCOUNT", LT_SPINCOUNT, 0) == 0) set_here = "GOMP_SPINCOUNT";
        value = LT_SPINCOUNT;
        by = "lightning";
    }
    lua_newtable(L);
    lua_newtable(L);
    lua_pushstring(L, value);
    lua_setfield(L, -2, "value");
    lua_pushstring(L, by);
    lua_setfield(L, -2, "chosen_by");
    lua_setfield(L, -2, "GOMP_SPINCOUNT");
    lua_pushcfunction(L, l_restore);
    lua_setfield(L, -2, "restore");
    return 1;
}
