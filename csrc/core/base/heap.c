/* glibc's malloc serves blocks below its mmap threshold from its heaps (one per thread that
 * allocates, OpenMP's included) and keeps them when they are freed. The threshold starts at 128 KiB
 * but rises to the size of every mmapped block that is freed, up to 32 MiB; from then on a program
 * whose buffers change size with its input (a layer over many image sizes: each size its own
 * activations, gradients and oneDNN buffers) leaves its heaps full of free blocks of the wrong sizes,
 * and resident memory grows with the number of sizes seen: 8.9 GB after four passes of one
 * convolution over 300 sizes whose largest needs 0.3 GB (issue 24).
 *
 * malloc_trim gives the free pages inside the heaps back (glibc 2.8 on), so after every
 * LT_HEAP_TRIM_BYTES of freed tensor storage the heaps are trimmed. The other cure, a fixed mmap
 * threshold (MALLOC_MMAP_THRESHOLD_=262144), bounds memory as well but maps and zeroes every large
 * block afresh: a loop that makes a new 4 MB tensor each time ran 35x slower (2.8 ms against
 * 0.08 ms a tensor); trimmed, it runs at 0.26 ms. A training step, whose layers keep their buffers,
 * frees little and trims rarely. */
#include "heap.h"

#include <stdatomic.h>
#include <stdlib.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

static _Atomic size_t freed_since_trim;

void lt_heap_free(void *p) {
#ifdef __GLIBC__
    size_t bytes = malloc_usable_size(p);
    free(p);
    if (atomic_fetch_add(&freed_since_trim, bytes) + bytes >= LT_HEAP_TRIM_BYTES) {
        atomic_store(&freed_since_trim, 0);
        malloc_trim(0);
    }
#else
    free(p);
#endif
}
