/* Devices and their backends: the one place that decides where a tensor's memory comes from and which
 * table of implementations an operation on it runs.
 *
 * The host is built in. A GPU is a backend module (lightning/cuda.so, built from csrc/cuda/ where nvcc
 * is found) that the core loads with dlopen the first time a device tensor is asked for, through the
 * interface of backend_api.h. When it cannot be loaded (built without CUDA, no driver, no device, a
 * library missing) every call that needs it fails with the same reason, and the host goes on working. */
#ifndef LT_BACKEND_H
#define LT_BACKEND_H

#include <stdbool.h>

#include "backend_api.h"
#include "tensor_storage.h"

/* "cpu" or "cuda:0". */
const char *lt_device_name(lt_device d);
/* "cpu"; "cuda", "cuda:0" or "gpu" (Lightning's alias). Other indices are refused: one GPU a process. */
int lt_device_parse(const char *name, lt_device *d, lt_error *err);

/* The backend of a device, loaded (and its device initialised) on first use; NULL with err set when it
 * cannot be. Never called for the host, which has no backend module. */
const lt_backend_api *lt_backend(lt_device d, lt_error *err);
/* Whether the device can be used; when not, why (the message lt_backend would fail with). Loads the
 * module when it is not loaded yet, and counts devices. */
bool lt_device_available(lt_device d, lt_error *why);
/* Devices of that type present: 1 for the host; 0 (why set) when the backend cannot be loaded. */
int lt_device_count(lt_device d, lt_error *why);

/* Which of the machine's GPUs is this process's device d (its "cuda:0"): LIGHTNING_CUDA_DEVICE, or under
 * mpirun the local rank modulo the GPUs, or 0; 0 for the host. Valid once the backend loaded. */
int lt_device_index(lt_device d);

/* Where storages on d get their memory: the host's allocator, or the backend's pool. */
const lt_allocator *lt_device_allocator(lt_device d, lt_error *err);

/* Called once when device memory runs out, before the allocation is tried again: the bindings run
 * Lua's full collection there, which frees the storages of unreachable tensors. */
void lt_set_out_of_memory_hook(void (*hook)(void *ud), void *ud);

/* PyTorch's sync debug mode: what an operation that makes the host wait for a device does. Such
 * operations read results back (item, totable, :cpu(), printing, a metric's counts, a gradient norm,
 * SyncBatchNorm's sums); an explicit synchronize is not one of them. A training step that reads
 * nothing back never waits, so the host queues the next step while the GPU computes this one (and a
 * CUDA graph can capture it). */
typedef enum lt_sync_debug_mode { LT_SYNC_DEBUG_DEFAULT, LT_SYNC_DEBUG_WARN, LT_SYNC_DEBUG_ERROR } lt_sync_debug_mode;
void lt_set_sync_debug_mode(lt_sync_debug_mode mode);
lt_sync_debug_mode lt_get_sync_debug_mode(void);
/* Where mode warn reports (the bindings print the warning; the core never prints). */
void lt_set_sync_warning_hook(void (*hook)(void *ud, const char *what), void *ud);
/* Called before `what` makes the host wait for device d: 0 to go on (after the warning in mode warn),
 * -1 with err set in mode error. Nothing for the host. */
int lt_device_sync_point(lt_device d, const char *what, lt_error *err);

/* CUDA graphs (graph.h makes them): whether a capture of device d's work is going on (never for the
 * host), and its start and end, which keep that answer. */
bool lt_device_capturing(lt_device d);
int lt_device_capture_begin(lt_device d, lt_error *err);
int lt_device_capture_end(lt_device d, void **handle, lt_error *err);  /* the backend's graph; ends it anyway */
/* 0, or -1 with "<what> cannot be captured in a CUDA graph (<why>)" while d is capturing. */
int lt_refuse_in_capture(lt_device d, const char *what, const char *why, lt_error *err);

/* Seeds every device's generator (PyTorch's torch.manual_seed seeds the GPUs too): a loaded backend's now,
 * one loaded later when it loads. Loads nothing. */
void lt_manual_seed_devices(uint64_t seed);

/* Device d's generator (its dropout's) as the backend's text, and set again from such text (refused while
 * a CUDA graph is captured): what a checkpoint keeps of a GPU's random state. */
int lt_device_get_rng_state(lt_device d, char out[LT_BACKEND_RNG_STATE_LEN], lt_error *err);
int lt_device_set_rng_state(lt_device d, const char *state, lt_error *err);

/* Waits until device d has done everything asked of it (refused while a CUDA graph is captured). */
int lt_device_synchronize(lt_device d, lt_error *err);

/* The implementations of operation `op` on device d, NULL-terminated, tried in order as the core's
 * tables are; NULL with err set when the backend has none ("maxpool2d has no implementation on cuda:0"). */
const void *const *lt_backend_impls(lt_device d, const char *op, lt_error *err);

#endif
