/* bench/c/spin.h: GET /cpu's loop (xorshift32, as bench/app/index.ts's spin()), shared by the
 * compiled component (main.c) and the native build (native/bench_spin.c). */
#ifndef TRAIL_BENCH_C_SPIN_H
#define TRAIL_BENCH_C_SPIN_H

#include <stdint.h>

#define BENCH_SPIN_ITERATIONS 20000

static inline uint32_t bench_spin(int n)
{
    volatile uint32_t seed = 2463534242u; /* the compiler must not fold the loop away */
    uint32_t x = seed;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
    }
    return x;
}

#endif
