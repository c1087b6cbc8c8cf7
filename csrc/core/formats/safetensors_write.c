/* Writing safetensors files (the reader, which needs no tensors, is in safetensors.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"
#include "../base/checked.h"
#include "../base/fileio.h"
#include "json.h"
#include "safetensors.h"

static uint32_t float_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static float bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Round to nearest, ties to even, as PyTorch's .half() does. */
static uint16_t float_to_half(float f) {
    uint32_t x = float_to_bits(f), sign = x >> 16 & 0x8000, a = x & 0x7fffffff;
    if (a > 0x7f800000) return (uint16_t)(sign | 0x7e00);         /* nan */
    if (a >= 0x477ff000) return (uint16_t)(sign | 0x7c00);        /* >= 65520 rounds to inf */
    if (a < 0x38800000) {                                          /* below 2^-14: subnormal or zero */
        long m = lrintf(bits_to_float(a) * 0x1p24f);               /* exact scaling, then round */
        return (uint16_t)(sign | (uint32_t)m);
    }
    uint32_t h = ((a >> 23) - 112) << 10 | (a & 0x7fffff) >> 13, rest = a & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;         /* a carry moves into the exponent */
    return (uint16_t)(sign | h);
}

static uint16_t float_to_bf16(float f) {
    uint32_t x = float_to_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)(x >> 16 | 0x40);  /* keep nan a nan */
    return (uint16_t)((x + 0x7fff + (x >> 16 & 1)) >> 16);
}

static int compare_write_names(const void *a, const void *b) {
    const lt_st_write_entry *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int check_entries(lt_st_write_entry *entries, size_t count, const lt_st_meta *meta, size_t num_meta, lt_error *err) {
    size_t total = 0, bytes;  /* the data section, whose offsets the header holds */
    for (size_t i = 0; i < count; i++) {
        const lt_st_write_entry *e = &entries[i];
        if (!lt_bytes_ok(lt_numel(e->tensor), lt_st_dtype_size(e->dtype), &bytes) || !lt_size_add_ok(total, bytes, &total))
            return lt_fail(err, "the tensors hold more bytes than a file can address");
        if (!lt_utf8_valid(e->name, e->name_len)) return lt_fail(err, "tensor name \"%.200s\" is not valid UTF-8", e->name);
        if (e->name_len == 12 && memcmp(e->name, "__metadata__", 12) == 0)
            return lt_fail(err, "\"__metadata__\" is reserved and cannot name a tensor");
        if (e->scalar && lt_numel(e->tensor) != 1)
            return lt_fail(err, "tensor \"%.200s\" is marked scalar but holds %lld elements", e->name, (long long)lt_numel(e->tensor));
    }
    for (size_t i = 1; i < count; i++)
        if (compare_write_names(&entries[i - 1], &entries[i]) == 0)
            return lt_fail(err, "two tensors are named \"%.200s\"", entries[i].name);
    for (size_t i = 0; i < num_meta; i++) {
        if (!lt_utf8_valid(meta[i].key, meta[i].key_len)) return lt_fail(err, "metadata key \"%.200s\" is not valid UTF-8", meta[i].key);
        if (!lt_utf8_valid(meta[i].value, meta[i].value_len))
            return lt_fail(err, "metadata value of \"%.200s\" is not valid UTF-8", meta[i].key);
    }
    return 0;
}

static void write_header(lt_bytebuf *h, const lt_st_write_entry *entries, size_t count, const lt_st_meta *meta, size_t num_meta) {
    lt_bytebuf_putc(h, '{');
    if (num_meta) {
        lt_bytebuf_puts(h, "\"__metadata__\":{");
        for (size_t i = 0; i < num_meta; i++) {
            if (i) lt_bytebuf_putc(h, ',');
            lt_json_write_string(h, meta[i].key, meta[i].key_len);
            lt_bytebuf_putc(h, ':');
            lt_json_write_string(h, meta[i].value, meta[i].value_len);
        }
        lt_bytebuf_putc(h, '}');
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        const lt_st_write_entry *e = &entries[i];
        if (i || num_meta) lt_bytebuf_putc(h, ',');
        lt_json_write_string(h, e->name, e->name_len);
        lt_bytebuf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", lt_st_dtype_name(e->dtype));
        for (int d = 0; !e->scalar && d < e->tensor->ndim; d++) lt_bytebuf_printf(h, d ? ",%lld" : "%lld", (long long)e->tensor->size[d]);
        uint64_t bytes = (uint64_t)lt_numel(e->tensor) * lt_st_dtype_size(e->dtype);
        lt_bytebuf_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset, (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    lt_bytebuf_putc(h, '}');
    while (h->len % 8) lt_bytebuf_putc(h, ' ');  /* the data then starts 8-byte aligned, as Python's writer does */
}

/* Range of integral values each integer dtype holds, as doubles (exact powers of two). */
static int check_integral(const lt_st_write_entry *e, float v, lt_error *err) {
    double lo, hi;  /* allowed: lo <= v < hi */
    switch (e->dtype) {
    case LT_DTYPE_I64: lo = -0x1p63, hi = 0x1p63; break;
    case LT_DTYPE_I32: lo = -0x1p31, hi = 0x1p31; break;
    case LT_DTYPE_I16: lo = -0x1p15, hi = 0x1p15; break;
    case LT_DTYPE_I8: lo = -0x1p7, hi = 0x1p7; break;
    case LT_DTYPE_U64: lo = 0, hi = 0x1p64; break;
    case LT_DTYPE_U32: lo = 0, hi = 0x1p32; break;
    case LT_DTYPE_U16: lo = 0, hi = 0x1p16; break;
    case LT_DTYPE_U8: lo = 0, hi = 0x1p8; break;
    case LT_DTYPE_BOOL: lo = 0, hi = 2; break;
    default: return 0;
    }
    double d = v;
    if (d != d) return lt_fail(err, "tensor \"%.200s\" holds NaN, which dtype %s cannot represent", e->name, lt_st_dtype_name(e->dtype));
    if (!(d >= lo && d < hi) || d != floor(d))
        return lt_fail(err, "tensor \"%.200s\" holds %g, which dtype %s cannot represent", e->name, d, lt_st_dtype_name(e->dtype));
    return 0;
}

static int encode_values(uint8_t *out, const lt_st_write_entry *e, const float *x, int64_t n, lt_error *err) {
    size_t size = lt_st_dtype_size(e->dtype);
    for (int64_t i = 0; i < n; i++) {
        uint8_t *p = out + size * (size_t)i;
        if (check_integral(e, x[i], err)) return -1;
        switch (e->dtype) {
        case LT_DTYPE_F64: {
            double d = x[i];
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            lt_store_le64(p, bits);
            break;
        }
        case LT_DTYPE_F32: lt_store_le32(p, float_to_bits(x[i])); break;
        case LT_DTYPE_F16: lt_store_le16(p, float_to_half(x[i])); break;
        case LT_DTYPE_BF16: lt_store_le16(p, float_to_bf16(x[i])); break;
        case LT_DTYPE_I64: lt_store_le64(p, (uint64_t)(int64_t)x[i]); break;
        case LT_DTYPE_I32: lt_store_le32(p, (uint32_t)(int32_t)x[i]); break;
        case LT_DTYPE_I16: lt_store_le16(p, (uint16_t)(int16_t)x[i]); break;
        case LT_DTYPE_I8: p[0] = (uint8_t)(int8_t)x[i]; break;
        case LT_DTYPE_U64: lt_store_le64(p, (uint64_t)x[i]); break;
        case LT_DTYPE_U32: lt_store_le32(p, (uint32_t)x[i]); break;
        case LT_DTYPE_U16: lt_store_le16(p, (uint16_t)x[i]); break;
        case LT_DTYPE_U8: case LT_DTYPE_BOOL: p[0] = (uint8_t)x[i]; break;
        default: break;
        }
    }
    return 0;
}

/* Streams one tensor's values through a fixed-size conversion buffer. */
static int write_tensor(lt_atomic_file *file, const lt_st_write_entry *e, uint8_t *chunk, int64_t chunk_elems, lt_error *err) {
    lt_tensor c = {0};
    if (lt_contiguous(&c, e->tensor, err)) return -1;
    int64_t n = lt_numel(&c);
    const float *x = n ? lt_data(&c) : NULL;
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i += chunk_elems) {
        int64_t m = n - i < chunk_elems ? n - i : chunk_elems;
        rc = encode_values(chunk, e, x + i, m, err);
        if (!rc) rc = lt_atomic_write(file, chunk, (size_t)m * lt_st_dtype_size(e->dtype), err);
    }
    lt_tensor_release(&c);
    return rc;
}

int lt_st_save(const char *path, lt_st_write_entry *entries, size_t count, const lt_st_meta *meta, size_t num_meta, lt_error *err) {
    if (count > 1) qsort(entries, count, sizeof *entries, compare_write_names);
    lt_error why;
    if (check_entries(entries, count, meta, num_meta, &why)) return lt_fail(err, "cannot write %s: %s", path, why.msg);

    lt_bytebuf header = {0};
    lt_bytebuf_append(&header, "\0\0\0\0\0\0\0\0", 8);  /* the length, filled in below */
    write_header(&header, entries, count, meta, num_meta);
    enum { CHUNK = 1 << 14 };
    uint8_t *chunk = malloc(CHUNK * 8);
    if (header.failed || !chunk) {
        lt_bytebuf_free(&header);
        free(chunk);
        return lt_fail(err, "out of memory writing %s", path);
    }
    lt_store_le64(header.data, (uint64_t)(header.len - 8));

    lt_atomic_file file;
    int rc = lt_atomic_open(&file, path, err);
    if (!rc) rc = lt_atomic_write(&file, header.data, header.len, err);
    for (size_t i = 0; i < count && !rc; i++) {
        rc = write_tensor(&file, &entries[i], chunk, CHUNK, &why);
        if (rc && file.fd >= 0) lt_fail(err, "cannot write %s: %s", path, why.msg);
        else if (rc && err) *err = why;  /* the write itself failed; its message names the file */
    }
    if (!rc) rc = lt_atomic_commit(&file, err);
    else lt_atomic_abort(&file);
    lt_bytebuf_free(&header);
    free(chunk);
    return rc;
}
