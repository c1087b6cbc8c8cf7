/* lightning.core.interrupt: interruptions (Ctrl-C's SIGINT, SIGTERM) that wait for a safe point.
 *   interrupt.watch()     while watched, SIGINT and SIGTERM only set a flag (nested calls count)
 *   interrupt.pending()   --> "SIGINT", "SIGTERM" or nil: the signal received since the last clear
 *   interrupt.clear()
 *   interrupt.unwatch()   the handlers that were there before come back; a signal that arrived since
 *                         the last pending() is raised again, so that it is never lost
 * The Trainer watches during its runs and reads the flag between batches: an interruption then stops
 * the run after a whole batch, never inside an optimizer step, and its checkpoint is the exact state
 * of the run. (Lua's interpreter turns SIGINT into an "interrupted!" error at whatever Lua
 * instruction runs next.) A second signal while one is pending goes to the handler that was there
 * before at once: the interpreter's error, or the default action, which ends the process. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>

#include "l_util.h"

static const int watched_signals[] = {SIGINT, SIGTERM};
#define NUM_WATCHED (int)(sizeof watched_signals / sizeof watched_signals[0])

static volatile sig_atomic_t pending_signal;
static struct sigaction previous[NUM_WATCHED];
static int watch_depth;

static int watched_index(int sig) {
    for (int i = 0; i < NUM_WATCHED; i++)
        if (watched_signals[i] == sig) return i;
    return -1;
}

/* Async-signal-safe: a flag, or (the second time) sigaction and raise. */
static void on_signal(int sig) {
    if (pending_signal) {
        int i = watched_index(sig);
        if (i >= 0) sigaction(sig, &previous[i], NULL);
        raise(sig);  /* delivered to that handler once this one returns */
        return;
    }
    pending_signal = sig;
}

static const char *signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal"; }

static int l_watch(lua_State *L) {
    if (watch_depth++ > 0) return 0;
    pending_signal = 0;
    struct sigaction action;
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  /* reads and waits go on; the flag is read between batches */
    for (int i = 0; i < NUM_WATCHED; i++) {
        if (sigaction(watched_signals[i], &action, &previous[i]) != 0) {
            for (int j = 0; j < i; j++) sigaction(watched_signals[j], &previous[j], NULL);
            watch_depth = 0;
            return luaL_error(L, "lightning.core.interrupt.watch: cannot install a handler for %s",
                              signal_name(watched_signals[i]));
        }
    }
    return 0;
}

static int l_unwatch(lua_State *L) {
    if (watch_depth == 0 || --watch_depth > 0) return 0;
    for (int i = 0; i < NUM_WATCHED; i++) sigaction(watched_signals[i], &previous[i], NULL);
    int sig = pending_signal;
    pending_signal = 0;
    if (sig) raise(sig);
    return 0;
}

static int l_pending(lua_State *L) {
    int sig = pending_signal;
    if (sig) lua_pushstring(L, signal_name(sig));
    else lua_pushnil(L);
    return 1;
}

static int l_clear(lua_State *L) {
    pending_signal = 0;
    return 0;
}

void lt_open_interrupt(lua_State *L, int module) {
    static const luaL_Reg fns[] = {
        {"watch", l_watch}, {"unwatch", l_unwatch}, {"pending", l_pending}, {"clear", l_clear}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, module, "interrupt");
}
