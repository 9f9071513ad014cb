/* kv/kv.h: the key-value store every worker and component of a trail process shares
 * (`trailbase-wasm/kv`): byte values under byte keys, each optionally with a time to live,
 * an atomic integer increment for counters and rate limits, bounded in memory.
 *
 * DESIGN: KV_SHARDS independent hash tables, each behind its own mutex; a key's shard is chosen by
 * its hash (SipHash with a per-process random key, from libsodium, so that a guest cannot choose
 * keys that all land in one chain). Workers touching different keys almost never meet on a lock;
 * the one thing they share is the atomic count of bytes in use. Each operation is one critical
 * section, so `increment` is exact under any concurrency. Expired entries are invisible at once and
 * reclaimed when their shard is next written (at most once a second per shard, a sweep of that
 * shard) and, before a write is refused as over the limit, in every shard. Expiry times are on
 * the monotonic clock. The store lives in memory; kv_persist_start() keeps a snapshot of it in a
 * file (`kv { persist: true }`), loaded again at the next start.
 *
 * Thread: any; every function may be called from any thread at once. */
#ifndef TRAIL_KV_KV_H
#define TRAIL_KV_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define KV_SHARDS 64
/* The longest key and value: a value must also fit in the isolate that reads it. */
#define KV_MAX_KEY_BYTES   4096
#define KV_MAX_VALUE_BYTES (16u << 20)
/* What an entry costs beyond its key and value bytes, as counted against the limit: its 32-byte
 * header, the allocator's word and rounding, and its chain slot (up to two while tables grow). */
#define KV_ENTRY_OVERHEAD 64

typedef struct kv_store kv_store;

/* A store of at most max_bytes (keys, values and KV_ENTRY_OVERHEAD per entry). */
kv_store *kv_store_new(size_t max_bytes);
void kv_store_free(kv_store *s); /* NULL is a no-op */

/* The value under key, appended to out: 1 if found (and not expired), 0 if not. */
int kv_get(kv_store *s, const void *key, size_t klen, tr_buf *out);

/* Sets key to value. ttl_ms > 0: it expires that long from now; 0: it never does. Errors:
 * TR_EINVAL (key empty or over KV_MAX_KEY_BYTES, value over KV_MAX_VALUE_BYTES), TR_ELIMIT (the
 * store would hold more than its limit even after reclaiming expired entries; nothing changed);
 * err says which. */
int kv_set(kv_store *s, const void *key, size_t klen, const void *val, size_t vlen, uint64_t ttl_ms,
           tr_error *err);

/* 1 if key was there (and removed), 0 if not. */
int kv_delete(kv_store *s, const void *key, size_t klen);

/* True if key is there and not expired. */
bool kv_exists(kv_store *s, const void *key, size_t klen);

/* Adds delta to the integer under key (its value as decimal ASCII, as kv_get shows it) and puts
 * the sum in *out. A key that is not there starts at 0 and, with ttl_ms > 0, expires that long from
 * now; an existing key keeps its expiry (a fixed window, the usual rate-limit counter). Errors:
 * TR_EINVAL (bad key, a value that is not a decimal integer, a sum outside +-2^53 so that
 * JavaScript numbers stay exact), TR_ELIMIT as kv_set. */
int kv_increment(kv_store *s, const void *key, size_t klen, int64_t delta, uint64_t ttl_ms,
                 int64_t *out, tr_error *err);

/* Calls fn for every live key that starts with prefix (in no particular order), at most max keys;
 * returns how many it passed. fn runs under a shard's lock: it must not call the store. */
typedef void (*kv_key_fn)(void *arg, const void *key, size_t klen);
size_t kv_list_keys(kv_store *s, const void *prefix, size_t plen, size_t max, kv_key_fn fn,
                    void *arg);

/* ---- persistence ---- */

/* Writes every live entry to path: a temporary file beside it, synced, then renamed over it, so
 * the file is always a whole snapshot. Expiry is saved as wall-clock time. Each shard is locked
 * only while its entries are copied. Errors: -errno, err naming the file. */
int kv_store_save(kv_store *s, const char *path, tr_error *err);

/* Loads a snapshot written by kv_store_save() into s (which should be empty); entries that expired
 * meanwhile, or that no longer fit its limit, are skipped. A missing file loads nothing and is no
 * error; a damaged one is TR_EPARSE with err naming the file and the offset, and loads nothing. On
 * success *loaded (may be NULL) is the number of entries. */
int kv_store_load(kv_store *s, const char *path, size_t *loaded, tr_error *err);

/* Starts a thread that saves s to path every interval_ms when anything changed since the last
 * save. kv_persist_stop() ends it and saves a last time (call it after every writer stopped).
 * Failures to save are logged and retried at the next interval. */
typedef struct kv_persist kv_persist;
kv_persist *kv_persist_start(kv_store *s, const char *path, uint32_t interval_ms);
int kv_persist_stop(kv_persist *p, tr_error *err); /* NULL is a no-op returning 0 */

/* Bytes counted against the limit now, and the limit. */
size_t kv_used_bytes(const kv_store *s);
size_t kv_max_bytes(const kv_store *s);

#endif
