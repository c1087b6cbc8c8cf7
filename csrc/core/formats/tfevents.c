#define _POSIX_C_SOURCE 200809L
#include "tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/fileio.h"

/* ---- CRC-32C and record framing ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void build_crc_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78u ^ (c >> 1) : c >> 1;  /* reflected Castagnoli */
        crc_table[i] = c;
    }
}

uint32_t lt_crc32c(uint32_t crc, const void *data, size_t len) {
    pthread_once(&crc_table_once, build_crc_table);
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t lt_crc32c_masked(const void *data, size_t len) {
    uint32_t crc = lt_crc32c(0, data, len);
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void lt_tfrecord_append(lt_bytebuf *out, const void *payload, size_t len) {
    uint8_t head[12];
    lt_store_le64(head, (uint64_t)len);
    lt_store_le32(head + 8, lt_crc32c_masked(head, 8));
    lt_bytebuf_append(out, head, sizeof head);
    lt_bytebuf_append(out, payload, len);
    uint8_t tail[4];
    lt_store_le32(tail, lt_crc32c_masked(payload, len));
    lt_bytebuf_append(out, tail, sizeof tail);
}

/* ---- protobuf wire format: just what the events need ---- */

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };

static void pb_varint(lt_bytebuf *b, uint64_t v) {
    uint8_t buf[10];
    size_t n = 0;
    do {
        buf[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    lt_bytebuf_append(b, buf, n);
}

static void pb_key(lt_bytebuf *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void pb_double(lt_bytebuf *b, int field, double v) {
    uint64_t bits;
    uint8_t buf[8];
    memcpy(&bits, &v, sizeof bits);
    lt_store_le64(buf, bits);
    pb_key(b, field, WIRE_FIXED64);
    lt_bytebuf_append(b, buf, 8);
}

static void pb_float(lt_bytebuf *b, int field, float v) {
    uint32_t bits;
    uint8_t buf[4];
    memcpy(&bits, &v, sizeof bits);
    lt_store_le32(buf, bits);
    pb_key(b, field, WIRE_FIXED32);
    lt_bytebuf_append(b, buf, 4);
}

/* int64 and enums: negative values take ten bytes (two's complement), as protobuf encodes them. */
static void pb_int(lt_bytebuf *b, int field, int64_t v) {
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, (uint64_t)v);
}

static void pb_bytes(lt_bytebuf *b, int field, const void *data, size_t len) {
    pb_key(b, field, WIRE_BYTES);
    pb_varint(b, len);
    lt_bytebuf_append(b, data, len);
}

static void pb_string(lt_bytebuf *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

/* Appends msg as a length-delimited field and empties msg for reuse. */
static void pb_message(lt_bytebuf *b, int field, lt_bytebuf *msg) {
    if (msg->failed) b->failed = true;
    pb_bytes(b, field, msg->data, msg->len);
    lt_bytebuf_clear(msg);
}

/* ---- events ---- */

enum {
    EVENT_WALL_TIME = 1, EVENT_STEP = 2, EVENT_FILE_VERSION = 3, EVENT_SUMMARY = 5, EVENT_SOURCE_METADATA = 10,
    SUMMARY_VALUE = 1,
    VALUE_TAG = 1, VALUE_SIMPLE_VALUE = 2, VALUE_METADATA = 9,
    METADATA_PLUGIN_DATA = 1, PLUGIN_NAME = 1, PLUGIN_CONTENT = 2,
};

/* Event{wall_time, step, summary{value}}: step 0 is left out, as proto3 leaves out default values. */
static void summary_event(lt_bytebuf *out, double wall_time, int64_t step, lt_bytebuf *value) {
    lt_bytebuf summary = {0};
    pb_message(&summary, SUMMARY_VALUE, value);
    pb_double(out, EVENT_WALL_TIME, wall_time);
    if (step != 0) pb_int(out, EVENT_STEP, step);
    pb_message(out, EVENT_SUMMARY, &summary);
    lt_bytebuf_free(&summary);
}

void lt_event_file_version(lt_bytebuf *out, double wall_time, const char *writer) {
    pb_double(out, EVENT_WALL_TIME, wall_time);
    pb_string(out, EVENT_FILE_VERSION, "brain.Event:2");
    lt_bytebuf source = {0};
    pb_string(&source, 1, writer);
    pb_message(out, EVENT_SOURCE_METADATA, &source);
    lt_bytebuf_free(&source);
}

void lt_event_scalar(lt_bytebuf *out, double wall_time, int64_t step, const char *tag, size_t tag_len, float value) {
    lt_bytebuf v = {0};
    pb_bytes(&v, VALUE_TAG, tag, tag_len);
    pb_float(&v, VALUE_SIMPLE_VALUE, value);
    summary_event(out, wall_time, step, &v);
    lt_bytebuf_free(&v);
}

/* tensorboard/plugins/hparams: api.proto and plugin_data.proto. */
enum {
    PLUGIN_DATA_EXPERIMENT = 2, PLUGIN_DATA_SESSION_START = 3, PLUGIN_DATA_SESSION_END = 4,
    EXPERIMENT_HPARAM_INFOS = 4, EXPERIMENT_METRIC_INFOS = 5,
    HPARAM_INFO_NAME = 1, HPARAM_INFO_TYPE = 4,
    METRIC_INFO_NAME = 1, METRIC_NAME_TAG = 2,
    SESSION_START_HPARAMS = 1, MAP_KEY = 1, MAP_VALUE = 2,
    VALUE_NUMBER = 2, VALUE_STRING = 3, VALUE_BOOL = 4,   /* google.protobuf.Value */
    SESSION_END_STATUS = 1, STATUS_SUCCESS = 1,
    DATA_TYPE_STRING = 1, DATA_TYPE_BOOL = 2, DATA_TYPE_FLOAT64 = 3,
};

/* Event{wall_time, summary{value{tag, metadata{plugin_data{"hparams", content}}}}} where content is
 * HParamsPluginData{version 0 (left out), <field>: message}. */
static void hparams_event(lt_bytebuf *out, double wall_time, const char *tag, int field, lt_bytebuf *message) {
    lt_bytebuf content = {0}, plugin = {0}, metadata = {0}, value = {0};
    pb_message(&content, field, message);
    pb_string(&plugin, PLUGIN_NAME, "hparams");
    pb_message(&plugin, PLUGIN_CONTENT, &content);
    pb_message(&metadata, METADATA_PLUGIN_DATA, &plugin);
    pb_string(&value, VALUE_TAG, tag);
    pb_message(&value, VALUE_METADATA, &metadata);
    summary_event(out, wall_time, 0, &value);
    lt_bytebuf_free(&content);
    lt_bytebuf_free(&plugin);
    lt_bytebuf_free(&metadata);
    lt_bytebuf_free(&value);
}

void lt_event_hparams(lt_bytebuf *experiment, lt_bytebuf *session_start, lt_bytebuf *session_end, double wall_time,
                      const lt_hparam *hparams, size_t num_hparams, const char *const *metric_tags,
                      const size_t *metric_tag_lens, size_t num_metrics) {
    lt_bytebuf msg = {0}, item = {0}, inner = {0};

    for (size_t i = 0; i < num_hparams; i++) {
        const lt_hparam *h = &hparams[i];
        pb_bytes(&item, HPARAM_INFO_NAME, h->name, h->name_len);
        pb_int(&item, HPARAM_INFO_TYPE, h->type == LT_HPARAM_STRING ? DATA_TYPE_STRING
                                        : h->type == LT_HPARAM_BOOL ? DATA_TYPE_BOOL : DATA_TYPE_FLOAT64);
        pb_message(&msg, EXPERIMENT_HPARAM_INFOS, &item);
    }
    for (size_t i = 0; i < num_metrics; i++) {
        pb_bytes(&inner, METRIC_NAME_TAG, metric_tags[i], metric_tag_lens[i]);
        pb_message(&item, METRIC_INFO_NAME, &inner);
        pb_message(&msg, EXPERIMENT_METRIC_INFOS, &item);
    }
    hparams_event(experiment, wall_time, "_hparams_/experiment", PLUGIN_DATA_EXPERIMENT, &msg);

    for (size_t i = 0; i < num_hparams; i++) {  /* map<string, google.protobuf.Value>: repeated {key, value} */
        const lt_hparam *h = &hparams[i];
        if (h->type == LT_HPARAM_STRING) pb_bytes(&inner, VALUE_STRING, h->string, h->string_len);
        else if (h->type == LT_HPARAM_BOOL) pb_int(&inner, VALUE_BOOL, h->boolean);
        else pb_double(&inner, VALUE_NUMBER, h->number);
        pb_bytes(&item, MAP_KEY, h->name, h->name_len);
        pb_message(&item, MAP_VALUE, &inner);
        pb_message(&msg, SESSION_START_HPARAMS, &item);
    }
    hparams_event(session_start, wall_time, "_hparams_/session_start_info", PLUGIN_DATA_SESSION_START, &msg);

    pb_int(&msg, SESSION_END_STATUS, STATUS_SUCCESS);
    hparams_event(session_end, wall_time, "_hparams_/session_end_info", PLUGIN_DATA_SESSION_END, &msg);

    lt_bytebuf_free(&msg);
    lt_bytebuf_free(&item);
    lt_bytebuf_free(&inner);
}

/* ---- the writer ---- */

double lt_wall_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double lt_monotonic_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int write_queue(lt_event_writer *w, lt_error *err) {
    if (w->queue.failed) {
        lt_bytebuf_clear(&w->queue);
        w->queued = 0;
        return lt_fail(err, "out of memory queueing events for %s", w->path);
    }
    int rc = lt_write_all(w->fd, w->queue.data, w->queue.len, w->path, err);
    lt_bytebuf_clear(&w->queue);
    w->queued = 0;
    w->last_write = lt_monotonic_time();
    return rc;
}

int lt_event_writer_open(lt_event_writer *w, const char *path, double wall_time, lt_error *err) {
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->max_queue = 10;
    w->flush_secs = 120;
    size_t n = strlen(path) + 1;
    if (!(w->path = malloc(n))) return lt_fail(err, "out of memory");
    memcpy(w->path, path, n);
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        int e = errno;
        free(w->path);
        w->path = NULL;
        return lt_fail(err, "cannot create %s: %s", path, LT_STRERROR(e));
    }
    lt_bytebuf event = {0};
    lt_event_file_version(&event, wall_time, "lightning");
    lt_tfrecord_append(&w->queue, event.data, event.len);
    lt_bytebuf_free(&event);
    if (write_queue(w, err)) {
        lt_event_writer_close(w, NULL);
        return -1;
    }
    return 0;
}

int lt_event_writer_add(lt_event_writer *w, const uint8_t *event, size_t len, lt_error *err) {
    if (w->fd < 0) return lt_fail(err, "the event file is closed");
    lt_tfrecord_append(&w->queue, event, len);
    w->queued++;
    if (w->queued >= w->max_queue || lt_monotonic_time() - w->last_write >= w->flush_secs) return write_queue(w, err);
    return 0;
}

int lt_event_writer_flush(lt_event_writer *w, lt_error *err) {
    if (w->fd < 0) return lt_fail(err, "the event file is closed");
    if (write_queue(w, err)) return -1;
    if (fsync(w->fd) != 0 && errno != EINVAL) return lt_fail(err, "cannot flush %s: %s", w->path, LT_STRERROR(errno));
    return 0;
}

int lt_event_writer_close(lt_event_writer *w, lt_error *err) {
    if (w->fd < 0) return 0;
    int rc = lt_event_writer_flush(w, err);
    if (close(w->fd) != 0 && !rc) rc = lt_fail(err, "cannot close %s: %s", w->path, LT_STRERROR(errno));
    w->fd = -1;
    lt_bytebuf_free(&w->queue);
    free(w->path);
    w->path = NULL;
    return rc;
}
