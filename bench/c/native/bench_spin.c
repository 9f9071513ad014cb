/* bench/c/native/bench_spin.c: GET /cpu's loop compiled natively for the host (-O2), timed per call:
 * the floor for the compiled component's /cpu (its handler runs the same loop translated from
 * WebAssembly, with the CPU budget's counter on the loop's back edge). Prints microseconds per
 * call, the median of 9 runs of 2,000 calls. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../spin.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    double runs[9];
    uint32_t sink = 0;
    for (int r = 0; r < 9; r++) {
        double t0 = now_us();
        for (int i = 0; i < 2000; i++) sink += bench_spin(BENCH_SPIN_ITERATIONS);
        runs[r] = (now_us() - t0) / 2000;
    }
    qsort(runs, 9, sizeof *runs, cmp);
    printf("native GET /cpu loop: %.2f us per call (median of 9; %u)\n", runs[4], sink);
    return 0;
}
