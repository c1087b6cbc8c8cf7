/* Reading safetensors files, and the dtypes (the writer is in safetensors_write.c). */
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"
#include "../base/checked.h"
#include "json.h"

/* ---- dtypes ---- */

static const struct { const char *name; size_t size; } dtypes[LT_DTYPE_COUNT] = {
    [LT_DTYPE_F64] = {"F64", 8}, [LT_DTYPE_F32] = {"F32", 4}, [LT_DTYPE_F16] = {"F16", 2},
    [LT_DTYPE_BF16] = {"BF16", 2}, [LT_DTYPE_I64] = {"I64", 8}, [LT_DTYPE_I32] = {"I32", 4},
    [LT_DTYPE_I16] = {"I16", 2}, [LT_DTYPE_I8] = {"I8", 1}, [LT_DTYPE_U64] = {"U64", 8},
    [LT_DTYPE_U32] = {"U32", 4}, [LT_DTYPE_U16] = {"U16", 2}, [LT_DTYPE_U8] = {"U8", 1},
    [LT_DTYPE_BOOL] = {"BOOL", 1},
};

const char *lt_st_dtype_name(lt_st_dtype dtype) { return dtypes[dtype].name; }
size_t lt_st_dtype_size(lt_st_dtype dtype) { return dtypes[dtype].size; }

int lt_st_dtype_from_name(const char *name, size_t len, lt_st_dtype *dtype) {
    for (int i = 0; i < LT_DTYPE_COUNT; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0) {
            *dtype = (lt_st_dtype)i;
            return 0;
        }
    return -1;
}

static float bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = h >> 10 & 0x1f, mantissa = h & 0x3ff;
    if (exponent == 0) {  /* zero or subnormal: mantissa * 2^-24 */
        float v = (float)mantissa * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exponent == 31) return bits_to_float(sign | 0x7f800000 | mantissa << 13);  /* inf, nan */
    return bits_to_float(sign | (exponent + 112) << 23 | mantissa << 13);
}

void lt_st_to_float(float *out, const lt_st_file *f, const lt_st_entry *e) {
    lt_st_convert(out, f->data + e->begin, e->dtype, e->numel);
}

void lt_st_convert(float *out, const uint8_t *p, lt_st_dtype dtype, int64_t n) {
    switch (dtype) {
    case LT_DTYPE_F64:
        for (int64_t i = 0; i < n; i++) {
            uint64_t bits = lt_load_le64(p + 8 * i);
            double d;
            memcpy(&d, &bits, sizeof d);
            out[i] = (float)d;
        }
        break;
    case LT_DTYPE_F32: for (int64_t i = 0; i < n; i++) out[i] = bits_to_float(lt_load_le32(p + 4 * i)); break;
    case LT_DTYPE_F16: for (int64_t i = 0; i < n; i++) out[i] = half_to_float(lt_load_le16(p + 2 * i)); break;
    case LT_DTYPE_BF16: for (int64_t i = 0; i < n; i++) out[i] = bits_to_float((uint32_t)lt_load_le16(p + 2 * i) << 16); break;
    case LT_DTYPE_I64: for (int64_t i = 0; i < n; i++) out[i] = (float)(int64_t)lt_load_le64(p + 8 * i); break;
    case LT_DTYPE_I32: for (int64_t i = 0; i < n; i++) out[i] = (float)(int32_t)lt_load_le32(p + 4 * i); break;
    case LT_DTYPE_I16: for (int64_t i = 0; i < n; i++) out[i] = (float)(int16_t)lt_load_le16(p + 2 * i); break;
    case LT_DTYPE_I8: for (int64_t i = 0; i < n; i++) out[i] = (float)(int8_t)p[i]; break;
    case LT_DTYPE_U64: for (int64_t i = 0; i < n; i++) out[i] = (float)lt_load_le64(p + 8 * i); break;
    case LT_DTYPE_U32: for (int64_t i = 0; i < n; i++) out[i] = (float)lt_load_le32(p + 4 * i); break;
    case LT_DTYPE_U16: for (int64_t i = 0; i < n; i++) out[i] = (float)lt_load_le16(p + 2 * i); break;
    case LT_DTYPE_U8: for (int64_t i = 0; i < n; i++) out[i] = (float)p[i]; break;
    case LT_DTYPE_BOOL: for (int64_t i = 0; i < n; i++) out[i] = p[i] ? 1.0f : 0.0f; break;
    default: break;
    }
}

/* ---- reading ---- */

void lt_st_free(lt_st_file *f) {
    for (size_t i = 0; i < f->num_entries; i++) free(f->entries[i].name);
    for (size_t i = 0; i < f->num_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->entries);
    free(f->meta);
    memset(f, 0, sizeof *f);
}

static char *take_key(lt_json *member) {
    char *k = member->key;
    member->key = NULL;
    return k;
}

static bool key_is(const lt_json *member, const char *key) {
    return member->key_len == strlen(key) && memcmp(member->key, key, member->key_len) == 0;
}

static int parse_metadata(lt_st_file *f, lt_json *object, lt_error *err) {
    if (object->type != LT_JSON_OBJECT)
        return lt_fail(err, "\"__metadata__\" must be an object of strings, got %s", lt_json_type_name(object->type));
    if (object->count && !(f->meta = calloc(object->count, sizeof *f->meta))) return lt_fail(err, "out of memory");
    for (size_t i = 0; i < object->count; i++) {
        lt_json *v = &object->items[i];
        if (v->type != LT_JSON_STRING)
            return lt_fail(err, "\"__metadata__\" value of \"%.200s\" must be a string, got %s", v->key, lt_json_type_name(v->type));
        lt_st_meta *m = &f->meta[f->num_meta++];
        m->key_len = v->key_len;
        m->key = take_key(v);
        m->value = v->string;
        m->value_len = v->string_len;
        v->string = NULL;
    }
    return 0;
}

/* A non-negative integer from JSON, or an error that names the tensor and the field. */
static int json_size(const lt_json *v, const char *tensor, const char *what, int64_t *out, lt_error *err) {
    if (v->type != LT_JSON_NUMBER || !v->is_integer || v->integer < 0)
        return lt_fail(err, "tensor \"%.200s\": %s must be non-negative integers", tensor, what);
    *out = v->integer;
    return 0;
}

static int parse_entry(lt_st_entry *e, lt_json *member, size_t data_len, lt_error *err) {
    e->name_len = member->key_len;
    e->name = take_key(member);
    const char *name = e->name;
    if (member->type != LT_JSON_OBJECT)
        return lt_fail(err, "tensor \"%.200s\": expected an object {dtype, shape, data_offsets}, got %s", name, lt_json_type_name(member->type));
    const lt_json *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (size_t i = 0; i < member->count; i++) {
        const lt_json *field = &member->items[i];
        if (key_is(field, "dtype")) dtype = field;
        else if (key_is(field, "shape")) shape = field;
        else if (key_is(field, "data_offsets")) offsets = field;
        else return lt_fail(err, "tensor \"%.200s\": unknown field \"%.100s\" (expected dtype, shape and data_offsets)", name, field->key);
    }
    if (!dtype || !shape || !offsets)
        return lt_fail(err, "tensor \"%.200s\": missing field \"%s\"", name, !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (dtype->type != LT_JSON_STRING) return lt_fail(err, "tensor \"%.200s\": dtype must be a string, got %s", name, lt_json_type_name(dtype->type));
    if (lt_st_dtype_from_name(dtype->string, dtype->string_len, &e->dtype))
        return lt_fail(err, "tensor \"%.200s\": unsupported dtype \"%.40s\" (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)", name, dtype->string);

    if (shape->type != LT_JSON_ARRAY) return lt_fail(err, "tensor \"%.200s\": shape must be an array, got %s", name, lt_json_type_name(shape->type));
    if (shape->count > LT_MAX_DIMS)
        return lt_fail(err, "tensor \"%.200s\": %zu dimensions; at most %d are supported", name, shape->count, LT_MAX_DIMS);
    e->ndim = (int)shape->count;
    for (int d = 0; d < e->ndim; d++)
        if (json_size(&shape->items[d], name, "shape sizes", &e->shape[d], err)) return -1;
    int64_t numel;
    size_t bytes;
    if (!lt_product_ok(e->ndim, e->shape, INT64_MAX, &numel) || !lt_bytes_ok(numel, lt_st_dtype_size(e->dtype), &bytes))
        return lt_fail(err, "tensor \"%.200s\": the shape is too large", name);
    e->numel = numel;

    if (offsets->type != LT_JSON_ARRAY || offsets->count != 2)
        return lt_fail(err, "tensor \"%.200s\": data_offsets must be an array [begin, end]", name);
    int64_t begin = 0, end = 0;
    if (json_size(&offsets->items[0], name, "data_offsets", &begin, err) ||
        json_size(&offsets->items[1], name, "data_offsets", &end, err)) return -1;
    if (begin > end) return lt_fail(err, "tensor \"%.200s\": data_offsets [%lld, %lld] end before they begin", name, (long long)begin, (long long)end);
    if ((uint64_t)end > data_len)
        return lt_fail(err, "tensor \"%.200s\": data_offsets [%lld, %lld] run past the end of the data (%zu bytes): the file is truncated or corrupt",
                       name, (long long)begin, (long long)end, data_len);
    if ((uint64_t)(end - begin) != bytes)
        return lt_fail(err, "tensor \"%.200s\": data_offsets [%lld, %lld] hold %lld bytes, but %s shape of %llu elements needs %llu",
                       name, (long long)begin, (long long)end, (long long)(end - begin), lt_st_dtype_name(e->dtype),
                       (unsigned long long)numel, (unsigned long long)bytes);
    e->begin = (uint64_t)begin;
    e->end = (uint64_t)end;
    return 0;
}

static int compare_offsets(const void *a, const void *b) {
    const lt_st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The tensors must tile the data section exactly: no overlap, no gap, nothing after the last. */
static int check_layout(const lt_st_file *f, lt_error *err) {
    uint64_t at = 0;
    const char *previous = NULL;
    for (size_t i = 0; i < f->num_entries; i++) {
        const lt_st_entry *e = &f->entries[i];
        if (e->begin < at)
            return lt_fail(err, "tensor \"%.200s\" (bytes %llu..%llu) overlaps tensor \"%.200s\"", e->name,
                           (unsigned long long)e->begin, (unsigned long long)e->end, previous);
        if (e->begin > at)
            return lt_fail(err, "bytes %llu..%llu of the data belong to no tensor (a hole before tensor \"%.200s\")",
                           (unsigned long long)at, (unsigned long long)e->begin, e->name);
        at = e->end;
        previous = e->name;
    }
    if (at != f->data_len)
        return lt_fail(err, "%llu bytes after the last tensor belong to no tensor", (unsigned long long)(f->data_len - at));
    return 0;
}

/* The 8-byte length: at most LT_ST_MAX_HEADER and within the file. */
int lt_st_check_header_length(uint64_t n, uint64_t file_len, lt_error *err) {
    if (file_len < 8)
        return lt_fail(err, "%llu bytes are too few for a safetensors file (it starts with an 8-byte header length)",
                       (unsigned long long)file_len);
    if (n > LT_ST_MAX_HEADER)
        return lt_fail(err, "the header length %llu exceeds the limit of %llu bytes: not a safetensors file, or a corrupt one",
                       (unsigned long long)n, (unsigned long long)LT_ST_MAX_HEADER);
    if (n > file_len - 8)
        return lt_fail(err, "the header (%llu bytes) runs past the end of the file (%llu bytes): the file is truncated",
                       (unsigned long long)n, (unsigned long long)file_len);
    return 0;
}

int lt_st_parse_header(lt_st_file *f, const char *header, size_t n, size_t data_len, lt_error *err) {
    memset(f, 0, sizeof *f);
    f->data_len = data_len;
    if (n == 0 || header[0] != '{') return lt_fail(err, "invalid header: it must start with '{'");
    lt_json root;
    lt_error json_err;
    if (lt_json_parse(&root, header, n, &json_err)) {
        lt_json_free(&root);
        return lt_fail(err, "invalid header: %s", json_err.msg);
    }
    int rc = 0;
    if (root.count && !(f->entries = calloc(root.count, sizeof *f->entries))) rc = lt_fail(err, "out of memory");
    for (size_t i = 0; i < root.count && !rc; i++) {
        lt_json *member = &root.items[i];
        if (key_is(member, "__metadata__")) rc = parse_metadata(f, member, err);
        else rc = parse_entry(&f->entries[f->num_entries++], member, f->data_len, err);
    }
    lt_json_free(&root);
    if (rc) return -1;
    if (f->num_entries > 1) qsort(f->entries, f->num_entries, sizeof *f->entries, compare_offsets);
    return check_layout(f, err);
}

int lt_st_parse(lt_st_file *f, const uint8_t *buf, size_t len, lt_error *err) {
    memset(f, 0, sizeof *f);
    uint64_t n = len >= 8 ? lt_load_le64(buf) : 0;
    if (lt_st_check_header_length(n, len, err)) return -1;
    if (lt_st_parse_header(f, (const char *)buf + 8, (size_t)n, len - 8 - (size_t)n, err)) return -1;
    f->data = buf + 8 + n;
    return 0;
}
