/* guest/guest.c: `__trailhost` (docs/guest-abi.md) and the prelude that builds the standard
 * globals on it; timers on the worker's loop.
 *
 * DESIGN: host functions run inside a guest call, on the worker's thread. The ones that return
 * promises and can finish at once (SQL, files) settle them before returning, so no request ever
 * waits on the loop for them. Timers are loop timers; when one fires the prelude's fireTimer(id)
 * runs, then pending jobs, then the owner's wake function. An isolate that traps or runs out of
 * its budget inside a timer is the owner's to deal with when it next uses it. */
#include "guest/guest.h"
#include "guest/guest_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "base/embed.h"
#include "db/db.h"
#include "guest/fetch.h"
#include "kv/kv.h"

extern const tr_embedded_file guest_prelude_files[];
extern const size_t guest_prelude_files_len;

typedef struct guest_timer {
    loop_timer t; /* the loop hands us &t */
    guest *g;
    uint32_t id;
    uint32_t ms;
    bool repeat;
    bool firing; /* its callback is running: cancel must not free it */
    bool cancelled;
} guest_timer;

struct guest {
    jsg_isolate *iso;
    guest_env *env;
    guest_wake_fn wake;
    void *owner;
    jsg_ref host_obj;
    jsg_ref hooks;      /* the prelude's completion value */
    jsg_ref fire_timer; /* hooks.fireTimer */
    /* timers by id: open addressing, linear probing; slots hold NULL or a timer */
    guest_timer **timers;
    size_t timer_cap, ntimers;
    guest_fetch_set fetches; /* fetch() transfers in flight */
    /* the current window (GUEST_MAX_TIMER_CPU_PCT): its start (wall clock and the thread's CPU
     * clock) and the CPU timer callbacks used in it */
    uint64_t timer_window_ns, timer_window_cpu_ns, timer_cpu_ns;
    int failure; /* TR_ELIMIT once they used too much, for guest_take_failure() */
};

void guest_env_init(guest_env *env, loop *l, db_conn *db, const guest_fs *fs)
{
    memset(env, 0, sizeof *env);
    env->loop = l;
    env->db = db;
    env->sql = db ? guest_sql_new(db) : NULL;
    if (env->sql && l) guest__sql_use_loop(env->sql, l);
    env->fs = fs;
    env->fs_max_read = 64u << 20;
}

void guest_env_deinit(guest_env *env)
{
    guest_fetch_free(env->fetch);
    env->fetch = NULL;
    guest_sql_free(env->sql);
    env->sql = NULL;
}

/* ---- argument helpers ---- */

typedef struct args {
    jsg_isolate *iso;
    size_t argc;
    const jsg_ref *argv;
    tr_arena arena;
} args;

static int arg_val(args *a, size_t i, jsg_val *out, tr_error *err)
{
    if (i >= a->argc) {
        *out = jsg_undefined();
        return 0;
    }
    return jsg_to_val(a->iso, a->argv[i], &a->arena, out, err);
}

static int arg_bytes(args *a, size_t i, jsg_val *out, tr_error *err)
{
    int rc = arg_val(a, i, out, err);
    if (rc < 0) return rc;
    if (out->type != JSG_BYTES) return tr_error_set(err, TR_EINVAL, "expected a Uint8Array");
    return 0;
}

static int arg_string(args *a, size_t i, const char *what, jsg_val *out, tr_error *err)
{
    int rc = arg_val(a, i, out, err);
    if (rc < 0) return rc;
    if (out->type != JSG_STRING) return tr_error_set(err, TR_EINVAL, "%s must be a string", what);
    return 0;
}

static int arg_number(args *a, size_t i, const char *what, double *out, tr_error *err)
{
    jsg_val v;
    int rc = arg_val(a, i, &v, err);
    if (rc < 0) return rc;
    if (v.type != JSG_NUMBER) return tr_error_set(err, TR_EINVAL, "%s must be a number", what);
    *out = v.u.num;
    return 0;
}

#define WITH_ARGS(iso, argc, argv)                                                                 \
    args a = {iso, argc, argv, {0}};                                                               \
    tr_arena_init(&a.arena, 4096)

/* ---- promises settled at once ---- */

int guest__settled(jsg_isolate *iso, int rc, jsg_ref value, const tr_error *why, jsg_ref *result,
                   tr_error *err)
{
    if (jsg_rc_is_fatal(rc)) {
        if (value) jsg_ref_free(iso, value);
        return tr_error_set(err, rc, "%s", why->msg);
    }
    if (rc >= 0) {
        int r = jsg_promise_resolved(iso, value, result, err);
        if (value) jsg_ref_free(iso, value);
        return r;
    }
    if (value) jsg_ref_free(iso, value);
    jsg_deferred d;
    int r = jsg_deferred_new(iso, &d, err);
    if (r < 0) return r;
    r = jsg_deferred_reject(iso, &d, why->msg, strlen(why->msg), err);
    if (r < 0) {
        jsg_ref_free(iso, d.promise);
        return r;
    }
    *result = d.promise;
    return 0;
}

/* ---- log, UTF-8, randomness ---- */

void guest_log_escape(const char *s, size_t n, tr_buf *out)
{
    static const char hex[] = "0123456789abcdef";
    tr_buf_reserve(out, n + 16);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        /* C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F) include CSI, which terminals obey
         * like ESC [. */
        bool c1 = ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                  (unsigned char)s[i + 1] <= 0x9f;
        if (ch >= 0x20 && ch != 0x7f && ch != '\\' && !c1) {
            tr_buf_append(out, (const char *)&s[i], 1);
            continue;
        }
        char esc[8] = {'\\', 0};
        size_t len = 2;
        switch (ch) {
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        default:
            if (c1) ch = (unsigned char)s[++i];
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 15];
            len = 4;
        }
        tr_buf_append(out, esc, len);
    }
}

static int host_log(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                    jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    (void)result;
    WITH_ARGS(iso, argc, argv);
    double level = 1;
    jsg_val msg;
    int rc = arg_number(&a, 0, "level", &level, err);
    if (rc == 0) rc = arg_string(&a, 1, "message", &msg, err);
    if (rc == 0) {
        static const tr_log_level levels[] = {TR_LOG_DEBUG, TR_LOG_INFO, TR_LOG_WARN, TR_LOG_ERROR};
        int l = level >= 0 && level <= 3 ? (int)level : 1;
        tr_buf line = TR_BUF_INIT;
        guest_log_escape(msg.u.str.ptr, TR_MIN(msg.u.str.len, GUEST_LOG_MAX_BYTES), &line);
        tr_log(levels[l], GUEST_LOG_PREFIX "%.*s", (int)line.len, line.data ? line.data : "");
        tr_buf_free(&line);
    }
    tr_arena_deinit(&a.arena);
    return rc;
}

static int host_encode_utf8(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                            const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    WITH_ARGS(iso, argc, argv);
    jsg_val s;
    int rc = arg_string(&a, 0, "text", &s, err);
    if (rc == 0) {
        /* WTF-8 from the engine: a lone surrogate (ED A0..BF xx) becomes U+FFFD, as TextEncoder
         * does. */
        char *p = (char *)s.u.str.ptr;
        for (size_t i = 0; i + 2 < s.u.str.len; i++) {
            if ((unsigned char)p[i] == 0xED && ((unsigned char)p[i + 1] & 0xE0) == 0xA0) {
                p[i] = (char)0xEF;
                p[i + 1] = (char)0xBF;
                p[i + 2] = (char)0xBD;
                i += 2;
            }
        }
        jsg_val b = jsg_bytes(s.u.str.ptr, s.u.str.len);
        rc = jsg_from_val(iso, &b, result, err);
    }
    tr_arena_deinit(&a.arena);
    return rc;
}

size_t guest__utf8_seq(const unsigned char *s, size_t i, size_t n)
{
    unsigned char c = s[i];
    if (c < 0x80) return 1;
    size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > n) return 0;
    uint32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* The length of the longest valid UTF-8 prefix of s. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0, len;
    while (i < n && (len = guest__utf8_seq(s, i, n)) > 0) i += len;
    return i;
}

/* Appends the UTF-8 of bytes to out, invalid sequences as U+FFFD (valid runs in one copy). */
static void utf8_sanitize(const unsigned char *s, size_t n, tr_buf *out)
{
    size_t i = 0, run = 0;
    while (i < n) {
        size_t len = guest__utf8_seq(s, i, n);
        if (len > 0) {
            i += len;
            continue;
        }
        tr_buf_append(out, s + run, i - run);
        tr_buf_append(out, "\xEF\xBF\xBD", 3);
        /* one U+FFFD for a lead byte and the continuation bytes it announced */
        unsigned char c = s[i];
        size_t want = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        i++;
        while (i < n && (s[i] & 0xC0) == 0x80 && want > 1) i++, want--;
        run = i;
    }
    tr_buf_append(out, s + run, n - run);
}

/* jsonStringify(value): JSON.stringify(value) written by the host for plain data, or undefined
 * when the SDK should call JSON.stringify itself (jsg_json_fast). */
static int host_json_stringify(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                               const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    if (argc < 1) return 0;
    return jsg_json_fast(iso, argv[0], result, err);
}

/* jsonParse(bytes): the value of the JSON text in bytes, as JSON.parse would give it, or
 * undefined when the text is not one guest/json.c takes (the SDK then calls JSON.parse, for its
 * result or its error message). */
static int host_json_parse(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                           const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    WITH_ARGS(iso, argc, argv);
    jsg_val b, v;
    int rc = arg_bytes(&a, 0, &b, err);
    /* a value bigger on the host than the isolate's memory is JSON.parse's to refuse */
    if (rc == 0 &&
        guest__json_parse(b.u.str.ptr, b.u.str.len, jsg_memory_limit(iso), &a.arena, &v)) {
        /* beyond what a conversion takes (an array of over a million items): JSON.parse's */
        tr_error ignored = {0};
        if (jsg_from_val(iso, &v, result, &ignored) < 0) *result = 0;
    }
    tr_arena_deinit(&a.arena);
    return rc;
}

static int host_decode_utf8(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                            const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    WITH_ARGS(iso, argc, argv);
    jsg_val b, fatal;
    int rc = arg_bytes(&a, 0, &b, err);
    if (rc == 0) rc = arg_val(&a, 1, &fatal, err);
    if (rc == 0) {
        /* valid text (the usual case) goes to the engine as it is, without a copy */
        const unsigned char *p = (const unsigned char *)b.u.str.ptr;
        tr_buf out = TR_BUF_INIT;
        jsg_val s = jsg_string(b.u.str.len ? b.u.str.ptr : "", b.u.str.len);
        if (utf8_valid_prefix(p, b.u.str.len) < b.u.str.len) {
            if (fatal.type == JSG_BOOL && fatal.u.b) {
                s = jsg_null();
            } else {
                tr_buf_reserve(&out, b.u.str.len + 3);
                utf8_sanitize(p, b.u.str.len, &out);
                s = jsg_string(out.data, out.len);
            }
        }
        rc = jsg_from_val(iso, &s, result, err);
        tr_buf_free(&out);
    }
    tr_arena_deinit(&a.arena);
    return rc;
}

static int host_random_bytes(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                             const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    WITH_ARGS(iso, argc, argv);
    double n = 0;
    int rc = arg_number(&a, 0, "length", &n, err);
    if (rc == 0 && !(n >= 0 && n <= GUEST_MAX_RANDOM))
        rc = tr_error_set(err, TR_ELIMIT, "at most %d random bytes per call", GUEST_MAX_RANDOM);
    if (rc == 0) {
        size_t len = (size_t)n;
        unsigned char *buf = tr_arena_alloc(&a.arena, len ? len : 1);
        for (size_t got = 0; got < len;) {
            ssize_t r = getrandom(buf + got, len - got, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) tr_fatal("getrandom: %s", strerror(errno));
            got += (size_t)r;
        }
        jsg_val v = jsg_bytes(buf, len);
        rc = jsg_from_val(iso, &v, result, err);
    }
    tr_arena_deinit(&a.arena);
    return rc;
}

/* ---- the shared key-value store (kv/kv.h) ---- */

/* Argument 0, the key (a string), of a kv call; TR_EINVAL when there is no store here. */
static int kv_key(args *a, guest *g, jsg_val *key, tr_error *err)
{
    if (g->env->kv == NULL)
        return tr_error_set(err, TR_EINVAL, "the key-value store is not available here");
    return arg_string(a, 0, "key", key, err);
}

/* A time to live in ms (argument i): undefined or 0 for none. */
static int kv_ttl(args *a, size_t i, uint64_t *out, tr_error *err)
{
    jsg_val v;
    int rc = arg_val(a, i, &v, err);
    *out = 0;
    if (rc < 0 || v.type == JSG_UNDEFINED || v.type == JSG_NULL) return rc;
    if (v.type != JSG_NUMBER || !(v.u.num >= 0 && v.u.num <= 9e15))
        return tr_error_set(err, TR_EINVAL, "ttlMs must be a number of milliseconds >= 0");
    *out = (uint64_t)v.u.num;
    return 0;
}

static int host_kv_get(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                       const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    guest *g = user;
    WITH_ARGS(iso, argc, argv);
    jsg_val key;
    int rc = kv_key(&a, g, &key, err);
    if (rc == 0) {
        tr_buf val = TR_BUF_INIT;
        if (kv_get(g->env->kv, key.u.str.ptr, key.u.str.len, &val)) {
            jsg_val v = jsg_bytes(val.data ? val.data : "", val.len);
            rc = jsg_from_val(iso, &v, result, err);
        }
        tr_buf_free(&val);
    }
    tr_arena_deinit(&a.arena);
    return rc;
}

static int host_kv_set(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                       const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    (void)result;
    guest *g = user;
    WITH_ARGS(iso, argc, argv);
    jsg_val key, val;
    uint64_t ttl = 0;
    int rc = kv_key(&a, g, &key, err);
    if (rc == 0) rc = arg_val(&a, 1, &val, err);
    if (rc == 0 && val.type != JSG_STRING && val.type != JSG_BYTES)
        rc = tr_error_set(err, TR_EINVAL, "value must be a Uint8Array or a string");
    if (rc == 0) rc = kv_ttl(&a, 2, &ttl, err);
    if (rc == 0) /* a string's UTF-8, or the bytes */
        rc = kv_set(g->env->kv, key.u.str.ptr, key.u.str.len, val.u.str.ptr, val.u.str.len, ttl,
                    err);
    tr_arena_deinit(&a.arena);
    return rc;
}

/* delete (del true) or exists: a boolean. */
static int kv_bool_call(jsg_isolate *iso, guest *g, bool del, size_t argc, const jsg_ref *argv,
                        jsg_ref *result, tr_error *err)
{
    WITH_ARGS(iso, argc, argv);
    jsg_val key;
    int rc = kv_key(&a, g, &key, err);
    if (rc == 0) {
        bool yes = del ? kv_delete(g->env->kv, key.u.str.ptr, key.u.str.len) == 1
                       : kv_exists(g->env->kv, key.u.str.ptr, key.u.str.len);
        jsg_val v = jsg_bool(yes);
        rc = jsg_from_val(iso, &v, result, err);
    }
    tr_arena_deinit(&a.arena);
    return rc;
}

static int host_kv_delete(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                          const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    return kv_bool_call(iso, user, true, argc, argv, result, err);
}

static int host_kv_exists(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                          const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    return kv_bool_call(iso, user, false, argc, argv, result, err);
}

static int host_kv_increment(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                             const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    guest *g = user;
    WITH_ARGS(iso, argc, argv);
    jsg_val key;
    double delta = 1;
    uint64_t ttl = 0;
    int rc = kv_key(&a, g, &key, err);
    if (rc == 0) rc = arg_number(&a, 1, "delta", &delta, err);
    if (rc == 0 && !(delta == (double)(int64_t)delta && delta >= -9007199254740991.0 &&
                     delta <= 9007199254740991.0))
        rc = tr_error_set(err, TR_EINVAL, "delta must be an integer within 2^53");
    if (rc == 0) rc = kv_ttl(&a, 2, &ttl, err);
    int64_t sum = 0;
    if (rc == 0)
        rc = kv_increment(g->env->kv, key.u.str.ptr, key.u.str.len, (int64_t)delta, ttl, &sum, err);
    if (rc == 0) {
        jsg_val v = jsg_number((double)sum);
        rc = jsg_from_val(iso, &v, result, err);
    }
    tr_arena_deinit(&a.arena);
    return rc;
}

typedef struct kv_keys {
    tr_arena *arena;
    jsg_val *items;
    size_t n;
    size_t bytes; /* of the keys copied so far; past GUEST_MAX_KV_LIST_BYTES no more are */
} kv_keys;

static void collect_key(void *arg, const void *key, size_t klen)
{
    kv_keys *k = arg;
    k->bytes += klen;
    if (k->bytes > GUEST_MAX_KV_LIST_BYTES) return;
    k->items[k->n++] = jsg_string(tr_arena_strndup(k->arena, key, klen), klen);
}

static int host_kv_list_keys(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                             const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    guest *g = user;
    WITH_ARGS(iso, argc, argv);
    jsg_val prefix = jsg_string("", 0);
    int rc = g->env->kv ? 0 : kv_key(&a, g, &prefix, err);
    if (rc == 0 && argc > 0) rc = arg_string(&a, 0, "prefix", &prefix, err);
    if (rc == 0) {
        kv_keys k = {&a.arena, tr_arena_alloc(&a.arena, (GUEST_MAX_KV_KEYS + 1) * sizeof(jsg_val)),
                     0, 0};
        size_t found = kv_list_keys(g->env->kv, prefix.u.str.ptr, prefix.u.str.len,
                                    GUEST_MAX_KV_KEYS + 1, collect_key, &k);
        if (found > GUEST_MAX_KV_KEYS || k.bytes > GUEST_MAX_KV_LIST_BYTES) {
            rc = tr_error_set(err, TR_ELIMIT,
                              "more than %d keys or %d MiB of keys start with this prefix; list a "
                              "longer one",
                              GUEST_MAX_KV_KEYS, GUEST_MAX_KV_LIST_BYTES >> 20);
        } else {
            jsg_val v = jsg_array(k.items, k.n);
            rc = jsg_from_val(iso, &v, result, err);
        }
    }
    tr_arena_deinit(&a.arena);
    return rc;
}

/* ---- SQL ---- */

static int sql_call(jsg_isolate *iso, guest *g, bool rows, size_t argc, const jsg_ref *argv,
                    jsg_ref *result, tr_error *err)
{
    WITH_ARGS(iso, argc, argv);
    jsg_val sql;
    tr_error why = {0};
    jsg_ref value = 0;
    int rc = arg_string(&a, 0, "sql", &sql, &why);
    if (rc == 0 && g->env->sql == NULL)
        rc = tr_error_set(&why, TR_ESQL, "no database is available here");
    if (rc == 0 && g->env->sql->remote) { /* cluster mode: on the leader, never blocking */
        rc = guest__sql_remote_call(g, iso, rows, sql.u.str.ptr, sql.u.str.len,
                                    argc > 1 ? argv[1] : 0, result, err);
        tr_arena_deinit(&a.arena);
        return rc;
    }
    if (rc == 0 && guest__sql_must_wait(g->env->sql)) { /* a transaction owns the connection */
        rc = guest__sql_enqueue(g, iso, rows, sql.u.str.ptr, sql.u.str.len,
                                argc > 1 ? argv[1] : 0, result, err);
        tr_arena_deinit(&a.arena);
        return rc;
    }
    if (rc == 0)
        rc = guest_sql_run(g->env->sql, iso, rows, sql.u.str.ptr, sql.u.str.len,
                           argc > 1 ? argv[1] : 0, &value, &why);
    if (rc < 0 && g->env->sql && g->env->sql->busy) { /* another connection holds a lock */
        rc = guest__sql_park(g, iso, rows, sql.u.str.ptr, sql.u.str.len, argc > 1 ? argv[1] : 0,
                             result, err);
        tr_arena_deinit(&a.arena);
        return rc;
    }
    tr_arena_deinit(&a.arena);
    if (jsg_rc_is_fatal(rc)) return tr_error_set(err, rc, "%s", why.msg);
    return guest__settled(iso, rc, value, &why, result, err);
}

static int host_query(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                      const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    return sql_call(iso, user, true, argc, argv, result, err);
}

static int host_execute(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                        const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    return sql_call(iso, user, false, argc, argv, result, err);
}

/* ---- files ---- */

typedef enum fs_op { FS_READ, FS_READDIR, FS_STAT } fs_op;

/* sync: return the value or throw (fsReadFileSync) instead of a promise. */
static int fs_call(jsg_isolate *iso, guest *g, fs_op op, bool sync, size_t argc,
                   const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    WITH_ARGS(iso, argc, argv);
    jsg_val path;
    tr_error why = {0};
    jsg_ref value = 0;
    tr_buf buf = TR_BUF_INIT;
    int rc = arg_string(&a, 0, "path", &path, &why);
    if (rc == 0 && g->env->fs == NULL)
        rc = tr_error_set(&why, TR_EINVAL,
                          "filesystem access is not enabled (start trail with "
                          "--runtime-root-fs DIR)");
    if (rc == 0 && op == FS_READ) {
        rc = guest_fs_read(g->env->fs, path.u.str.ptr, path.u.str.len, g->env->fs_max_read, &buf,
                           &why);
        if (rc == 0) {
            jsg_val v = jsg_bytes(buf.data ? buf.data : "", buf.len);
            rc = jsg_from_val(iso, &v, &value, err);
        }
    } else if (rc == 0 && op == FS_READDIR) {
        rc = guest_fs_readdir(g->env->fs, path.u.str.ptr, path.u.str.len, &buf, &why);
        if (rc == 0) {
            size_t n = 0, pos = 0;
            const char *name;
            guest_fs_type type;
            while (guest_fs_dirent_next(&buf, &pos, &name, &type)) n++;
            jsg_val *items = tr_arena_alloc(&a.arena, (n ? n : 1) * sizeof *items);
            jsg_val *pairs = tr_arena_alloc(&a.arena, (n ? n : 1) * 2 * sizeof *pairs);
            pos = 0;
            for (size_t i = 0; guest_fs_dirent_next(&buf, &pos, &name, &type); i++) {
                pairs[2 * i] = jsg_string(name, strlen(name));
                pairs[2 * i + 1] = jsg_number((double)type);
                items[i] = jsg_array(&pairs[2 * i], 2);
            }
            jsg_val v = jsg_array(items, n);
            rc = jsg_from_val(iso, &v, &value, err);
        }
    } else if (rc == 0) {
        guest_fs_stat st;
        rc = guest_fs_stat_path(g->env->fs, path.u.str.ptr, path.u.str.len, &st, &why);
        if (rc == 0) {
            jsg_val parts[3] = {jsg_number((double)st.type), jsg_number((double)st.size),
                                jsg_number((double)st.mtime_ms)};
            jsg_val v = jsg_array(parts, 3);
            rc = jsg_from_val(iso, &v, &value, err);
        }
    }
    tr_buf_free(&buf);
    tr_arena_deinit(&a.arena);
    if (jsg_rc_is_fatal(rc)) return rc;
    if (!sync) return guest__settled(iso, rc, value, &why, result, err);
    if (rc < 0) {
        if (value) jsg_ref_free(iso, value);
        return tr_error_set(err, rc, "%s", why.msg);
    }
    *result = value;
    return 0;
}

static int host_fs_read_sync(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                             const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    return fs_call(iso, user, FS_READ, true, argc, argv, result, err);
}

static int host_fs_read(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                        const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    return fs_call(iso, user, FS_READ, false, argc, argv, result, err);
}

static int host_fs_readdir(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                           const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    return fs_call(iso, user, FS_READDIR, false, argc, argv, result, err);
}

static int host_fs_stat(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                        const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    return fs_call(iso, user, FS_STAT, false, argc, argv, result, err);
}

/* ---- timers ---- */

static size_t timer_slot(const guest *g, uint32_t id)
{
    size_t mask = g->timer_cap - 1;
    size_t i = (id * 2654435761u) & mask;
    while (g->timers[i] != NULL && g->timers[i]->id != id) i = (i + 1) & mask;
    return i;
}

static void timer_table_put(guest *g, guest_timer *t)
{
    if ((g->ntimers + 1) * 2 > g->timer_cap) {
        guest_timer **old = g->timers;
        size_t old_cap = g->timer_cap;
        g->timer_cap = old_cap ? old_cap * 2 : 16;
        g->timers = tr_calloc(g->timer_cap, sizeof *g->timers);
        for (size_t i = 0; i < old_cap; i++)
            if (old[i]) g->timers[timer_slot(g, old[i]->id)] = old[i];
        tr_free(old);
    }
    g->timers[timer_slot(g, t->id)] = t;
    g->ntimers++;
}

static guest_timer *timer_table_take(guest *g, uint32_t id)
{
    if (g->timer_cap == 0) return NULL;
    size_t i = timer_slot(g, id);
    guest_timer *t = g->timers[i];
    if (t == NULL) return NULL;
    g->timers[i] = NULL;
    g->ntimers--;
    /* Re-insert the rest of the probe run so lookups keep finding them. */
    size_t mask = g->timer_cap - 1;
    for (size_t j = (i + 1) & mask; g->timers[j] != NULL; j = (j + 1) & mask) {
        guest_timer *moved = g->timers[j];
        g->timers[j] = NULL;
        g->timers[timer_slot(g, moved->id)] = moved;
    }
    return t;
}

/* Adds a timer callback's CPU time (it ran from cpu0 to cpu1 on the thread's CPU clock) to the
 * window; past the share, reports the isolate. */
static void timer_account(guest *g, loop *l, uint64_t cpu0, uint64_t cpu1)
{
    uint64_t now = loop_now_ns(l), window = (uint64_t)GUEST_TIMER_CPU_WINDOW_MS * 1000000u;
    if (now - g->timer_window_ns >= window) {
        g->timer_window_ns = now;
        g->timer_window_cpu_ns = cpu0;
        g->timer_cpu_ns = 0;
    }
    g->timer_cpu_ns += cpu1 - cpu0;
    uint64_t worker = cpu1 - g->timer_window_cpu_ns;
    if (g->failure == 0 && g->timer_cpu_ns > (uint64_t)GUEST_MIN_TIMER_CPU_MS * 1000000u &&
        g->timer_cpu_ns * 100 > worker * GUEST_MAX_TIMER_CPU_PCT) {
        tr_log_error(GUEST_LOG_PREFIX "timer callbacks used %llu ms of CPU, more than %d%% of "
                     "the worker's, within %d ms",
                     (unsigned long long)(g->timer_cpu_ns / 1000000u), GUEST_MAX_TIMER_CPU_PCT,
                     GUEST_TIMER_CPU_WINDOW_MS);
        g->failure = TR_ELIMIT;
    }
}

static void on_timer(loop *l, loop_timer *lt)
{
    guest_timer *t = TR_CONTAINER_OF(lt, guest_timer, t);
    guest *g = t->g;
    if (t->repeat) {
        loop_timer_start(l, &t->t, t->ms ? t->ms : 1);
    } else {
        timer_table_take(g, t->id);
    }
    t->firing = true;
    uint64_t cpu0 = tr_thread_cpu_ns();
    jsg_val idv = jsg_number(t->id);
    jsg_ref idref = 0;
    tr_error err = {0};
    int rc = jsg_from_val(g->iso, &idv, &idref, &err);
    if (rc == 0) rc = jsg_call(g->iso, g->fire_timer, g->hooks, 1, &idref, NULL, &err);
    if (idref) jsg_ref_free(g->iso, idref);
    if (rc == 0) rc = jsg_run_jobs(g->iso, &err);
    if (rc < 0) tr_log_error(GUEST_LOG_PREFIX "timer callback failed: %s", err.msg);
    timer_account(g, l, cpu0, tr_thread_cpu_ns());
    t->firing = false;
    bool free_it = !t->repeat || t->cancelled;
    if (free_it) {
        if (t->repeat) loop_timer_stop(l, &t->t);
        tr_free(t);
    }
    if (g->wake) g->wake(g->owner);
}

static int host_timer_start(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                            const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    (void)result;
    guest *g = user;
    WITH_ARGS(iso, argc, argv);
    double id = 0, ms = 0;
    jsg_val repeat;
    int rc = arg_number(&a, 0, "id", &id, err);
    if (rc == 0) rc = arg_number(&a, 1, "delay", &ms, err);
    if (rc == 0) rc = arg_val(&a, 2, &repeat, err);
    tr_arena_deinit(&a.arena);
    if (rc < 0) return rc;
    if (g->env->loop == NULL) return tr_error_set(err, TR_EINVAL, "timers are not available here");
    if (g->ntimers >= GUEST_MAX_TIMERS)
        return tr_error_set(err, TR_ELIMIT, "too many timers (at most %d per isolate)",
                            GUEST_MAX_TIMERS);
    guest_timer *t = tr_calloc(1, sizeof *t);
    t->g = g;
    t->id = (uint32_t)id;
    t->ms = ms > 0 && ms < 2147483647.0 ? (uint32_t)ms : 0;
    t->repeat = repeat.type == JSG_BOOL && repeat.u.b;
    loop_timer_init(&t->t, on_timer);
    timer_table_put(g, t);
    loop_timer_start(g->env->loop, &t->t, t->ms);
    return 0;
}

static void timer_cancel(guest *g, guest_timer *t)
{
    if (t->firing) {
        /* An interval cancelling itself from its own callback: on_timer frees it. */
        t->cancelled = true;
        return;
    }
    loop_timer_stop(g->env->loop, &t->t);
    tr_free(t);
}

static int host_timer_cancel(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                             const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    (void)result;
    guest *g = user;
    WITH_ARGS(iso, argc, argv);
    double id = 0;
    int rc = arg_number(&a, 0, "id", &id, err);
    tr_arena_deinit(&a.arena);
    if (rc < 0) return rc;
    guest_timer *t = timer_table_take(g, (uint32_t)id);
    if (t) timer_cancel(g, t);
    return 0;
}

/* ---- fetch (guest/fetch.c) ---- */

static int host_fetch(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc,
                      const jsg_ref *argv, jsg_ref *result, tr_error *err)
{
    (void)this_;
    guest *g = user;
    return guest_fetch_call(g->env, &g->fetches, iso, g->wake, g->owner, argc, argv, result, err);
}

int guest_take_failure(guest *g)
{
    int rc = jsg_isolate_dead(g->iso) ? 0 : jsg_take_limit_error(g->iso);
    if (rc == 0) rc = g->failure;
    g->failure = 0;
    return rc;
}

/* ---- set-up ---- */

static const struct {
    const char *name;
    jsg_host_fn fn;
} host_fns[] = {
    {"log", host_log},
    {"encodeUtf8", host_encode_utf8},
    {"decodeUtf8", host_decode_utf8},
    {"jsonStringify", host_json_stringify},
    {"jsonParse", host_json_parse},
    {"randomBytes", host_random_bytes},
    {"query", host_query},
    {"execute", host_execute},
    {"txBegin", guest__tx_begin},
    {"txQuery", guest__tx_query},
    {"txExecute", guest__tx_execute},
    {"txCommit", guest__tx_commit},
    {"txRollback", guest__tx_rollback},
    {"txBeginSync", guest__tx_begin_sync},
    {"txQuerySync", guest__tx_query_sync},
    {"txExecuteSync", guest__tx_execute_sync},
    {"txCommitSync", guest__tx_commit_sync},
    {"txRollbackSync", guest__tx_rollback_sync},
    {"timerStart", host_timer_start},
    {"timerCancel", host_timer_cancel},
    {"fsReadFile", host_fs_read},
    {"fsReadFileSync", host_fs_read_sync},
    {"fsReadDir", host_fs_readdir},
    {"fsStat", host_fs_stat},
    {"fetch", host_fetch},
    {"kvGet", host_kv_get},
    {"kvSet", host_kv_set},
    {"kvDelete", host_kv_delete},
    {"kvExists", host_kv_exists},
    {"kvIncrement", host_kv_increment},
    {"kvListKeys", host_kv_list_keys},
};

int guest_new(jsg_isolate *iso, guest_env *env, guest_wake_fn wake, void *owner, guest **out,
              tr_error *err)
{
    guest *g = tr_calloc(1, sizeof *g);
    g->iso = iso;
    g->env = env;
    g->wake = wake;
    g->owner = owner;
    jsg_val empty = jsg_object(NULL, 0);
    int rc = jsg_from_val(iso, &empty, &g->host_obj, err);
    for (size_t i = 0; rc == 0 && i < TR_ARRAY_LEN(host_fns); i++)
        rc = jsg_define_function(iso, g->host_obj, host_fns[i].name, host_fns[i].fn, g, err);
    if (rc == 0) rc = jsg_set(iso, jsg_global(iso), "__trailhost", 11, g->host_obj, err);
    if (rc == 0) {
        const tr_embedded_file *p = &guest_prelude_files[0];
        rc = jsg_eval(iso, p->start, (size_t)(p->end - p->start), "trail:prelude.js", &g->hooks,
                      err);
    }
    if (rc == 0) rc = jsg_get(iso, g->hooks, "fireTimer", 9, &g->fire_timer, err);
    if (rc < 0) {
        guest_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

guest_env *guest__env(guest *g)
{
    return g->env;
}

void guest__wake(guest *g)
{
    if (g->wake) g->wake(g->owner);
}

void guest_free(guest *g)
{
    if (g == NULL) return;
    guest_fetch_set_cancel(&g->fetches, g->iso);
    guest__sql_forget(g);
    for (size_t i = 0; i < g->timer_cap; i++) {
        guest_timer *t = g->timers[i];
        if (t == NULL) continue;
        if (g->env->loop) loop_timer_stop(g->env->loop, &t->t);
        tr_free(t);
    }
    tr_free(g->timers);
    if (!jsg_isolate_dead(g->iso)) {
        if (g->fire_timer) jsg_ref_free(g->iso, g->fire_timer);
        if (g->hooks) jsg_ref_free(g->iso, g->hooks);
        if (g->host_obj) jsg_ref_free(g->iso, g->host_obj);
    }
    tr_free(g);
}
