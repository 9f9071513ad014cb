/* The hostile battery, the shared key-value store: a guest that fills it without end, with large
 * values or with small entries, is refused at kv.max_mb with an error naming it, the host's memory
 * stays bounded, and listing every key of a full store is refused rather than built. */
#include "hostile/hostile.h"

#include <stdio.h>
#include <stdlib.h>

#include "test.h"

#define KV_FULL "the key-value store is full (kv.max_mb = 16)"

TEST_TIMEOUT(hostile_kv_flood, 180)
{
    th_server s;
    /* a CPU budget that lets a loop of small writes reach the limit on a loaded machine */
    hz_start(&s, HZ_MEMORY_CASES_CFG "kv {\n  max_mb: 16\n}\n", NULL);
    hz_case big = {.label = "kv store filled with 1 MiB values", .method = "GET",
                   .path = "/kv/flood/1048576", .want_status = 500, .want_body = KV_FULL,
                   .repeats = 2};
    hz_attack(&s, &big);
    th_resp r;
    CHECK_EQ(hz_call(s.port, "GET", "/kv/clear/1048576", NULL, 0, &r, NULL), 200);
    int cleared = atoi(r.body);
    th_resp_free(&r);
    test_report("1 MiB values: %d stored before the store refused one (16 MiB limit)", cleared);
    CHECK(cleared >= 14 && cleared <= 16);
    hz_case small = {.label = "kv store filled with 16-byte values", .method = "GET",
                     .path = "/kv/flood/16", .want_status = 500, .want_body = KV_FULL,
                     .repeats = 1};
    hz_attack(&s, &small);
    hz_case list = {.label = "every key of a full store listed", .method = "GET",
                    .path = "/kv/list", .want_status = 500,
                    .want_body = "more than 10000 keys or 4 MiB of keys start with this prefix",
                    .repeats = 2};
    hz_attack(&s, &list);
    CHECK_EQ(hz_call(s.port, "GET", "/kv/clear/16", NULL, 0, &r, NULL), 200);
    test_report("16-byte values: %s entries stored before the store refused one", r.body);
    CHECK(atoi(r.body) > 100000);
    th_resp_free(&r);
    CHECK_EQ(th_server_stop(&s), 0);
}
