/* safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
 * N bytes of JSON {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"key": "value"}}, then the tensors' raw little-endian bytes, offsets relative to the
 * start of that data section.
 *
 * Reading validates everything (header size and JSON, dtypes, shapes, offsets in range, sizes equal to
 * numel * element size, no overlaps, no holes, no trailing bytes) and converts every dtype to float32.
 * Writing produces what the Python library writes: the header padded with spaces to a multiple of 8
 * bytes, the tensors in order, contiguous. */
#ifndef LT_SAFETENSORS_H
#define LT_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"
#include "../tensor/tensor.h"

/* The largest header we accept (the Python library's own limit). */
#define LT_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef enum lt_st_dtype {
    LT_DTYPE_F64, LT_DTYPE_F32, LT_DTYPE_F16, LT_DTYPE_BF16,
    LT_DTYPE_I64, LT_DTYPE_I32, LT_DTYPE_I16, LT_DTYPE_I8,
    LT_DTYPE_U64, LT_DTYPE_U32, LT_DTYPE_U16, LT_DTYPE_U8, LT_DTYPE_BOOL,
    LT_DTYPE_COUNT
} lt_st_dtype;

const char *lt_st_dtype_name(lt_st_dtype dtype);        /* "F32" */
size_t lt_st_dtype_size(lt_st_dtype dtype);             /* bytes per element */
/* The dtype named name[0..len) ("F32", "I64", ...); -1 if unknown. */
int lt_st_dtype_from_name(const char *name, size_t len, lt_st_dtype *dtype);

typedef struct lt_st_entry {
    char *name;               /* NUL-terminated (a name may hold NUL bytes: use name_len) */
    size_t name_len;
    lt_st_dtype dtype;
    int ndim;                 /* 0 for a scalar (shape []) */
    int64_t shape[LT_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;      /* byte range in the data section */
} lt_st_entry;

typedef struct lt_st_meta {
    char *key, *value;
    size_t key_len, value_len;
} lt_st_meta;

typedef struct lt_st_file {
    lt_st_entry *entries;     /* in the order of their data */
    size_t num_entries;
    lt_st_meta *meta;         /* __metadata__, in header order */
    size_t num_meta;
    const uint8_t *data;      /* the data section: points into the buffer given to lt_st_parse */
    size_t data_len;
} lt_st_file;

/* Parses and validates a whole file held in buf[0..len); f borrows buf for f->data. f must be freed
 * with lt_st_free, also after a failure. */
int lt_st_parse(lt_st_file *f, const uint8_t *buf, size_t len, lt_error *err);
/* The steps of lt_st_parse, for readers that do not hold the whole file: checks the 8-byte header
 * length n against the file's length, and parses the n header bytes for a data section of data_len
 * bytes (f->data stays NULL). */
int lt_st_check_header_length(uint64_t n, uint64_t file_len, lt_error *err);
int lt_st_parse_header(lt_st_file *f, const char *header, size_t n, size_t data_len, lt_error *err);
void lt_st_free(lt_st_file *f);
/* Converts an entry's elements to float32 (out holds entry->numel floats). Integers beyond 2^24 and
 * F64 values lose precision as float32 does. */
void lt_st_to_float(float *out, const lt_st_file *f, const lt_st_entry *entry);
/* The same for n elements of dtype at raw. */
void lt_st_convert(float *out, const uint8_t *raw, lt_st_dtype dtype, int64_t n);

/* Reading a file tensor by tensor, straight into the caller's memory (no copy of the whole file):
 * lt_st_open reads and validates the header; lt_st_read fills out with an entry's values as float32. */
typedef struct lt_st_reader {
    int fd;                   /* -1 when closed */
    char *path;
    uint64_t data_start;      /* file offset of the data section */
    lt_st_file file;
} lt_st_reader;

int lt_st_open(lt_st_reader *r, const char *path, lt_error *err);
int lt_st_read(lt_st_reader *r, const lt_st_entry *entry, float *out, lt_error *err);
void lt_st_close(lt_st_reader *r);

/* One tensor to write. */
typedef struct lt_st_write_entry {
    const char *name;
    size_t name_len;
    lt_st_dtype dtype;           /* the values are converted from float32; integer dtypes need integral values */
    bool scalar;              /* write shape [] (the tensor must hold one element) */
    const lt_tensor *tensor;
} lt_st_write_entry;

/* Writes the entries (sorted here by name; the array is reordered) and the metadata atomically to
 * path. Names must be unique, non-empty, valid UTF-8 and not "__metadata__"; metadata keys and values
 * valid UTF-8. */
int lt_st_save(const char *path, lt_st_write_entry *entries, size_t count, const lt_st_meta *meta, size_t num_meta,
               lt_error *err);

#endif
