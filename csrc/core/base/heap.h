/* Returning the C heap's free memory to the system (see heap.c). */
#ifndef LT_HEAP_H
#define LT_HEAP_H

#include <stddef.h>

/* Freed bytes of tensor storage after which the heap's free memory goes back to the system. */
#define LT_HEAP_TRIM_BYTES ((size_t)64 << 20)

/* The tensor allocator's free: frees p and, once LT_HEAP_TRIM_BYTES have been freed since the last
 * time, gives the free pages of the C heap back to the system. */
void lt_heap_free(void *p);

#endif
