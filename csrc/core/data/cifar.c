#include "cifar.h"

#include <string.h>

int lt_cifar_parse_batch(const uint8_t *buf, size_t len, const char *name, int64_t expected_records, uint8_t *pixels,
                         int32_t *targets, int64_t *records, lt_error *err) {
    if (expected_records > 0 && len != (size_t)expected_records * LT_CIFAR_RECORD_BYTES) {
        size_t want = (size_t)expected_records * LT_CIFAR_RECORD_BYTES;
        return lt_fail(err, "%s is %zu bytes, expected %zu (%lld records of %d bytes): the file is %s", name, len, want,
                       (long long)expected_records, LT_CIFAR_RECORD_BYTES,
                       len < want ? "truncated" : "longer than a CIFAR-10 batch");
    }
    if (len == 0 || len % LT_CIFAR_RECORD_BYTES != 0)
        return lt_fail(err, "%s is %zu bytes, not a whole number of %d-byte CIFAR-10 records", name, len, LT_CIFAR_RECORD_BYTES);
    int64_t n = (int64_t)(len / LT_CIFAR_RECORD_BYTES);
    for (int64_t r = 0; r < n; r++) {  /* each record: label, then the image */
        const uint8_t *rec = buf + (size_t)r * LT_CIFAR_RECORD_BYTES;
        if (rec[0] >= LT_CIFAR_CLASSES)
            return lt_fail(err, "%s: record %lld has label %d, expected 0 to 9 (the file is corrupt or not a CIFAR-10 batch)",
                           name, (long long)r + 1, rec[0]);
        targets[r] = rec[0];
        memcpy(pixels + (size_t)r * LT_CIFAR_IMAGE_BYTES, rec + 1, LT_CIFAR_IMAGE_BYTES);
    }
    *records = n;
    return 0;
}

int lt_cifar_parse_meta(const char *text, size_t len, const char *name, char names[LT_CIFAR_CLASSES][LT_CIFAR_NAME_MAX],
                        lt_error *err) {
    int count = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        size_t line_len = end - pos;
        if (line_len > 0 && text[pos + line_len - 1] == '\r') line_len--;
        if (line_len > 0) {
            if (count == LT_CIFAR_CLASSES)
                return lt_fail(err, "%s lists more than %d class names", name, LT_CIFAR_CLASSES);
            if (line_len >= LT_CIFAR_NAME_MAX)
                return lt_fail(err, "%s: line %d is %zu characters long, expected a class name", name, count + 1, line_len);
            for (size_t i = 0; i < line_len; i++) {
                unsigned char c = (unsigned char)text[pos + i];
                if (c < 32 || c == 127)
                    return lt_fail(err, "%s: line %d holds a control character (byte %d), expected a class name", name, count + 1, c);
            }
            memcpy(names[count], text + pos, line_len);
            names[count][line_len] = '\0';
            count++;
        } else {
            /* a blank line: only trailing ones are allowed */
            size_t rest = end;
            while (rest < len && (text[rest] == '\n' || text[rest] == '\r' || text[rest] == ' ')) rest++;
            if (rest < len) return lt_fail(err, "%s has a blank line among the class names", name);
        }
        pos = end + 1;
    }
    if (count != LT_CIFAR_CLASSES) return lt_fail(err, "%s lists %d class names, expected %d", name, count, LT_CIFAR_CLASSES);
    return 0;
}
