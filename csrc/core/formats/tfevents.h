/* TensorBoard event files (events.out.tfevents.*): a sequence of TFRecords
 *   uint64 length | uint32 masked_crc32c(length bytes) | data[length] | uint32 masked_crc32c(data)
 * (little-endian), each data a serialized tensorflow.Event protobuf:
 *   Event { double wall_time = 1; int64 step = 2; oneof { string file_version = 3; Summary summary = 5; }
 *           SourceMetadata source_metadata = 10 { string writer = 1; } }
 *   Summary { repeated Value value = 1 { string tag = 1; float simple_value = 2; SummaryMetadata metadata = 9; } }
 *   SummaryMetadata { PluginData plugin_data = 1 { string plugin_name = 1; bytes content = 2; } }
 * The encoders write what PyTorch's SummaryWriter writes for the same calls (add_scalar, and the three
 * summaries of torch.utils.tensorboard.summary.hparams that TensorBoard's HPARAMS tab reads). */
#ifndef LT_TFEVENTS_H
#define LT_TFEVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytebuf.h"
#include "../base/error.h"

/* CRC-32C (Castagnoli), and TFRecord's masking of it. */
uint32_t lt_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t lt_crc32c_masked(const void *data, size_t len);

/* Appends one framed record holding payload. */
void lt_tfrecord_append(lt_bytebuf *out, const void *payload, size_t len);

/* ---- Event encoders (append one serialized Event to out) ---- */
/* The first event of every file: file_version "brain.Event:2", source_metadata.writer. */
void lt_event_file_version(lt_bytebuf *out, double wall_time, const char *writer);
void lt_event_scalar(lt_bytebuf *out, double wall_time, int64_t step, const char *tag, size_t tag_len, float value);

typedef enum lt_hparam_type { LT_HPARAM_NUMBER, LT_HPARAM_STRING, LT_HPARAM_BOOL } lt_hparam_type;
typedef struct lt_hparam {
    const char *name;
    size_t name_len;
    lt_hparam_type type;
    double number;
    const char *string;
    size_t string_len;
    bool boolean;
} lt_hparam;

/* The HPARAMS plugin's three events, one in each buffer: the experiment (hparam names and types,
 * metric tags), the session start (hparam values) and the session end (status success). Hparams go out
 * in the given order. */
void lt_event_hparams(lt_bytebuf *experiment, lt_bytebuf *session_start, lt_bytebuf *session_end, double wall_time,
                      const lt_hparam *hparams, size_t num_hparams, const char *const *metric_tags,
                      const size_t *metric_tag_lens, size_t num_metrics);

/* ---- the writer ---- */
/* Records are queued in memory and appended to the file (whole records, so a crash never damages
 * earlier ones) when max_queue records wait or flush_secs passed since the last write, and on
 * lt_event_writer_flush (which also fsyncs). PyTorch's defaults: 10 records, 120 s. */
typedef struct lt_event_writer {
    int fd;              /* -1 when closed */
    char *path;
    lt_bytebuf queue;    /* framed records not yet written */
    int queued;
    int max_queue;
    double flush_secs;
    double last_write;   /* monotonic seconds */
} lt_event_writer;

/* Creates path (it must not exist) and writes the file-version event to it at once. */
int lt_event_writer_open(lt_event_writer *w, const char *path, double wall_time, lt_error *err);
/* Queues one serialized Event. */
int lt_event_writer_add(lt_event_writer *w, const uint8_t *event, size_t len, lt_error *err);
int lt_event_writer_flush(lt_event_writer *w, lt_error *err);
/* Flushes and closes; the writer can be closed twice. */
int lt_event_writer_close(lt_event_writer *w, lt_error *err);

/* Seconds since the epoch (the events' wall_time) and on a monotonic clock. */
double lt_wall_time(void);
double lt_monotonic_time(void);

#endif
