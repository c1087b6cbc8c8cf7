/* The library's own compute threads (OpenMP). OpenBLAS runs single-threaded inside them (blas.c sets
 * it so when it loads the library): one pool governs all compute, so BLAS and our loops never fight
 * over the cores. This file depends on nothing else in the core. */
#ifndef LT_PARALLEL_H
#define LT_PARALLEL_H

#include <stdint.h>

/* Loops shorter than this many elements stay on one thread: starting a team costs microseconds. */
#define LT_PARALLEL_GRAIN 32768

/* The threads asked for (L.set_num_threads; OpenMP's default until then). */
int lt_get_num_threads(void);
void lt_set_num_threads(int n);

/* The team a loop gets now: lt_get_num_threads(), or fewer while other processes keep the CPUs this
 * process may use busy (measured every quarter second on Linux, from /proc/stat and this process's CPU
 * time; LIGHTNING_ADAPT_THREADS=0 turns it off). A team larger than the free cores waits at every
 * barrier for a member the scheduler has not run: oneDNN's barriers spin without end, so two threads
 * sharing a core with another process trained 2-5x slower than one (a bf16 weight gradient took 30x as
 * long). Also sets the calling thread's OpenMP count to it (oneDNN makes its primitives for that
 * count), unless the caller set another. */
int lt_threads_now(void);

/* The team for `requested` threads on `cpus` CPUs of which other processes keep `others` busy (in
 * CPUs): the free ones, rounded, from 1 to requested. */
int lt_threads_fit(int requested, int cpus, double others);

/* The one rule for how many threads a loop gets: the team (lt_threads_now) when it has at least
 * `grain` units of work (elements, multiply-adds) and does not already run inside a parallel region
 * (teams are not nested), one thread otherwise. */
int lt_threads_for(int64_t n, int64_t grain);

/* This thread's number in the team running it (0 outside a parallel region). */
int lt_thread_num(void);

/* Results do not depend on the thread count. Work whose result depends on how it is cut (a sum; a
 * matrix product, whose OpenBLAS rounding depends on the shape of each call) is cut into parts fixed
 * by its sizes alone: threads take whole parts, and the parts' results are added in part order. The
 * thread count then only decides who computes a part, never what a part is. */
#define LT_MAX_PARTS 16

/* How many parts `units` units of work are cut into when each part should have at least `min_units`:
 * a power of two (so that 2, 4, 8 or 16 threads share the parts evenly), 1 to LT_MAX_PARTS. */
static inline int lt_parts_for(int64_t units, int64_t min_units) {
    if (min_units < 1) min_units = 1;
    int parts = 1;
    while (parts < LT_MAX_PARTS && units / (2 * parts) >= min_units) parts *= 2;
    return parts;
}

/* The threads for `parts` parts of `work` units: lt_threads_for's, and no more than the parts. */
static inline int lt_threads_for_parts(int64_t parts, int64_t work, int64_t grain) {
    int threads = lt_threads_for(work, grain);
    return threads < parts ? threads : (int)(parts > 0 ? parts : 1);
}

/* Splits [0, n) into `parts` nearly equal ranges; range p is [*begin, *end). */
static inline void lt_split_range(int64_t n, int64_t parts, int64_t p, int64_t *begin, int64_t *end) {
    int64_t base = n / parts, extra = n % parts;
    *begin = p * base + (p < extra ? p : extra);
    *end = *begin + base + (p < extra ? 1 : 0);
}

#endif
