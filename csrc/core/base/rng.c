#include "rng.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static lt_rng global_rng = {{0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull, 0x94d049bb133111ebull, 0x2545f4914f6cdd1dull}, 0, false};

lt_rng *lt_rng_global(void) { return &global_rng; }

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void lt_rng_seed(lt_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_cached = false;
    r->cached_normal = 0;
}

void lt_rng_seed_stream(lt_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed;
    uint64_t mixed = splitmix64(&x) ^ (stream * 0xd1342543de82ef95ull + 0x632be59bd9b4e019ull);
    lt_rng_seed(r, mixed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lt_rng_u64(lt_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double lt_rng_uniform(lt_rng *r) { return (double)(lt_rng_u64(r) >> 11) * 0x1.0p-53; }

double lt_rng_normal(lt_rng *r) {
    if (r->has_cached) {
        r->has_cached = false;
        return r->cached_normal;
    }
    double u1 = 1.0 - lt_rng_uniform(r);  /* (0, 1]: log stays finite */
    double u2 = lt_rng_uniform(r);
    double radius = sqrt(-2.0 * log(u1));
    double angle = 6.283185307179586 * u2;
    r->cached_normal = radius * sin(angle);
    r->has_cached = true;
    return radius * cos(angle);
}

uint64_t lt_rng_below(lt_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;  /* reject the short last block */
    uint64_t x;
    do x = lt_rng_u64(r);
    while (x >= limit);
    return x % n;
}

void lt_rng_get_state(const lt_rng *r, char out[LT_RNG_STATE_LEN]) {
    uint64_t cached;
    memcpy(&cached, &r->cached_normal, sizeof cached);
    snprintf(out, LT_RNG_STATE_LEN, "xoshiro256ss:%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%d%016" PRIx64,
             r->s[0], r->s[1], r->s[2], r->s[3], r->has_cached ? 1 : 0, r->has_cached ? cached : 0);
}

static int parse_hex64(const char *p, uint64_t *v) {
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return 0;
}

int lt_rng_set_state(lt_rng *r, const char *state, lt_error *err) {
    static const char prefix[] = "xoshiro256ss:";
    size_t plen = sizeof prefix - 1;
    if (strncmp(state, prefix, plen) != 0 || strlen(state) != plen + 4 * 16 + 1 + 16)
        return lt_fail(err, "expected a state string from get_rng_state (\"xoshiro256ss:\" and %d hex digits)", 4 * 16 + 17);
    const char *p = state + plen;
    lt_rng tmp;
    for (int i = 0; i < 4; i++)
        if (parse_hex64(p + 16 * i, &tmp.s[i])) return lt_fail(err, "the state string has a character that is not a hex digit");
    char flag = p[64];
    uint64_t cached;
    if ((flag != '0' && flag != '1') || parse_hex64(p + 65, &cached))
        return lt_fail(err, "the state string is malformed after the generator words");
    if (!(tmp.s[0] | tmp.s[1] | tmp.s[2] | tmp.s[3])) return lt_fail(err, "an all-zero state is not valid");
    tmp.has_cached = flag == '1';
    memcpy(&tmp.cached_normal, &cached, sizeof cached);
    *r = tmp;
    return 0;
}
