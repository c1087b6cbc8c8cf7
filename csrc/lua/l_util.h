/* Shared by the bindings: the Tensor userdata, argument checks, and turning core errors into Lua
 * errors that name the function ("Tensor:view: cannot view ..."). */
#ifndef LT_L_UTIL_H
#define LT_L_UTIL_H

#include <lauxlib.h>
#include <lua.h>

#include "../core/base/error.h"
#include "../core/tensor/tensor.h"

#define LT_TENSOR_MT "lightning.Tensor"

/* Raises "<fname>: <message>". Never returns. */
int lt_raise(lua_State *L, const char *fname, const lt_error *err);
int lt_raisef(lua_State *L, const char *fname, const char *fmt, ...);

/* Pushes a new tensor userdata that holds no storage yet; the caller fills it through a core call. */
lt_tensor *lt_push_tensor(lua_State *L);
/* Argument checks. Messages name the function and the argument as the caller counts it (for a
 * method "Tensor:f", the first argument after self is argument 1):
 *   "Tensor:add: argument 1 must be a tensor or a number, got string" */
/* "tensor" for tensors, Lua's type name otherwise. */
const char *lt_typename(lua_State *L, int idx);
int lt_argerror(lua_State *L, int idx, const char *fname, const char *fmt, ...);
/* The float32 tensor at idx, or an error (also for a bfloat16 one: most functions compute on float32;
 * the message tells the user to call :float()). */
lt_tensor *lt_check_tensor(lua_State *L, int idx, const char *fname);
/* The float32 tensor at idx, or NULL if the value there is not a tensor. Errors on a closed tensor and
 * on a bfloat16 one. */
lt_tensor *lt_test_tensor(lua_State *L, int idx, const char *fname);
/* The same for functions that take tensors of any element type (shape queries, views, conversions,
 * the layers' bindings, whose fronts convert what their kernels cannot take). */
lt_tensor *lt_check_tensor_any(lua_State *L, int idx, const char *fname);
/* A float32 tensor on any device: for the functions whose core paths serve every device (fill, zero,
 * copy, clone, resize). */
lt_tensor *lt_check_tensor_anywhere(lua_State *L, int idx, const char *fname);
lt_tensor *lt_test_tensor_any(lua_State *L, int idx, const char *fname);
/* A float32 tensor on any device, or NULL if the value at idx is not a tensor (arithmetic, reductions
 * and metrics, which the core serves on every device). */
lt_tensor *lt_test_tensor_anywhere(lua_State *L, int idx, const char *fname);
lua_Number lt_check_number(lua_State *L, int idx, const char *fname);
lua_Number lt_opt_number(lua_State *L, int idx, const char *fname, lua_Number def);
lua_Integer lt_check_integer(lua_State *L, int idx, const char *fname);
lua_Integer lt_opt_integer(lua_State *L, int idx, const char *fname, lua_Integer def);
/* An integer; what names it in the message ("start must be an integer, got 1.5"). */
lua_Integer lt_check_int_arg(lua_State *L, int idx, const char *fname, const char *what);
/* A collective's reduction named at idx: 0 "sum" (also when absent), 1 "mean", 2 "max", 3 "min" (the order of
 * lt_dist_op and lt_comm_op). */
int lt_check_reduce_op(lua_State *L, int idx, const char *fname);
/* An integer in lo..hi; what names it in the message ("num_workers must be an integer in 0..1024, got
 * 1e+100"). NaN, infinities, fractions and numbers beyond int64 are refused, never truncated. */
lua_Integer lt_check_int_in(lua_State *L, int idx, const char *fname, const char *what, lua_Integer lo, lua_Integer hi);
lua_Integer lt_opt_int_in(lua_State *L, int idx, const char *fname, const char *what, lua_Integer lo, lua_Integer hi,
                          lua_Integer def);
/* A 1-based integer index at idx as a 0-based one (math.mininteger, which has no 0-based value, is
 * refused here; the core checks the range). */
int64_t lt_check_index_arg(lua_State *L, int idx, const char *fname, const char *what);
/* #t of the table at idx (through __len), which must be in 0..max. */
lua_Integer lt_len_in(lua_State *L, int idx, const char *fname, const char *what, lua_Integer max);
/* A count as the size hint lua_createtable takes (an int; 0 when it does not fit). */
static inline int lt_table_hint(int64_t n) { return n > 0 && n <= 1 << 30 ? (int)n : 0; }
int lt_opt_boolean(lua_State *L, int idx, const char *fname, int def);
const char *lt_check_string(lua_State *L, int idx, const char *fname);
void lt_check_table(lua_State *L, int idx, const char *fname);

/* Sizes given as numbers from idx on (L.zeros(2, 3)) or as one table (L.zeros({2, 3})); returns the
 * count. Sizes must be integers; allow_minus_one lets -1 through for view/reshape/expand. */
int lt_check_sizes_arg(lua_State *L, int idx, const char *fname, int64_t *sizes, int allow_minus_one);
/* A 1-based dimension of t (negative counts from the end) as 0-based. */
int lt_check_dim(lua_State *L, int idx, const lt_tensor *t, const char *fname);
/* Pushes a list of sizes as a table with a __tostring giving "2x3". */
void lt_push_size(lua_State *L, int ndim, const int64_t *size);

/* Memory a binding holds across a Lua call that can raise (any allocation, any metamethod) belongs to a
 * userdata on the stack, so that an error unwinding the call leaks nothing: lt_push_scratch pushes
 * `size` zeroed bytes whose release (NULL for plain bytes) the collector calls, or lt_scratch_release
 * at once (after which the collector does nothing). For a C struct that owns malloc'd memory (an
 * image, a report), put the struct itself in the scratch and pass its free function. */
void *lt_push_scratch(lua_State *L, size_t size, void (*release)(void *));
void lt_scratch_release(void *scratch);
/* A scratch slot for one pointer from malloc, freed with free(). */
void **lt_push_malloc_slot(lua_State *L);

/* Tells Lua's collector about storage memory allocated since the last call, so that temporaries are
 * collected at the pace they use memory. */
void lt_account_memory(lua_State *L);

/* Registration entry points of the binding files. `module` and `methods` are stack indices: the
 * lightning.core table and the Tensor method table. Each subsystem puts its functions in a subtable of
 * lightning.core (core.nn, core.optim, core.data, core.io) that the Lua side wraps. */
void lt_open_tensor(lua_State *L, int module, int methods);
void lt_open_tensor_math(lua_State *L, int module, int methods);
void lt_open_tensor_index(lua_State *L, int module, int methods);  /* l_tensor_index.c */
void lt_open_nn(lua_State *L, int module);
void lt_open_optim(lua_State *L, int module);
void lt_open_data(lua_State *L, int module);
void lt_open_io(lua_State *L, int module);
void lt_open_metrics(lua_State *L, int module);
void lt_open_plot(lua_State *L, int module);
void lt_open_buffer(lua_State *L, int module);  /* l_buffer.c */
void lt_open_device(lua_State *L, int module, int methods);  /* l_device.c: devices, core.cuda */
void lt_open_graph(lua_State *L, int idx);                   /* l_graph.c: CUDA graphs into core.cuda at idx */
void lt_open_comm(lua_State *L, int idx);                    /* l_comm.c: core.cuda.comm into the table at idx */
/* A device name ("cpu", "cuda", "cuda:0", "gpu") at idx, or a Lua error naming fname. */
lt_device lt_check_device(lua_State *L, int idx, const char *fname);

#endif
