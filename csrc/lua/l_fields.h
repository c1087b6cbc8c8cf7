/* Reading a call's arguments from one table of named fields (lightning.core.nn, lightning.core.optim):
 *   C.conv2d_forward{name = "Conv2d:forward", handle = h, output = out, input = x, weight = w, ...}
 * Each getter names its field in errors ("Conv2d:forward: weight must be a tensor, got nil"); a field
 * the function does not read is an error too, so a misspelt or misplaced name is caught. */
#ifndef LT_L_FIELDS_H
#define LT_L_FIELDS_H

#include <stdbool.h>

#include "l_util.h"

#define LT_FIELDS_MAX 32

typedef struct lt_fields {
    lua_State *L;
    int idx;              /* the table's absolute stack index */
    const char *fname;    /* the table's `name` field, or the function's name: the prefix of errors */
    const char *read[LT_FIELDS_MAX];
    int nread;
    bool any_dtype;       /* tensors reach the front in their own element type */
} lt_fields;

/* Starts reading the table at idx; fname is used unless the table has a `name` string. A bfloat16
 * tensor (a mixed-precision layer's activation) in a field is then given to the front as a float32
 * copy: the front computes in float32 (lt_fields_open_any: the front takes either type itself). */
void lt_fields_open(lt_fields *f, lua_State *L, int idx, const char *fname);
void lt_fields_open_any(lt_fields *f, lua_State *L, int idx, const char *fname);
/* Errors on a field that no getter read: "unknown field 'wieght' (this call reads: ...)". */
void lt_fields_close(lt_fields *f);

lt_tensor *lt_field_tensor(lt_fields *f, const char *name);      /* required */
lt_tensor *lt_field_opt_tensor(lt_fields *f, const char *name);  /* nil: NULL */
lua_Integer lt_field_integer(lt_fields *f, const char *name);
lua_Integer lt_field_opt_integer(lt_fields *f, const char *name, lua_Integer def);
double lt_field_number(lt_fields *f, const char *name);
double lt_field_opt_number(lt_fields *f, const char *name, double def);
bool lt_field_boolean(lt_fields *f, const char *name, bool def);  /* nil: def */
const char *lt_field_string(lt_fields *f, const char *name);      /* required */
const char *lt_field_opt_string(lt_fields *f, const char *name, const char *def);
/* A full userdata of metatable tname (required); what names it in errors. */
void *lt_field_udata(lt_fields *f, const char *name, const char *tname, const char *what);

#endif
