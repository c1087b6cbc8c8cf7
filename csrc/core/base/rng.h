/* The random generator: xoshiro256** seeded through splitmix64. One global generator serves
 * initialisation, dropout and shuffling (called from the Lua thread only, in order, so the same seed gives
 * the same numbers at every thread count); workers derive their own generators from (seed, counters). */
#ifndef LT_RNG_H
#define LT_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct lt_rng {
    uint64_t s[4];
    double cached_normal;  /* Box-Muller makes two numbers; the second waits here */
    bool has_cached;
} lt_rng;

lt_rng *lt_rng_global(void);
void lt_rng_seed(lt_rng *r, uint64_t seed);
/* A generator for stream `stream` under `seed` (for example one per sample and epoch). */
void lt_rng_seed_stream(lt_rng *r, uint64_t seed, uint64_t stream);
uint64_t lt_rng_u64(lt_rng *r);
double lt_rng_uniform(lt_rng *r);            /* [0, 1), 53 bits */
double lt_rng_normal(lt_rng *r);             /* mean 0, standard deviation 1 */
uint64_t lt_rng_below(lt_rng *r, uint64_t n); /* uniform in [0, n), unbiased; n > 0 */

/* The state as text ("xoshiro256ss:" then hex) so it fits JSON and checkpoint metadata. */
#define LT_RNG_STATE_LEN 96
void lt_rng_get_state(const lt_rng *r, char out[LT_RNG_STATE_LEN]);
int lt_rng_set_state(lt_rng *r, const char *state, lt_error *err);

#endif
