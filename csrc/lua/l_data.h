/* Shared by the data bindings (l_data.c: data sets and the loader; l_image.c: PNG and transforms). */
#ifndef LT_L_DATA_H
#define LT_L_DATA_H

#include "../core/data/transform.h"
#include "l_util.h"

#define LT_PIPELINE_MT "lightning.data.Pipeline"

/* The pipeline at idx, or NULL when the value there is nil/none; an error for anything else. */
const lt_pipeline *lt_opt_pipeline(lua_State *L, int idx, const char *fname);
/* Registers the PNG and transform functions into the table at `data`. */
void lt_open_image(lua_State *L, int data);

#endif
