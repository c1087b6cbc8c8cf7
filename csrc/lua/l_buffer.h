/* L.buffer(dtype, n): a fixed array of n float64 or int64 values, for what float32 tensors do not hold
 * (sums that must not lose digits, counts): nn.SyncBatchNorm's statistics go through one, and
 * lightning.dist (a separate C module) reduces them across processes. Both modules read the userdata
 * through this header; core.so creates it. */
#ifndef LT_L_BUFFER_H
#define LT_L_BUFFER_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#define LT_BUFFER_MT "lightning.Buffer"

typedef enum lt_buffer_dtype { LT_BUFFER_FLOAT64, LT_BUFFER_INT64 } lt_buffer_dtype;

typedef struct lt_buffer {
    int64_t len;
    lt_buffer_dtype dtype;
    void *data;  /* len elements of 8 bytes (double or int64_t, as dtype says), inside the userdata */
} lt_buffer;

static inline lt_buffer *lt_test_buffer(lua_State *L, int idx) { return luaL_testudata(L, idx, LT_BUFFER_MT); }

#endif
