/* auth/ratelimit.c: counts of login attempts per account and per client address, one table for
 * the whole process.
 *
 * DESIGN: fixed one-minute windows in a hash table of RATE_SLOTS entries keyed by a SipHash of
 * (kind, key) with a random key per process, behind one mutex (g_rate_mu): the workers meet here
 * only on auth requests, which already cost an Argon2id hash. When the table is full, the entry
 * whose window is oldest is reused: an attacker spraying addresses can evict counts, but never
 * more than RATE_SLOTS of them per minute, and the per-account count (what stuffing one account
 * needs) lives under the account's own key. */
#include "auth/auth_internal.h"

#include <sodium.h>
#include <string.h>

#define RATE_SLOTS  4096
#define RATE_WINDOW 60000 /* ms */
#define RATE_PROBE  16

typedef struct rate_slot {
    uint64_t h; /* 0: free */
    int64_t window_start;
    uint32_t count;
} rate_slot;

static pthread_mutex_t g_rate_mu = PTHREAD_MUTEX_INITIALIZER;
static rate_slot g_rate[RATE_SLOTS]; /* guarded by g_rate_mu */
static uint8_t g_rate_key[16];       /* guarded by g_rate_mu */
static bool g_rate_keyed;            /* guarded by g_rate_mu */

static uint64_t rate_hash(const char *kind, const char *key)
{
    if (!g_rate_keyed) {
        randombytes_buf(g_rate_key, sizeof g_rate_key);
        g_rate_keyed = true;
    }
    uint8_t out[8];
    /* kind and key are joined with a NUL so that ("ab", "c") and ("a", "bc") differ */
    size_t kl = strlen(kind), vl = strlen(key);
    char buf[512];
    size_t n = TR_MIN(kl + 1 + vl, sizeof buf);
    memcpy(buf, kind, TR_MIN(kl + 1, sizeof buf));
    if (kl + 1 < sizeof buf) memcpy(buf + kl + 1, key, n - kl - 1);
    crypto_shorthash(out, (const uint8_t *)buf, n, g_rate_key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h ? h : 1;
}

/* The slot of h (g_rate_mu held): its own, a free or stale one, or the oldest of the probe. */
static rate_slot *rate_slot_for(uint64_t h, int64_t now)
{
    size_t base = (size_t)(h % RATE_SLOTS);
    rate_slot *victim = NULL;
    for (size_t i = 0; i < RATE_PROBE; i++) {
        rate_slot *s = &g_rate[(base + i) % RATE_SLOTS];
        if (s->h == h) return s;
        if (s->h == 0 || now - s->window_start >= RATE_WINDOW) {
            if (victim == NULL || victim->h != 0) victim = s;
            continue;
        }
        if (victim == NULL || (victim->h != 0 && s->window_start < victim->window_start))
            victim = s;
    }
    victim->h = h;
    victim->window_start = now;
    victim->count = 0;
    return victim;
}

static uint32_t rate_count(const char *kind, const char *key, int add)
{
    int64_t now = tr_wall_ms();
    pthread_mutex_lock(&g_rate_mu);
    rate_slot *s = rate_slot_for(rate_hash(kind, key), now);
    if (now - s->window_start >= RATE_WINDOW) {
        s->window_start = now;
        s->count = 0;
    }
    if (add > 0 && s->count < UINT32_MAX) s->count++;
    if (add < 0) s->count = 0;
    uint32_t c = s->count;
    pthread_mutex_unlock(&g_rate_mu);
    return c;
}

bool auth__rate_hit(const char *kind, const char *key, uint32_t limit)
{
    if (limit == 0) return false;
    return rate_count(kind, key, 1) > limit;
}

bool auth__rate_exceeded(const char *kind, const char *key, uint32_t limit)
{
    if (limit == 0) return false;
    return rate_count(kind, key, 0) >= limit;
}

void auth__rate_clear(const char *kind, const char *key)
{
    rate_count(kind, key, -1);
}
