/* A growable byte buffer for encoders (safetensors headers, protobuf events). An allocation failure
 * sets a sticky flag instead of returning an error from every append, so an encoder appends freely
 * and checks `failed` once at the end. */
#ifndef LT_BYTEBUF_H
#define LT_BYTEBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lt_bytebuf {
    uint8_t *data;
    size_t len, cap;
    bool failed;  /* an allocation failed; the contents are incomplete */
} lt_bytebuf;

void lt_bytebuf_append(lt_bytebuf *b, const void *data, size_t len);
void lt_bytebuf_putc(lt_bytebuf *b, uint8_t c);
void lt_bytebuf_puts(lt_bytebuf *b, const char *s);
void lt_bytebuf_printf(lt_bytebuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forgets the contents, keeps the memory. */
void lt_bytebuf_clear(lt_bytebuf *b);
void lt_bytebuf_free(lt_bytebuf *b);

/* Little-endian loads and stores, independent of the host's byte order. */
static inline uint16_t lt_load_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t lt_load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t lt_load_le64(const uint8_t *p) { return lt_load_le32(p) | (uint64_t)lt_load_le32(p + 4) << 32; }
static inline void lt_store_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void lt_store_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void lt_store_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

#endif
