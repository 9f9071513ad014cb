/* bench/kv/bench_kv.c: `make bench-kv`: the shared key-value store's increments per second with
 * one thread and with two, each thread counting under its own key (as two workers' isolates
 * would). Two threads should do about twice what one does: the store has no global lock, and an
 * update of the same size touches nothing the threads share. Never pass/fail. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kv/kv.h"

#define INCREMENTS 2000000

static kv_store *store;

static void *run(void *arg)
{
    char key[32];
    snprintf(key, sizeof key, "bench-%ld", (long)(intptr_t)arg);
    tr_error err;
    int64_t n;
    for (int i = 0; i < INCREMENTS; i++) kv_increment(store, key, strlen(key), 1, 0, &n, &err);
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
    store = kv_store_new((size_t)64 << 20);
    double one = 0;
    for (int threads = 1; threads <= 2; threads++) {
        pthread_t t[2];
        double t0 = now();
        for (int i = 0; i < threads; i++)
            pthread_create(&t[i], NULL, run, (void *)(intptr_t)(i + 10 * threads));
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        double rate = threads * INCREMENTS / (now() - t0);
        if (threads == 1) one = rate;
        printf("kv increments, %d thread(s): %.1f M/s (%.0f ns each)%s", threads, rate / 1e6,
               threads / rate * 1e9, threads == 1 ? "\n" : "");
        if (threads == 2) printf("; %.2fx one thread\n", rate / one);
    }
    kv_store_free(store);
    return 0;
}
