/* A small strict JSON parser (RFC 8259) for file headers such as safetensors'. Strict means: one value
 * with optional surrounding whitespace, no trailing commas, no comments, strings of valid UTF-8 without
 * raw control characters, no duplicate keys in an object, nesting at most LT_JSON_MAX_DEPTH deep.
 * Made to be fed untrusted bytes (it has a fuzz target through the safetensors parser). */
#ifndef LT_JSON_H
#define LT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytebuf.h"
#include "../base/error.h"

#define LT_JSON_MAX_DEPTH 64

typedef enum lt_json_type {
    LT_JSON_NULL, LT_JSON_FALSE, LT_JSON_TRUE, LT_JSON_NUMBER, LT_JSON_STRING, LT_JSON_ARRAY, LT_JSON_OBJECT
} lt_json_type;

typedef struct lt_json lt_json;
struct lt_json {
    lt_json_type type;
    /* Object members carry their key (decoded, NUL-terminated; may hold NUL from \u0000). */
    char *key;
    size_t key_len;
    /* LT_JSON_NUMBER: the value; is_integer when written without fraction or exponent and it fits
     * in int64 (then `integer` is exact). */
    double number;
    bool is_integer;
    int64_t integer;
    /* LT_JSON_STRING: decoded UTF-8, NUL-terminated. */
    char *string;
    size_t string_len;
    /* LT_JSON_ARRAY / LT_JSON_OBJECT: the elements or members, in document order. */
    lt_json *items;
    size_t count;
};

/* Parses text[0..len) into *out (freed with lt_json_free, also after a failure). Errors say what
 * was expected and at which byte offset. */
int lt_json_parse(lt_json *out, const char *text, size_t len, lt_error *err);
void lt_json_free(lt_json *v);

const char *lt_json_type_name(lt_json_type type);

/* True if s[0..len) is valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
bool lt_utf8_valid(const char *s, size_t len);
/* Appends s as a JSON string literal with quotes and escapes. s must be valid UTF-8. */
void lt_json_write_string(lt_bytebuf *out, const char *s, size_t len);

#endif
