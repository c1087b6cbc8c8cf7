#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const unsigned char *text;
    size_t len, pos;
    lt_error *err;
} parser;

/* "'x'", "byte 0x07" or "the end of the input", for error messages. */
static const char *describe_at(const parser *ps, size_t pos, char *buf, size_t size) {
    if (pos >= ps->len) return "the end of the input";
    unsigned char c = ps->text[pos];
    if (c >= 0x20 && c < 0x7f) snprintf(buf, size, "'%c'", c);
    else snprintf(buf, size, "byte 0x%02x", c);
    return buf;
}

static int fail_expected(parser *ps, const char *expected) {
    char buf[16];
    return lt_fail(ps->err, "JSON syntax error at byte %zu: expected %s, got %s", ps->pos, expected,
                   describe_at(ps, ps->pos, buf, sizeof buf));
}

static void skip_whitespace(parser *ps) {
    while (ps->pos < ps->len) {
        unsigned char c = ps->text[ps->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        ps->pos++;
    }
}

/* Length of the valid UTF-8 sequence at s (avail bytes left), or 0 if it is not valid. */
static size_t utf8_sequence(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
    else return 0;
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;  /* overlong, too large */
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;                                          /* surrogate */
    return n;
}

bool lt_utf8_valid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence(u + i, len - i);
        if (!n) return false;
        i += n;
    }
    return true;
}

static size_t encode_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xc0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hex4(parser *ps, size_t at, uint32_t *value) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        if (at + i >= ps->len) { ps->pos = at + i; return fail_expected(ps, "4 hexadecimal digits after \\u"); }
        unsigned char c = ps->text[at + i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) { ps->pos = at + i; return fail_expected(ps, "4 hexadecimal digits after \\u"); }
        v = v << 4 | (uint32_t)d;
    }
    *value = v;
    return 0;
}

/* Parses the string literal at pos (which holds '"') into a new NUL-terminated buffer. Decoding
 * never makes a string longer than its literal, so the literal's length bounds the allocation. */
static int parse_string(parser *ps, char **out, size_t *out_len) {
    size_t start = ++ps->pos, end = start;
    while (end < ps->len && ps->text[end] != '"') end += ps->text[end] == '\\' ? 2 : 1;
    if (end >= ps->len) return lt_fail(ps->err, "JSON syntax error at byte %zu: unterminated string", start - 1);
    char *s = malloc(end - start + 1);
    if (!s) return lt_fail(ps->err, "out of memory parsing JSON");
    size_t n = 0;
    while (ps->pos < end) {
        unsigned char c = ps->text[ps->pos];
        if (c < 0x20) {
            free(s);
            return lt_fail(ps->err, "JSON syntax error at byte %zu: control character 0x%02x in a string (escape it)", ps->pos, c);
        }
        if (c >= 0x80) {
            size_t len = utf8_sequence(ps->text + ps->pos, end - ps->pos);
            if (!len) {
                free(s);
                return lt_fail(ps->err, "JSON syntax error at byte %zu: invalid UTF-8 in a string", ps->pos);
            }
            memcpy(s + n, ps->text + ps->pos, len);
            n += len;
            ps->pos += len;
            continue;
        }
        if (c != '\\') { s[n++] = (char)c; ps->pos++; continue; }
        unsigned char e = ps->text[ps->pos + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            s[n++] = decoded[simple - "\"\\/bfnrt"];
            ps->pos += 2;
            continue;
        }
        if (e != 'u') {
            ps->pos++;
            free(s);
            return fail_expected(ps, "an escape character (one of \"\\/bfnrtu)");
        }
        uint32_t cp = 0;
        if (hex4(ps, ps->pos + 2, &cp)) { free(s); return -1; }
        size_t consumed = 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {  /* a high surrogate must be followed by \u + low surrogate */
            uint32_t low = 0;
            if (ps->pos + 7 < ps->len && ps->text[ps->pos + 6] == '\\' && ps->text[ps->pos + 7] == 'u') {
                if (hex4(ps, ps->pos + 8, &low)) { free(s); return -1; }
            }
            if (low < 0xdc00 || low > 0xdfff) {
                free(s);
                return lt_fail(ps->err, "JSON syntax error at byte %zu: \\u%04x is a high surrogate without a low surrogate after it", ps->pos, (unsigned)cp);
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            consumed = 12;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            free(s);
            return lt_fail(ps->err, "JSON syntax error at byte %zu: \\u%04x is a low surrogate without a high surrogate before it", ps->pos, (unsigned)cp);
        }
        n += encode_utf8(s + n, cp);
        ps->pos += consumed;
    }
    s[n] = '\0';
    ps->pos = end + 1;
    *out = s;
    *out_len = n;
    return 0;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *ps, lt_json *v) {
    size_t start = ps->pos, p = ps->pos;
    const unsigned char *t = ps->text;
    bool negative = p < ps->len && t[p] == '-';
    if (negative) p++;
    if (p >= ps->len || !is_digit(t[p])) { ps->pos = p; return fail_expected(ps, "a digit"); }
    if (t[p] == '0') p++;
    else while (p < ps->len && is_digit(t[p])) p++;
    size_t int_end = p;
    bool integral = true;
    if (p < ps->len && t[p] == '.') {
        integral = false;
        p++;
        if (p >= ps->len || !is_digit(t[p])) { ps->pos = p; return fail_expected(ps, "a digit after the decimal point"); }
        while (p < ps->len && is_digit(t[p])) p++;
    }
    if (p < ps->len && (t[p] == 'e' || t[p] == 'E')) {
        integral = false;
        p++;
        if (p < ps->len && (t[p] == '+' || t[p] == '-')) p++;
        if (p >= ps->len || !is_digit(t[p])) { ps->pos = p; return fail_expected(ps, "a digit in the exponent"); }
        while (p < ps->len && is_digit(t[p])) p++;
    }
    v->type = LT_JSON_NUMBER;
    ps->pos = p;
    if (integral) {
        /* exact integer arithmetic: offsets in file headers go beyond 2^53 in principle */
        uint64_t u = 0, limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        bool fits = true;
        for (size_t i = negative ? start + 1 : start; i < int_end; i++) {
            unsigned d = t[i] - '0';
            if (u > (limit - d) / 10) { fits = false; break; }
            u = u * 10 + d;
        }
        if (fits) {
            v->is_integer = true;
            v->integer = negative ? (u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u) : (int64_t)u;
            v->number = (double)v->integer;
            return 0;
        }
    }
    char small[64], *copy = small;
    size_t n = p - start;
    if (n >= sizeof small && !(copy = malloc(n + 1))) return lt_fail(ps->err, "out of memory parsing JSON");
    memcpy(copy, t + start, n);
    copy[n] = '\0';
    v->number = strtod(copy, NULL);
    if (copy != small) free(copy);
    return 0;
}

static int parse_value(parser *ps, lt_json *v, int depth);

/* Appends a zeroed element to v->items and returns it (NULL when out of memory). */
static lt_json *push_item(parser *ps, lt_json *v, size_t *cap) {
    if (v->count == *cap) {
        size_t new_cap = *cap ? *cap * 2 : 4;
        lt_json *items = realloc(v->items, new_cap * sizeof *items);
        if (!items) { lt_fail(ps->err, "out of memory parsing JSON"); return NULL; }
        v->items = items;
        *cap = new_cap;
    }
    lt_json *item = &v->items[v->count++];
    memset(item, 0, sizeof *item);
    return item;
}

static int compare_keys(const void *a, const void *b) {
    const lt_json *x = *(const lt_json *const *)a, *y = *(const lt_json *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Sorting (n log n) rather than comparing pairs: headers can hold many thousands of keys. */
static int check_duplicate_keys(parser *ps, const lt_json *object) {
    if (object->count < 2) return 0;
    const lt_json **sorted = malloc(object->count * sizeof *sorted);
    if (!sorted) return lt_fail(ps->err, "out of memory parsing JSON");
    for (size_t i = 0; i < object->count; i++) sorted[i] = &object->items[i];
    qsort(sorted, object->count, sizeof *sorted, compare_keys);
    int rc = 0;
    for (size_t i = 1; i < object->count && !rc; i++)
        if (compare_keys(&sorted[i - 1], &sorted[i]) == 0)
            rc = lt_fail(ps->err, "JSON error: duplicate key \"%.200s\" in an object", sorted[i]->key);
    free(sorted);
    return rc;
}

static int parse_container(parser *ps, lt_json *v, int depth, bool object) {
    size_t open = ps->pos++;
    unsigned char close = object ? '}' : ']';
    v->type = object ? LT_JSON_OBJECT : LT_JSON_ARRAY;
    size_t cap = 0;
    skip_whitespace(ps);
    if (ps->pos < ps->len && ps->text[ps->pos] == close) { ps->pos++; return 0; }
    for (;;) {
        lt_json *item = push_item(ps, v, &cap);
        if (!item) return -1;
        if (object) {
            if (ps->pos >= ps->len || ps->text[ps->pos] != '"') return fail_expected(ps, v->count == 1 ? "a string key or '}'" : "a string key");
            if (parse_string(ps, &item->key, &item->key_len)) return -1;
            skip_whitespace(ps);
            if (ps->pos >= ps->len || ps->text[ps->pos] != ':') return fail_expected(ps, "':' after an object key");
            ps->pos++;
            skip_whitespace(ps);
        }
        if (parse_value(ps, item, depth + 1)) return -1;
        skip_whitespace(ps);
        if (ps->pos < ps->len && ps->text[ps->pos] == ',') {
            ps->pos++;
            skip_whitespace(ps);
            continue;
        }
        if (ps->pos < ps->len && ps->text[ps->pos] == close) { ps->pos++; break; }
        if (ps->pos >= ps->len)
            return lt_fail(ps->err, "JSON syntax error: the %s opened at byte %zu is not closed", object ? "object" : "array", open);
        return fail_expected(ps, object ? "',' or '}' after an object member" : "',' or ']' after an array element");
    }
    return object ? check_duplicate_keys(ps, v) : 0;
}

static int parse_literal(parser *ps, lt_json *v, const char *word, lt_json_type type) {
    size_t n = strlen(word);
    if (ps->len - ps->pos < n || memcmp(ps->text + ps->pos, word, n) != 0) return fail_expected(ps, "a JSON value");
    v->type = type;
    ps->pos += n;
    return 0;
}

static int parse_value(parser *ps, lt_json *v, int depth) {
    if (depth > LT_JSON_MAX_DEPTH)
        return lt_fail(ps->err, "JSON error at byte %zu: nested more than %d levels deep", ps->pos, LT_JSON_MAX_DEPTH);
    if (ps->pos >= ps->len) return fail_expected(ps, "a JSON value");
    switch (ps->text[ps->pos]) {
    case '{': return parse_container(ps, v, depth, true);
    case '[': return parse_container(ps, v, depth, false);
    case '"': v->type = LT_JSON_STRING; return parse_string(ps, &v->string, &v->string_len);
    case 't': return parse_literal(ps, v, "true", LT_JSON_TRUE);
    case 'f': return parse_literal(ps, v, "false", LT_JSON_FALSE);
    case 'n': return parse_literal(ps, v, "null", LT_JSON_NULL);
    default:
        if (ps->text[ps->pos] != '-' && !is_digit(ps->text[ps->pos])) return fail_expected(ps, "a JSON value");
        return parse_number(ps, v);
    }
}

int lt_json_parse(lt_json *out, const char *text, size_t len, lt_error *err) {
    memset(out, 0, sizeof *out);
    parser ps = {(const unsigned char *)text, len, 0, err};
    skip_whitespace(&ps);
    if (parse_value(&ps, out, 1)) return -1;
    skip_whitespace(&ps);
    if (ps.pos < ps.len) return fail_expected(&ps, "the end of the input after the JSON value");
    return 0;
}

void lt_json_free(lt_json *v) {
    if (!v) return;
    for (size_t i = 0; i < v->count; i++) {
        free(v->items[i].key);
        lt_json_free(&v->items[i]);
    }
    free(v->items);
    free(v->string);
    v->items = NULL;
    v->string = NULL;
    v->count = 0;
}

const char *lt_json_type_name(lt_json_type type) {
    static const char *names[] = {"null", "false", "true", "a number", "a string", "an array", "an object"};
    return names[type];
}

void lt_json_write_string(lt_bytebuf *out, const char *s, size_t len) {
    lt_bytebuf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            lt_bytebuf_putc(out, '\\');
            lt_bytebuf_putc(out, c);
        } else if (c < 0x20) {
            lt_bytebuf_printf(out, "\\u%04x", c);
        } else {
            lt_bytebuf_putc(out, c);
        }
    }
    lt_bytebuf_putc(out, '"');
}
