/* kv/kv.c: the shared key-value store (kv/kv.h): sharded hash tables, an atomic byte count.
 *
 * DESIGN: an entry is one allocation, its key then its value; a shard's table is an array of
 * chains that doubles when it holds more entries than chains. The byte count is reserved before a
 * write changes anything, so a refused write leaves the store as it was. A shard's lock is never
 * held while another is taken: reclaiming across shards (before refusing a write) happens after the
 * writer has let its own shard go. */
#include "kv/kv.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define SWEEP_EVERY_NS 1000000000ull
#define MAX_SAFE_INT   9007199254740991ll /* 2^53 - 1: what a JavaScript number holds exactly */

typedef struct kv_entry kv_entry;
struct kv_entry {
    kv_entry *next;
    uint64_t hash;
    uint64_t expires_ns; /* monotonic clock; 0: never */
    uint32_t klen, vlen;
    unsigned char data[]; /* key, then value */
};

typedef struct kv_shard {
    _Alignas(64) pthread_mutex_t mu; /* guards everything below */
    uint64_t writes;                 /* changes ever made: a snapshot is due when the sum moves */
    kv_entry **chains;
    size_t nchains; /* a power of two */
    size_t count;
    size_t nexpiring;       /* entries with an expiry */
    uint64_t next_sweep_ns; /* when expired entries are next looked for */
} kv_shard;

struct kv_store {
    kv_shard shards[KV_SHARDS];
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    size_t max_bytes;
    _Alignas(64) atomic_size_t used;
};

static size_t cost(size_t klen, size_t vlen)
{
    return KV_ENTRY_OVERHEAD + klen + vlen;
}

kv_store *kv_store_new(size_t max_bytes)
{
    if (sodium_init() < 0) tr_fatal("libsodium failed to initialise");
    kv_store *s = tr_calloc(1, sizeof *s);
    randombytes_buf(s->hash_key, sizeof s->hash_key);
    s->max_bytes = max_bytes;
    atomic_init(&s->used, 0);
    for (size_t i = 0; i < KV_SHARDS; i++) {
        kv_shard *sh = &s->shards[i];
        pthread_mutex_init(&sh->mu, NULL);
        sh->nchains = 16;
        sh->chains = tr_calloc(sh->nchains, sizeof *sh->chains);
    }
    return s;
}

void kv_store_free(kv_store *s)
{
    if (s == NULL) return;
    for (size_t i = 0; i < KV_SHARDS; i++) {
        kv_shard *sh = &s->shards[i];
        for (size_t c = 0; c < sh->nchains; c++) {
            kv_entry *e = sh->chains[c];
            while (e) {
                kv_entry *next = e->next;
                tr_free(e);
                e = next;
            }
        }
        tr_free(sh->chains);
        pthread_mutex_destroy(&sh->mu);
    }
    tr_free(s);
}

size_t kv_used_bytes(const kv_store *s)
{
    return atomic_load_explicit(&s->used, memory_order_relaxed);
}

size_t kv_max_bytes(const kv_store *s)
{
    return s->max_bytes;
}

static uint64_t hash_key(const kv_store *s, const void *key, size_t klen)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, key, klen, s->hash_key);
    return h;
}

/* The shard from the hash's low bits; the chain from the bits above them. */
static kv_shard *shard_of(kv_store *s, uint64_t h)
{
    return &s->shards[h & (KV_SHARDS - 1)];
}

static kv_entry **chain_of(kv_shard *sh, uint64_t h)
{
    return &sh->chains[(h >> 6) & (sh->nchains - 1)];
}

static bool expired(const kv_entry *e, uint64_t now)
{
    return e->expires_ns != 0 && e->expires_ns <= now;
}

/* Unlinks and frees *link's entry, giving its bytes back. Caller holds the shard's lock. */
static void remove_at(kv_store *s, kv_shard *sh, kv_entry **link)
{
    kv_entry *e = *link;
    *link = e->next;
    sh->count--;
    sh->writes++;
    if (e->expires_ns) sh->nexpiring--;
    atomic_fetch_sub_explicit(&s->used, cost(e->klen, e->vlen), memory_order_relaxed);
    tr_free(e);
}

/* The link that points at key's live entry, or NULL; an expired entry met on the way is removed.
 * Caller holds the shard's lock. */
static kv_entry **find(kv_store *s, kv_shard *sh, uint64_t h, const void *key, size_t klen,
                       uint64_t now)
{
    kv_entry **link = chain_of(sh, h);
    while (*link) {
        kv_entry *e = *link;
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0) {
            if (!expired(e, now)) return link;
            remove_at(s, sh, link);
            return NULL;
        }
        link = &e->next;
    }
    return NULL;
}

/* Removes every expired entry of the shard. Caller holds its lock. */
static void sweep(kv_store *s, kv_shard *sh, uint64_t now)
{
    sh->next_sweep_ns = now + SWEEP_EVERY_NS;
    if (sh->nexpiring == 0) return;
    for (size_t c = 0; c < sh->nchains; c++) {
        kv_entry **link = &sh->chains[c];
        while (*link) {
            if (expired(*link, now))
                remove_at(s, sh, link);
            else
                link = &(*link)->next;
        }
    }
}

static void sweep_all(kv_store *s)
{
    uint64_t now = tr_now_ns();
    for (size_t i = 0; i < KV_SHARDS; i++) {
        kv_shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->mu);
        sweep(s, sh, now);
        pthread_mutex_unlock(&sh->mu);
    }
}

static void grow(kv_shard *sh)
{
    size_t n = sh->nchains * 2;
    kv_entry **chains = tr_calloc(n, sizeof *chains);
    for (size_t c = 0; c < sh->nchains; c++) {
        kv_entry *e = sh->chains[c];
        while (e) {
            kv_entry *next = e->next;
            kv_entry **to = &chains[(e->hash >> 6) & (n - 1)];
            e->next = *to;
            *to = e;
            e = next;
        }
    }
    tr_free(sh->chains);
    sh->chains = chains;
    sh->nchains = n;
}

/* Takes `delta` more bytes (may be negative) from the limit; false, with nothing taken, when that
 * would pass it. */
static bool reserve(kv_store *s, ptrdiff_t delta)
{
    /* the one line every worker shares: an update of the same size (a counter's next value)
     * leaves it alone */
    if (delta == 0) return true;
    if (delta < 0) {
        atomic_fetch_sub_explicit(&s->used, (size_t)-delta, memory_order_relaxed);
        return true;
    }
    size_t before = atomic_fetch_add_explicit(&s->used, (size_t)delta, memory_order_relaxed);
    if (before + (size_t)delta <= s->max_bytes) return true;
    atomic_fetch_sub_explicit(&s->used, (size_t)delta, memory_order_relaxed);
    return false;
}

static int full_error(const kv_store *s, tr_error *err)
{
    return tr_error_set(err, TR_ELIMIT, "the key-value store is full (kv.max_mb = %zu)",
                        s->max_bytes >> 20);
}

static int check_key(size_t klen, tr_error *err)
{
    if (klen == 0) return tr_error_set(err, TR_EINVAL, "a key must not be empty");
    if (klen > KV_MAX_KEY_BYTES)
        return tr_error_set(err, TR_EINVAL, "a key is limited to %d bytes", KV_MAX_KEY_BYTES);
    return 0;
}

/* Puts val under key in the locked shard: replaces the entry at link (may be NULL: a new one).
 * expires_ns as the entry should have it. TR_ELIMIT when the bytes are not there. */
static int put(kv_store *s, kv_shard *sh, kv_entry **link, uint64_t h, const void *key,
               size_t klen, const void *val, size_t vlen, uint64_t expires_ns)
{
    kv_entry *old = link ? *link : NULL;
    ptrdiff_t delta = (ptrdiff_t)cost(klen, vlen) - (old ? (ptrdiff_t)cost(old->klen, old->vlen) : 0);
    if (!reserve(s, delta)) return TR_ELIMIT;
    kv_entry *e;
    if (old) {
        if (old->expires_ns) sh->nexpiring--;
        e = tr_realloc(old, sizeof *e + klen + vlen);
        *link = e;
    } else {
        e = tr_malloc(sizeof *e + klen + vlen);
        e->hash = h;
        e->klen = (uint32_t)klen;
        memcpy(e->data, key, klen);
        kv_entry **chain = chain_of(sh, h);
        e->next = *chain;
        *chain = e;
        sh->count++;
    }
    e->vlen = (uint32_t)vlen;
    memcpy(e->data + klen, val, vlen);
    sh->writes++;
    e->expires_ns = expires_ns;
    if (expires_ns) sh->nexpiring++;
    if (!old && sh->count > sh->nchains) grow(sh);
    return 0;
}

int kv_get(kv_store *s, const void *key, size_t klen, tr_buf *out)
{
    uint64_t h = hash_key(s, key, klen);
    kv_shard *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->mu);
    kv_entry **link = find(s, sh, h, key, klen, tr_now_ns());
    if (link) tr_buf_append(out, (*link)->data + klen, (*link)->vlen);
    pthread_mutex_unlock(&sh->mu);
    return link != NULL;
}

bool kv_exists(kv_store *s, const void *key, size_t klen)
{
    uint64_t h = hash_key(s, key, klen);
    kv_shard *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->mu);
    bool found = find(s, sh, h, key, klen, tr_now_ns()) != NULL;
    pthread_mutex_unlock(&sh->mu);
    return found;
}

int kv_delete(kv_store *s, const void *key, size_t klen)
{
    uint64_t h = hash_key(s, key, klen);
    kv_shard *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->mu);
    kv_entry **link = find(s, sh, h, key, klen, tr_now_ns());
    if (link) remove_at(s, sh, link);
    pthread_mutex_unlock(&sh->mu);
    return link != NULL;
}

static uint64_t expiry(uint64_t now, uint64_t ttl_ms)
{
    if (ttl_ms == 0) return 0;
    /* a TTL beyond any uptime (over 100 years) is as good as none */
    if (ttl_ms > UINT64_C(3153600000000)) return 0;
    return now + ttl_ms * 1000000u;
}

static int set_once(kv_store *s, uint64_t h, const void *key, size_t klen, const void *val,
                    size_t vlen, uint64_t ttl_ms)
{
    kv_shard *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->mu);
    uint64_t now = tr_now_ns();
    if (now >= sh->next_sweep_ns) sweep(s, sh, now);
    kv_entry **link = find(s, sh, h, key, klen, now);
    int rc = put(s, sh, link, h, key, klen, val, vlen, expiry(now, ttl_ms));
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

int kv_set(kv_store *s, const void *key, size_t klen, const void *val, size_t vlen, uint64_t ttl_ms,
           tr_error *err)
{
    int rc = check_key(klen, err);
    if (rc < 0) return rc;
    if (vlen > KV_MAX_VALUE_BYTES)
        return tr_error_set(err, TR_EINVAL, "a value is limited to %u bytes", KV_MAX_VALUE_BYTES);
    uint64_t h = hash_key(s, key, klen);
    rc = set_once(s, h, key, klen, val, vlen, ttl_ms);
    if (rc == TR_ELIMIT) {
        sweep_all(s);
        rc = set_once(s, h, key, klen, val, vlen, ttl_ms);
    }
    return rc == TR_ELIMIT ? full_error(s, err) : rc;
}

/* The value as a decimal integer within +-MAX_SAFE_INT; false if it is not one. */
static bool parse_int(const unsigned char *p, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = n > 0 && p[0] == '-';
    if (neg) i++;
    if (i == n || n - i > 16) return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
    }
    if (v > MAX_SAFE_INT) return false;
    *out = neg ? -v : v;
    return true;
}

static int increment_once(kv_store *s, uint64_t h, const void *key, size_t klen, int64_t delta,
                          uint64_t ttl_ms, int64_t *out, tr_error *err)
{
    kv_shard *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->mu);
    uint64_t now = tr_now_ns();
    if (now >= sh->next_sweep_ns) sweep(s, sh, now);
    kv_entry **link = find(s, sh, h, key, klen, now);
    int64_t v = 0;
    uint64_t expires = expiry(now, ttl_ms);
    int rc = 0;
    if (link) {
        expires = (*link)->expires_ns;
        if (!parse_int((*link)->data + klen, (*link)->vlen, &v))
            rc = tr_error_set(err, TR_EINVAL, "the value under this key is not an integer");
    }
    if (rc == 0 && ((delta > 0 && v > MAX_SAFE_INT - delta) || (delta < 0 && v < -MAX_SAFE_INT - delta)))
        rc = tr_error_set(err, TR_EINVAL, "the sum would leave the range of exact numbers (2^53)");
    if (rc == 0) {
        char text[24];
        int n = snprintf(text, sizeof text, "%" PRId64, v + delta);
        rc = put(s, sh, link, h, key, klen, text, (size_t)n, expires);
        if (rc == 0) *out = v + delta;
    }
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

int kv_increment(kv_store *s, const void *key, size_t klen, int64_t delta, uint64_t ttl_ms,
                 int64_t *out, tr_error *err)
{
    int rc = check_key(klen, err);
    if (rc < 0) return rc;
    if (delta > MAX_SAFE_INT || delta < -MAX_SAFE_INT)
        return tr_error_set(err, TR_EINVAL, "the increment must be an integer within 2^53");
    uint64_t h = hash_key(s, key, klen);
    rc = increment_once(s, h, key, klen, delta, ttl_ms, out, err);
    if (rc == TR_ELIMIT) {
        sweep_all(s);
        rc = increment_once(s, h, key, klen, delta, ttl_ms, out, err);
    }
    return rc == TR_ELIMIT ? full_error(s, err) : rc;
}

size_t kv_list_keys(kv_store *s, const void *prefix, size_t plen, size_t max, kv_key_fn fn,
                    void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < KV_SHARDS && n < max; i++) {
        kv_shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->mu);
        uint64_t now = tr_now_ns();
        for (size_t c = 0; c < sh->nchains && n < max; c++) {
            for (kv_entry *e = sh->chains[c]; e && n < max; e = e->next) {
                if (expired(e, now) || e->klen < plen || memcmp(e->data, prefix, plen) != 0)
                    continue;
                fn(arg, e->data, e->klen);
                n++;
            }
        }
        pthread_mutex_unlock(&sh->mu);
    }
    return n;
}

/* ---- persistence ----
 *
 * The snapshot: "trailkv1", then for each entry its key length and value length (u32), its expiry
 * in ms since the epoch (i64; 0 never), the key and the value; then "end!" and the entry count
 * (u64). Little-endian, as the machines trail runs on. */

#define SNAPSHOT_MAGIC "trailkv1"
#define SNAPSHOT_END   "end!"

typedef struct __attribute__((packed)) snap_head {
    uint32_t klen, vlen;
    int64_t expires_ms;
} snap_head;

static uint64_t total_writes(kv_store *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < KV_SHARDS; i++) {
        pthread_mutex_lock(&s->shards[i].mu);
        n += s->shards[i].writes;
        pthread_mutex_unlock(&s->shards[i].mu);
    }
    return n;
}

int kv_store_save(kv_store *s, const char *path, tr_error *err)
{
    tr_buf b = TR_BUF_INIT;
    tr_buf_append(&b, SNAPSHOT_MAGIC, 8);
    uint64_t count = 0;
    for (size_t i = 0; i < KV_SHARDS; i++) {
        kv_shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->mu);
        uint64_t now = tr_now_ns();
        int64_t wall = tr_wall_ms();
        for (size_t c = 0; c < sh->nchains; c++) {
            for (kv_entry *e = sh->chains[c]; e; e = e->next) {
                if (expired(e, now)) continue;
                snap_head h = {e->klen, e->vlen, 0};
                if (e->expires_ns) h.expires_ms = wall + (int64_t)((e->expires_ns - now) / 1000000) + 1;
                tr_buf_append(&b, &h, sizeof h);
                tr_buf_append(&b, e->data, (size_t)e->klen + e->vlen);
                count++;
            }
        }
        pthread_mutex_unlock(&sh->mu);
    }
    tr_buf_append(&b, SNAPSHOT_END, 4);
    tr_buf_append(&b, &count, sizeof count);
    int rc = tr_write_file_atomic(path, b.data, b.len, err);
    tr_buf_free(&b);
    return rc;
}

int kv_store_load(kv_store *s, const char *path, size_t *loaded, tr_error *err)
{
    if (loaded) *loaded = 0;
    tr_buf b = TR_BUF_INIT;
    /* the file holds at most the store's bytes, less the overhead it counts per entry */
    int rc = tr_read_file(path, s->max_bytes + 4096, &b, err);
    if (rc == -ENOENT) {
        tr_buf_free(&b);
        return 0;
    }
    if (rc < 0) {
        tr_buf_free(&b);
        return rc;
    }
    const unsigned char *p = (const unsigned char *)b.data;
    size_t n = b.len, off = 8;
    uint64_t want = 0;
    bool ok = n >= 8 + 4 + 8 && memcmp(p, SNAPSHOT_MAGIC, 8) == 0 &&
              memcmp(p + n - 12, SNAPSHOT_END, 4) == 0;
    if (ok) memcpy(&want, p + n - 8, sizeof want);
    /* every entry must be whole and valid before any is loaded */
    uint64_t count = 0;
    while (ok && off < n - 12) {
        snap_head h;
        if (n - 12 - off < sizeof h) {
            ok = false;
            break;
        }
        memcpy(&h, p + off, sizeof h);
        off += sizeof h;
        if (h.klen == 0 || h.klen > KV_MAX_KEY_BYTES || h.vlen > KV_MAX_VALUE_BYTES ||
            n - 12 - off < (size_t)h.klen + h.vlen) {
            ok = false;
            break;
        }
        off += (size_t)h.klen + h.vlen;
        count++;
    }
    if (!ok || count != want) {
        rc = tr_error_set(err, TR_EPARSE, "%s: not a whole key-value snapshot (damaged at byte %zu)",
                          path, off);
        tr_buf_free(&b);
        return rc;
    }
    int64_t wall = tr_wall_ms();
    size_t got = 0;
    for (off = 8; off < n - 12;) {
        snap_head h;
        memcpy(&h, p + off, sizeof h);
        off += sizeof h;
        const unsigned char *key = p + off, *val = key + h.klen;
        off += (size_t)h.klen + h.vlen;
        if (h.expires_ms != 0 && h.expires_ms <= wall) continue;
        uint64_t ttl = h.expires_ms ? (uint64_t)(h.expires_ms - wall) : 0;
        tr_error e;
        if (kv_set(s, key, h.klen, val, h.vlen, ttl, &e) == 0) got++;
    }
    tr_buf_free(&b);
    if (loaded) *loaded = got;
    return 0;
}

struct kv_persist {
    kv_store *s;
    char *path;
    uint32_t interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;           /* guarded by mu */
    uint64_t saved;      /* total_writes() at the last save; the thread's own */
};

static void *persist_main(void *arg)
{
    kv_persist *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)p->interval_ms * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) != ETIMEDOUT) {
        }
        if (p->stop) break;
        pthread_mutex_unlock(&p->mu);
        uint64_t w = total_writes(p->s);
        if (w != p->saved) {
            tr_error err;
            if (kv_store_save(p->s, p->path, &err) == 0)
                p->saved = w;
            else
                tr_log_warn("kv: saving the key-value store failed: %s", err.msg);
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

kv_persist *kv_persist_start(kv_store *s, const char *path, uint32_t interval_ms)
{
    kv_persist *p = tr_calloc(1, sizeof *p);
    p->s = s;
    p->path = tr_strdup(path);
    p->interval_ms = interval_ms ? interval_ms : 1;
    p->saved = total_writes(s);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&p->thread, NULL, persist_main, p);
    if (rc != 0) tr_fatal("kv: cannot start the snapshot thread: %s", strerror(rc));
    return p;
}

int kv_persist_stop(kv_persist *p, tr_error *err)
{
    if (p == NULL) return 0;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    int rc = total_writes(p->s) == p->saved ? 0 : kv_store_save(p->s, p->path, err);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    tr_free(p->path);
    tr_free(p);
    return rc;
}
