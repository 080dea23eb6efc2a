/* rng.c: xoshiro256** seeded through splitmix64; the model's stream for init and shuffling. */
#include "../internal.h"

static uint64_t global_seed = 1337;

void kc_set_random_seed(uint64_t seed) {
    global_seed = seed;
}
uint64_t kc_default_seed(void) { return global_seed; }

void kc_rng_seed(kc_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = kc_mix64(seed + (uint64_t)i * 0x632be59bd9b4e019ull);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t kc_rng_next(kc_rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float kc_rng_uniform(kc_rng *r) { return (float)(kc_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

uint64_t kc_rng_below(kc_rng *r, uint64_t n) {
    /* rejection sampling: drop the top partial range so every value is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = kc_rng_next(r); while (x >= limit);
    return x % n;
}
