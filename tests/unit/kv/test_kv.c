/* Tests for kv/kv.c: operations, the byte limit and what counts against it, expiry and its
 * reclaiming, and increments from several threads at once. */
#include "test.h"
#include "kv/kv.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define K(s) s, strlen(s)

static void check_value(kv_store *s, const char *key, const char *want)
{
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(kv_get(s, K(key), &b), want != NULL);
    if (want) CHECK_MEM_EQ(b.data, b.len, want);
    tr_buf_free(&b);
}

TEST(kv_set_get_delete_exists)
{
    kv_store *s = kv_store_new(1 << 20);
    tr_error err;
    check_value(s, "a", NULL);
    CHECK(!kv_exists(s, K("a")));
    CHECK_EQ(kv_set(s, K("a"), K("one"), 0, &err), 0);
    check_value(s, "a", "one");
    CHECK(kv_exists(s, K("a")));
    CHECK_EQ(kv_set(s, K("a"), K("a longer value"), 0, &err), 0);
    check_value(s, "a", "a longer value");
    CHECK_EQ(kv_set(s, K("empty"), "", 0, 0, &err), 0);
    check_value(s, "empty", "");
    CHECK_EQ(kv_delete(s, K("a")), 1);
    CHECK_EQ(kv_delete(s, K("a")), 0);
    check_value(s, "a", NULL);
    /* keys are bytes: a NUL inside is part of the key */
    CHECK_EQ(kv_set(s, "x\0y", 3, K("nul"), 0, &err), 0);
    CHECK(!kv_exists(s, K("x")));
    CHECK(kv_exists(s, "x\0y", 3));
    CHECK_EQ(kv_set(s, "", 0, K("v"), 0, &err), TR_EINVAL);
    CHECK_STR_EQ(err.msg, "a key must not be empty");
    char big[KV_MAX_KEY_BYTES + 1];
    memset(big, 'k', sizeof big);
    CHECK_EQ(kv_set(s, big, sizeof big, K("v"), 0, &err), TR_EINVAL);
    CHECK_EQ(kv_set(s, big, KV_MAX_KEY_BYTES, K("v"), 0, &err), 0);
    kv_store_free(s);
}

/* Thousands of keys: the tables grow and every key is still found. */
TEST(kv_many_keys)
{
    kv_store *s = kv_store_new(64 << 20);
    tr_error err;
    char key[32], val[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(val, sizeof val, "%d", i * 3);
        CHECK_EQ(kv_set(s, K(key), K(val), 0, &err), 0);
    }
    for (int i = 0; i < 20000; i += 7) {
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(val, sizeof val, "%d", i * 3);
        check_value(s, key, val);
    }
    size_t used = kv_used_bytes(s);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        CHECK_EQ(kv_delete(s, K(key)), 1);
    }
    CHECK(used > 20000 * KV_ENTRY_OVERHEAD);
    CHECK_EQ(kv_used_bytes(s), 0);
    kv_store_free(s);
}

TEST(kv_limit_counts_keys_values_and_overhead)
{
    size_t max = 10 * (KV_ENTRY_OVERHEAD + 2 + 100);
    kv_store *s = kv_store_new(max);
    tr_error err;
    char val[100];
    memset(val, 'v', sizeof val);
    char key[32];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_EQ(kv_set(s, K(key), val, sizeof val, 0, &err), 0);
    }
    CHECK_EQ(kv_used_bytes(s), max);
    CHECK_EQ(kv_set(s, K("k10"), val, sizeof val, 0, &err), TR_ELIMIT);
    CHECK_STR_EQ(err.msg, "the key-value store is full (kv.max_mb = 0)");
    CHECK(!kv_exists(s, K("k10")));
    /* replacing a value with one of the same size fits; a larger one does not, and the old one
     * stays */
    CHECK_EQ(kv_set(s, K("k3"), val, sizeof val, 0, &err), 0);
    CHECK_EQ(kv_set(s, K("k3"), val, sizeof val - 1, 0, &err), 0);
    CHECK_EQ(kv_set(s, K("k4"), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                    108, 0, &err),
             TR_ELIMIT);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(kv_get(s, K("k4"), &b), 1);
    CHECK_EQ(b.len, 100);
    tr_buf_free(&b);
    int64_t n;
    CHECK_EQ(kv_increment(s, K("counter"), 1, 0, &n, &err), TR_ELIMIT);
    CHECK_EQ(kv_delete(s, K("k0")), 1);
    CHECK_EQ(kv_increment(s, K("counter"), 1, 0, &n, &err), 0);
    kv_store_free(s);
}

TEST(kv_expiry_and_reclaiming)
{
    size_t per = KV_ENTRY_OVERHEAD + 2 + 1000;
    kv_store *s = kv_store_new(5 * per);
    tr_error err;
    char val[1000];
    memset(val, 'v', sizeof val);
    char key[32];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "t%d", i);
        CHECK_EQ(kv_set(s, K(key), val, sizeof val, 50, &err), 0);
    }
    CHECK(kv_exists(s, K("t0")));
    usleep(120 * 1000);
    /* expired entries are gone for every reader at once */
    CHECK(!kv_exists(s, K("t1")));
    check_value(s, "t2", NULL);
    /* and a full store reclaims them before refusing a write: five new entries fit where the
     * five expired ones were, a sixth does not */
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "n%d", i);
        CHECK_EQ(kv_set(s, K(key), val, sizeof val, 0, &err), 0);
    }
    CHECK_EQ(kv_used_bytes(s), 5 * per);
    CHECK_EQ(kv_set(s, K("n5"), val, sizeof val, 0, &err), TR_ELIMIT);
    /* a TTL of 0 never expires */
    usleep(60 * 1000);
    CHECK(kv_exists(s, K("n0")) && kv_exists(s, K("n4")));
    kv_store_free(s);
}

TEST(kv_increment_semantics)
{
    kv_store *s = kv_store_new(1 << 20);
    tr_error err;
    int64_t n = 0;
    CHECK_EQ(kv_increment(s, K("c"), 5, 0, &n, &err), 0);
    CHECK_EQ(n, 5);
    CHECK_EQ(kv_increment(s, K("c"), -7, 0, &n, &err), 0);
    CHECK_EQ(n, -2);
    check_value(s, "c", "-2");
    CHECK_EQ(kv_set(s, K("c"), K("40"), 0, &err), 0);
    CHECK_EQ(kv_increment(s, K("c"), 2, 0, &n, &err), 0);
    CHECK_EQ(n, 42);
    CHECK_EQ(kv_set(s, K("t"), K("4x"), 0, &err), 0);
    CHECK_EQ(kv_increment(s, K("t"), 1, 0, &n, &err), TR_EINVAL);
    CHECK_STR_EQ(err.msg, "the value under this key is not an integer");
    check_value(s, "t", "4x");
    CHECK_EQ(kv_set(s, K("big"), K("9007199254740990"), 0, &err), 0);
    CHECK_EQ(kv_increment(s, K("big"), 1, 0, &n, &err), 0);
    CHECK_EQ(n, 9007199254740991ll);
    CHECK_EQ(kv_increment(s, K("big"), 1, 0, &n, &err), TR_EINVAL);
    check_value(s, "big", "9007199254740991");
    /* a window: the TTL is set when the counter is made, not moved by later increments */
    CHECK_EQ(kv_increment(s, K("w"), 1, 60, &n, &err), 0);
    usleep(30 * 1000);
    CHECK_EQ(kv_increment(s, K("w"), 1, 60000, &n, &err), 0);
    CHECK_EQ(n, 2);
    usleep(60 * 1000);
    CHECK_EQ(kv_increment(s, K("w"), 1, 60, &n, &err), 0);
    CHECK_EQ(n, 1);
    kv_store_free(s);
}

static void count_key(void *arg, const void *key, size_t klen)
{
    (void)key;
    (void)klen;
    (*(int *)arg)++;
}

TEST(kv_list_keys_by_prefix)
{
    kv_store *s = kv_store_new(1 << 20);
    tr_error err;
    char key[32];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "%s:%d", i % 3 ? "user" : "session", i);
        CHECK_EQ(kv_set(s, K(key), K("v"), 0, &err), 0);
    }
    CHECK_EQ(kv_set(s, K("session:gone"), K("v"), 1, &err), 0);
    usleep(20 * 1000);
    int n = 0;
    CHECK_EQ(kv_list_keys(s, K("session:"), 1000, count_key, &n), 100);
    CHECK_EQ(n, 100);
    n = 0;
    CHECK_EQ(kv_list_keys(s, "", 0, 1000, count_key, &n), 300);
    n = 0;
    CHECK_EQ(kv_list_keys(s, K("user"), 50, count_key, &n), 50);
    CHECK_EQ(n, 50);
    kv_store_free(s);
}

typedef struct incr_arg {
    kv_store *s;
    int64_t last;
    int rc;
} incr_arg;

static void *increment_many(void *arg)
{
    incr_arg *a = arg;
    tr_error err;
    for (int i = 0; i < 20000 && a->rc == 0; i++) {
        a->rc = kv_increment(a->s, K("shared"), 1, 0, &a->last, &err);
        /* and other keys meanwhile, so that shards' tables grow under contention */
        char key[32];
        snprintf(key, sizeof key, "%p-%d", (void *)a, i % 500);
        if (a->rc == 0) a->rc = kv_set(a->s, K(key), K("x"), 0, &err);
    }
    return NULL;
}

TEST_TIMEOUT(kv_concurrent_increments_are_exact, 60)
{
    kv_store *s = kv_store_new(64 << 20);
    incr_arg a[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (incr_arg){s, 0, 0};
        CHECK_EQ(pthread_create(&t[i], NULL, increment_many, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ(a[i].rc, 0);
    }
    check_value(s, "shared", "80000");
    kv_store_free(s);
}

TEST(kv_snapshot_round_trip)
{
    kv_store *s = kv_store_new(1 << 20);
    tr_error err;
    CHECK_EQ(kv_set(s, K("plain"), K("value"), 0, &err), 0);
    CHECK_EQ(kv_set(s, "bin\0key", 7, "\x00\xff", 2, 0, &err), 0);
    CHECK_EQ(kv_set(s, K("lasting"), K("x"), 60000, &err), 0);
    CHECK_EQ(kv_set(s, K("brief"), K("x"), 30, &err), 0);
    int64_t n;
    CHECK_EQ(kv_increment(s, K("count"), 41, 0, &n, &err), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/kv.snapshot", test_tmpdir());
    CHECK_EQ(kv_store_save(s, path, &err), 0);
    kv_store_free(s);
    usleep(80 * 1000); /* "brief" expires on the way */
    kv_store *t = kv_store_new(1 << 20);
    size_t loaded = 0;
    CHECK_EQ(kv_store_load(t, path, &loaded, &err), 0);
    CHECK_EQ(loaded, 4);
    check_value(t, "plain", "value");
    check_value(t, "count", "41");
    check_value(t, "lasting", "x");
    CHECK(!kv_exists(t, K("brief")));
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(kv_get(t, "bin\0key", 7, &b), 1);
    CHECK_EQ(b.len, 2);
    CHECK(memcmp(b.data, "\x00\xff", 2) == 0);
    tr_buf_free(&b);
    kv_store_free(t);
    /* a missing file loads nothing */
    kv_store *u = kv_store_new(1 << 20);
    snprintf(path, sizeof path, "%s/none", test_tmpdir());
    CHECK_EQ(kv_store_load(u, path, &loaded, &err), 0);
    CHECK_EQ(loaded, 0);
    kv_store_free(u);
}

/* A snapshot cut short, or with a byte changed in a length, loads nothing and says where. */
TEST(kv_snapshot_damaged)
{
    kv_store *s = kv_store_new(1 << 20);
    tr_error err;
    CHECK_EQ(kv_set(s, K("a"), K("1"), 0, &err), 0);
    CHECK_EQ(kv_set(s, K("b"), K("2"), 0, &err), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/kv.snapshot", test_tmpdir());
    CHECK_EQ(kv_store_save(s, path, &err), 0);
    kv_store_free(s);
    tr_buf whole = TR_BUF_INIT;
    CHECK_EQ(tr_read_file(path, 1 << 20, &whole, &err), 0);
    for (size_t cut = 0; cut < whole.len; cut++) {
        CHECK_EQ(tr_write_file_atomic(path, whole.data, cut, &err), 0);
        kv_store *t = kv_store_new(1 << 20);
        size_t loaded = 99;
        CHECK_EQ(kv_store_load(t, path, &loaded, &err), TR_EPARSE);
        CHECK_CONTAINS(err.msg, "not a whole key-value snapshot");
        CHECK_EQ(loaded, 0);
        CHECK(!kv_exists(t, K("a")));
        kv_store_free(t);
    }
    whole.data[8] = 99; /* the first key's length */
    CHECK_EQ(tr_write_file_atomic(path, whole.data, whole.len, &err), 0);
    kv_store *t = kv_store_new(1 << 20);
    CHECK_EQ(kv_store_load(t, path, NULL, &err), TR_EPARSE);
    kv_store_free(t);
    tr_buf_free(&whole);
}
