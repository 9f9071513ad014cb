/* component/native_host.c: running compiled components (docs/guest-abi.md, "Compiled
 * components"): their instances on a worker, the `trail` imports, the requests and job runs in
 * a guest's hands, and the host calls it waits for.
 *
 * DESIGN: a comp_native_inst (wasm2c's `struct Z_trail_instance_t`, the pointer every `trail`
 * import receives) owns one wasm2c instance of the module. Every export call is one wrt_call()
 * with the CPU budget armed: the generated code's back edges count down fuel and call
 * comp_native_tick(), which traps the call once the thread's CPU time passes the deadline. The
 * host never calls the guest from inside an import: `respond` and `job_done` only record the
 * answer, sent once the export returned; results of host calls (SQL, timers, files) are
 * delivered by `trail_complete`, called from the worker's loop (a 0 ms timer: the "pump"), so
 * other requests of the worker run between them. A trap, the CPU budget or an allocation failure
 * that leaves the instance unusable drops the wasm2c instance: whatever waits on it is answered
 * (500 or 503) and the next request makes a fresh one.
 *
 * Statements run on the worker's connection through guest_sql_run_vals() with the same allow-list
 * as JS; one that must wait (a JS transaction holds the connection, or another connection holds
 * the write lock) is retried from the loop and never blocks the worker.
 *
 * Thread: owning worker only; a scratch instance (comp__native_load) on the loading thread. */
#include "component/native_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "guest/fetch.h"
#include "guest/fs.h"
#include "wasm/wasi/wasi.h"

/* A request or a job run the guest has been given and not yet answered. */
typedef struct waiting {
    loop_timer deadline; /* first: the loop hands us &deadline */
    struct waiting *prev, *next;
    struct Z_trail_instance_t *ni;
    uint32_t id;
    http_response *res; /* a request: res and req; a job run: done and ud */
    const http_request *req;
    comp_job_done_fn done;
    void *ud;
    bool parked;   /* its deadline runs */
    bool answered; /* respond()/job_done() was called: the answer below waits to be sent */
    jsg_val answer; /* a request's response, in req's arena */
    bool job_ok;
    char *job_msg;
} waiting;

enum { H_PENDING, H_READY };

/* A host call's handle. */
typedef struct handle {
    loop_timer timer; /* first: timers and SQL retries */
    struct handle *next;
    struct Z_trail_instance_t *ni;
    uint32_t id;
    int state;
    bool ok;
    bool notify; /* ready, and trail_complete not called yet */
    tr_buf result;
    /* a statement (or a BEGIN: begin) waiting for the connection */
    bool begin;
    uint32_t tx; /* the statement's transaction; 0: none */
    bool rows;
    char *sql;
    size_t sql_len;
    tr_buf params;
    uint64_t since_ns;
    unsigned retry_ms;
    bool in_fetch; /* a transfer will complete it (guest/fetch.h) */
    bool released; /* the guest let go of it while in_fetch: freed when the transfer ends */
} handle;

struct Z_trail_instance_t {
    comp_module *mod;
    const comp_native *nat;
    guest_env *env; /* NULL for the scratch instance that reads the manifest */
    void *inst;     /* wasm2c's instance (fuel at offset 0); NULL once dropped */
    wasm_rt_memory_t *mem;
    wasi_ctx wasi;
    tr_buf manifest; /* what trail_init gave */
    bool got_manifest;
    bool in_init;
    waiting *waits;
    size_t nwaits;
    handle *handles;
    size_t nhandles;
    uint32_t next_id;
    loop_timer pump;
    bool pumping; /* inside pump(): no re-entry */
    guest_fetch_set fetches; /* transfers in flight */
    /* the CPU share of trail_complete calls (GUEST_MAX_TIMER_CPU_PCT): the window's start (loop
     * clock and the thread's CPU time) and the CPU the calls used in it */
    uint64_t cb_window_ns, cb_window_cpu_ns, cb_cpu_ns;
};

/* ---- the CPU budget ---- */

/* The export call running on this thread: its budget, and the thread CPU time at which it ends.
 * The clock is read lazily (CLOCK_THREAD_CPUTIME_ID is a system call, not a vDSO read): at the
 * first tick or the first host call that needs the deadline, so a short call reads it never, as
 * the JS engine's budget starts at its first poll. The budget thus counts from there; the
 * COMP_NATIVE_FUEL back edges before (about a millisecond) are not counted. */
static __thread uint64_t tick_budget_ns, tick_deadline_ns;
static __thread bool tick_tripped;

/* The running call's deadline on the thread's CPU clock (armed now if it was not). */
static uint64_t call_deadline(void)
{
    if (tick_deadline_ns == 0 && tick_budget_ns != 0)
        tick_deadline_ns = tr_thread_cpu_ns() + tick_budget_ns;
    return tick_deadline_ns;
}

void comp_native_tick(int64_t *fuel)
{
    *fuel = COMP_NATIVE_FUEL;
    if (tick_deadline_ns == 0) {
        call_deadline();
    } else if (tr_thread_cpu_ns() > tick_deadline_ns) {
        tick_tripped = true;
        wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
    }
}

/* ---- calling the guest ---- */

enum { C_INSTANTIATE, C_INITIALIZE, C_INIT, C_ALLOC, C_HTTP, C_JOB, C_COMPLETE };

typedef struct gcall {
    struct Z_trail_instance_t *ni;
    int what;
    uint32_t a, b, c, d, ret;
} gcall;

static void gcall_run(void *p)
{
    gcall *c = p;
    const comp_native *n = c->ni->nat;
    void *inst = c->ni->inst;
    switch (c->what) {
    case C_INSTANTIATE:
        n->instantiate(inst, c->ni, &c->ni->wasi);
        break;
    case C_INITIALIZE:
        n->initialize(inst);
        break;
    case C_INIT:
        n->init(inst);
        break;
    case C_ALLOC:
        c->ret = n->alloc(inst, c->a);
        break;
    case C_HTTP:
        n->http(inst, c->a, c->b, c->c, c->d);
        break;
    case C_JOB:
        n->job(inst, c->a, c->b);
        break;
    case C_COMPLETE:
        n->complete(inst, c->a);
        break;
    }
}

/* One export call with the budget armed. TR_EINTERRUPTED past the budget, TR_ETRAP for a trap;
 * after either the instance must be dropped. */
static int call_guest(struct Z_trail_instance_t *ni, gcall *c, tr_error *err)
{
    c->ni = ni;
    *(int64_t *)ni->inst = COMP_NATIVE_FUEL;
    tick_tripped = false;
    tick_budget_ns = ni->mod->limits.cpu_budget_ms * 1000000u;
    tick_deadline_ns = 0;
    wasm_rt_trap_t trap = wrt_call(ni->mem, gcall_run, c);
    tick_budget_ns = tick_deadline_ns = 0;
    if (trap == WASM_RT_TRAP_NONE) return 0;
    if (tick_tripped)
        return tr_error_set(err, TR_EINTERRUPTED,
                            "the handler exceeded its CPU time limit of %llu ms "
                            "(runtime.cpu_budget_ms)",
                            (unsigned long long)ni->mod->limits.cpu_budget_ms);
    return tr_error_set(err, TR_ETRAP, "%s", wrt_trap_name(trap));
}

/* ---- the instance ---- */

static void wasi_output(void *user, int fd, const char *data, size_t len)
{
    (void)user;
    (void)fd;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r')) len--;
    if (len == 0) return;
    tr_buf line = TR_BUF_INIT;
    guest_log_escape(data, TR_MIN(len, GUEST_LOG_MAX_BYTES), &line);
    tr_log(fd == 2 ? TR_LOG_ERROR : TR_LOG_INFO, GUEST_LOG_PREFIX "%.*s", (int)line.len,
           line.data ? line.data : "");
    tr_buf_free(&line);
}

static void handle_free(struct Z_trail_instance_t *ni, handle *h)
{
    for (handle **p = &ni->handles; *p; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
    ni->nhandles--;
    if (ni->env) loop_timer_stop(ni->env->loop, &h->timer);
    tr_buf_free(&h->result);
    tr_buf_free(&h->params);
    tr_free(h->sql);
    tr_free(h);
}

static void unwait(struct Z_trail_instance_t *ni, waiting *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        ni->waits = w->next;
    if (w->next) w->next->prev = w->prev;
    ni->nwaits--;
    if (w->parked) loop_timer_stop(ni->env->loop, &w->deadline);
    tr_free(w->job_msg);
    tr_free(w);
}

/* Answers everything waiting on the instance with status/msg (job runs fail with msg) and
 * forgets it. */
static void fail_waits(struct Z_trail_instance_t *ni, int status, const char *msg)
{
    while (ni->waits) {
        waiting *w = ni->waits;
        if (w->res) {
            http_response_send_error(w->res, status, msg);
        } else {
            tr_error e;
            tr_error_set(&e, TR_EIO, "%s", msg);
            w->done(w->ud, TR_EIO, &e);
        }
        unwait(ni, w);
    }
}

static void drop_instance(struct Z_trail_instance_t *ni)
{
    guest_fetch_set_cancel(&ni->fetches, NULL); /* before the handles they complete */
    while (ni->handles) handle_free(ni, ni->handles);
    if (ni->env) guest_sql_tx_forget(ni->env->sql, ni);
    if (ni->env) loop_timer_stop(ni->env->loop, &ni->pump);
    if (ni->inst) {
        ni->nat->free_instance(ni->inst);
        tr_free(ni->inst);
        ni->inst = NULL;
    }
    ni->mem = NULL;
}

static int create_instance(struct Z_trail_instance_t *ni, tr_error *err)
{
    const comp_native *n = ni->nat;
    ni->got_manifest = false; /* a recreated instance registers again (and is not asked) */
    ni->inst = tr_calloc(1, n->instance_size());
    ni->mem = n->memory(ni->inst);
    wasi_ctx_init(&ni->wasi, ni->mem);
    ni->wasi.output = wasi_output;
    ni->wasi.output_user = ni;
    gcall c = {.what = C_INSTANTIATE};
    int rc = call_guest(ni, &c, err);
    uint32_t cap = (uint32_t)TR_MIN(ni->mod->limits.memory_limit / WRT_PAGE_SIZE, 65536);
    if (rc == 0 && ni->mem->pages > cap)
        rc = tr_error_set(err, TR_ELIMIT,
                          "the module's initial memory of %llu MiB is more than "
                          "runtime.memory_limit_mb (%zu MiB)",
                          (unsigned long long)ni->mem->pages * WRT_PAGE_SIZE >> 20,
                          ni->mod->limits.memory_limit >> 20);
    if (rc == 0) wrt_memory_cap(ni->mem, cap);
    if (rc == 0 && n->initialize) {
        c = (gcall){.what = C_INITIALIZE};
        rc = call_guest(ni, &c, err);
    }
    if (rc == 0) {
        ni->in_init = true;
        c = (gcall){.what = C_INIT};
        rc = call_guest(ni, &c, err);
        ni->in_init = false;
    }
    if (rc == 0 && !ni->got_manifest)
        rc = tr_error_set(err, TR_EINVAL, "trail_init() did not call trail.manifest()");
    if (rc < 0) {
        if (rc == TR_ETRAP) {
            char m[1100];
            snprintf(m, sizeof m, "%s", err->msg);
            tr_error_set(err, TR_ETRAP, "the module trapped while starting: %s", m);
        }
        drop_instance(ni);
    }
    return rc;
}

static void pump(loop *l, loop_timer *t);

static struct Z_trail_instance_t *inst_alloc(comp_module *m, guest_env *env)
{
    struct Z_trail_instance_t *ni = tr_calloc(1, sizeof *ni);
    ni->mod = comp_module_ref(m);
    ni->nat = m->native;
    ni->env = env;
    ni->next_id = 1;
    loop_timer_init(&ni->pump, pump);
    return ni;
}

int comp__native_inst_new(comp_module *m, guest_env *env, comp_native_inst **out, tr_error *err)
{
    struct Z_trail_instance_t *ni = inst_alloc(m, env);
    int rc = create_instance(ni, err);
    if (rc < 0) {
        comp_module_unref(ni->mod);
        tr_buf_free(&ni->manifest);
        tr_free(ni);
        return rc;
    }
    *out = ni;
    return 0;
}

void comp__native_inst_free(comp_native_inst *ni)
{
    if (ni == NULL) return;
    fail_waits(ni, 503, "the server is shutting down");
    drop_instance(ni);
    comp_module_unref(ni->mod);
    tr_buf_free(&ni->manifest);
    tr_free(ni);
}

size_t comp__native_parked(const comp_native_inst *ni)
{
    return ni->nwaits;
}

/* ---- failures and answers ---- */

/* After an export call: rc < 0 drops the instance, answering `w` (the request or run the call
 * was for; may be NULL) and everything else waiting on it. */
static void failed_call(struct Z_trail_instance_t *ni, waiting *w, int rc, const tr_error *err)
{
    const char *name = ni->mod->name;
    int status = rc == TR_EINTERRUPTED || rc == TR_ELIMIT ? 503 : 500;
    char msg[1100];
    if (rc == TR_EINTERRUPTED)
        snprintf(msg, sizeof msg, "%s", err->msg);
    else if (rc == TR_ETRAP)
        snprintf(msg, sizeof msg, "the handler's instance crashed (WebAssembly trap)");
    else
        snprintf(msg, sizeof msg, "%s", err->msg);
    if (w && w->res)
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s%s%s; the instance is replaced", name,
                     (int)w->req->method.len, w->req->method.ptr,
                     (int)TR_MIN(w->req->path.len, 200), w->req->path.ptr, msg,
                     rc == TR_ETRAP ? ": " : "", rc == TR_ETRAP ? err->msg : "");
    else
        tr_log_error(GUEST_LOG_PREFIX "%s: %s%s%s; the instance is replaced", name, msg,
                     rc == TR_ETRAP ? ": " : "", rc == TR_ETRAP ? err->msg : "");
    if (w && w->res) {
        http_response_send_error(w->res, status, msg);
    } else if (w) {
        tr_error e = *err;
        if (rc == TR_ETRAP) tr_error_set(&e, TR_ETRAP, "the job's instance trapped: %s", err->msg);
        w->done(w->ud, rc, &e);
    }
    if (w) unwait(ni, w);
    fail_waits(ni, status,
               rc == TR_EINTERRUPTED ? "the instance was reset after a handler exceeded its CPU "
                                       "time limit"
               : rc == TR_ELIMIT ? msg
                                 : "the instance was reset after a WebAssembly trap");
    drop_instance(ni);
}

/* Sends every recorded answer. Answers are taken off the list first: sending may run the
 * connection's next request, which may call into this instance again. */
static void send_answers(struct Z_trail_instance_t *ni)
{
    for (;;) {
        waiting *w = ni->waits;
        while (w && !w->answered) w = w->next;
        if (w == NULL) return;
        if (w->prev)
            w->prev->next = w->next;
        else
            ni->waits = w->next;
        if (w->next) w->next->prev = w->prev;
        ni->nwaits--;
        if (w->parked) loop_timer_stop(ni->env->loop, &w->deadline);
        if (w->res) {
            comp__respond(ni->mod, w->req, w->res, &w->answer);
        } else if (w->job_ok) {
            w->done(w->ud, 0, NULL);
        } else {
            tr_error e;
            tr_error_set(&e, TR_EJS, "%s", w->job_msg ? w->job_msg : "the job failed");
            w->done(w->ud, TR_EJS, &e);
        }
        tr_free(w->job_msg);
        tr_free(w);
    }
}

static waiting *find_wait(struct Z_trail_instance_t *ni, uint32_t id)
{
    for (waiting *w = ni->waits; w; w = w->next)
        if (w->id == id) return w;
    return NULL;
}

static void on_deadline(loop *l, loop_timer *t);

static waiting *new_wait(struct Z_trail_instance_t *ni)
{
    waiting *w = tr_calloc(1, sizeof *w);
    w->ni = ni;
    loop_timer_init(&w->deadline, on_deadline);
    w->id = ni->next_id++;
    if (ni->next_id == 0 || ni->next_id > INT32_MAX) ni->next_id = 1;
    w->next = ni->waits;
    if (ni->waits) ni->waits->prev = w;
    ni->waits = w;
    ni->nwaits++;
    return w;
}

static void on_cancel(void *ud)
{
    waiting *w = ud;
    /* the response is gone; a later respond() finds nothing to answer */
    unwait(w->ni, w);
}

static void on_deadline(loop *l, loop_timer *t)
{
    (void)l;
    waiting *w = (waiting *)t;
    struct Z_trail_instance_t *ni = w->ni;
    w->parked = false;
    if (w->res) {
        char msg[160];
        snprintf(msg, sizeof msg, "the handler did not respond within %llu ms (runtime.deadline_ms)",
                 (unsigned long long)ni->mod->limits.deadline_ms);
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s", ni->mod->name, (int)w->req->method.len,
                     w->req->method.ptr, (int)TR_MIN(w->req->path.len, 200), w->req->path.ptr,
                     msg);
        http_response_send_error(w->res, 503, msg);
    } else {
        tr_error e;
        tr_error_set(&e, TR_ETIMEDOUT, "the job did not finish within its deadline");
        w->done(w->ud, TR_ETIMEDOUT, &e);
    }
    unwait(ni, w);
}

/* ---- encoding ---- */

static void put_u32(tr_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    tr_buf_append(b, x, 4);
}

static void put_u64(tr_buf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(tr_buf *b, const char *s, size_t n)
{
    put_u32(b, (uint32_t)n);
    tr_buf_append(b, s, n);
}

typedef struct reader {
    const unsigned char *p;
    size_t len, pos;
    bool bad;
} reader;

static uint32_t get_u32(reader *r)
{
    if (r->len - r->pos < 4) {
        r->bad = true;
        r->pos = r->len;
        return 0;
    }
    const unsigned char *p = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(reader *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

/* A str: (ptr, len) into r's bytes. */
static const char *get_str(reader *r, size_t *len)
{
    uint32_t n = get_u32(r);
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        r->pos = r->len;
        *len = 0;
        return "";
    }
    const char *s = (const char *)r->p + r->pos;
    r->pos += n;
    *len = n;
    return s;
}

/* A count of items each taking at least min_bytes: more than the bytes left is malformed (and
 * never allocated for). */
static uint32_t get_count(reader *r, size_t min_bytes)
{
    uint32_t n = get_u32(r);
    if (!r->bad && (uint64_t)n * min_bytes > r->len - r->pos) {
        r->bad = true;
        r->pos = r->len;
        return 0;
    }
    return r->bad ? 0 : n;
}

static void encode_request(const http_request *req, tr_buf *b)
{
    put_str(b, req->method.ptr, req->method.len);
    put_str(b, req->target.ptr, req->target.len);
    put_str(b, req->path.ptr, req->path.len);
    put_str(b, req->query.ptr, req->query.len);
    put_u32(b, (uint32_t)req->nparams);
    for (size_t i = 0; i < req->nparams; i++) {
        put_str(b, req->params[i].name.ptr, req->params[i].name.len);
        /* percent-decoded, as JS handlers get them */
        const char *s = req->params[i].value.ptr;
        size_t n = req->params[i].value.len, at = b->len;
        put_u32(b, 0);
        size_t out = 0;
        for (size_t k = 0; k < n; k++) {
            int hi = -1, lo = -1;
            if (s[k] == '%' && k + 2 < n) {
                char c1 = s[k + 1], c2 = s[k + 2];
                hi = c1 >= '0' && c1 <= '9' ? c1 - '0'
                     : (c1 | 32) >= 'a' && (c1 | 32) <= 'f' ? (c1 | 32) - 'a' + 10
                                                           : -1;
                lo = c2 >= '0' && c2 <= '9' ? c2 - '0'
                     : (c2 | 32) >= 'a' && (c2 | 32) <= 'f' ? (c2 | 32) - 'a' + 10
                                                           : -1;
            }
            if (hi >= 0 && lo >= 0) {
                tr_buf_append_char(b, (char)(hi << 4 | lo));
                k += 2;
            } else {
                tr_buf_append_char(b, s[k]);
            }
            out++;
        }
        unsigned char *lp = (unsigned char *)b->data + at;
        lp[0] = (unsigned char)out;
        lp[1] = (unsigned char)(out >> 8);
        lp[2] = (unsigned char)(out >> 16);
        lp[3] = (unsigned char)(out >> 24);
    }
    put_u32(b, (uint32_t)req->nheaders);
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        put_u32(b, (uint32_t)h->name.len);
        for (size_t k = 0; k < h->name.len; k++) {
            char c = h->name.ptr[k];
            tr_buf_append_char(b, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
        }
        put_str(b, h->value.ptr, h->value.len);
    }
    put_str(b, req->body.len ? req->body.ptr : "", req->body.len);
}

/* Rows (guest_sql_run_vals' shape) or a count into the guest's encoding. */
static void put_val(tr_buf *b, const jsg_val *v)
{
    switch (v->type) {
    case JSG_BIGINT:
        tr_buf_append_char(b, 1);
        put_u64(b, (uint64_t)v->u.big);
        break;
    case JSG_NUMBER: {
        uint64_t bits;
        memcpy(&bits, &v->u.num, 8);
        tr_buf_append_char(b, 2);
        put_u64(b, bits);
        break;
    }
    case JSG_STRING:
        tr_buf_append_char(b, 3);
        put_str(b, v->u.str.ptr, v->u.str.len);
        break;
    case JSG_BYTES:
        tr_buf_append_char(b, 4);
        put_str(b, v->u.str.ptr, v->u.str.len);
        break;
    default:
        tr_buf_append_char(b, 0);
        break;
    }
}

/* SQLite's most parameters of one statement (SQLITE_MAX_VARIABLE_NUMBER's default). */
#define NATIVE_MAX_SQL_PARAMS 32766

/* Decodes SQL parameters into an array value in a; false when malformed. */
static bool get_params(reader *r, tr_arena *a, jsg_val *out)
{
    if (r->len == 0) {
        *out = jsg_array(NULL, 0);
        return true;
    }
    uint32_t n = get_count(r, 1);
    if (n > NATIVE_MAX_SQL_PARAMS) return false; /* SQLite binds no more; never allocated for */
    jsg_val *items = tr_arena_alloc(a, (n ? n : 1) * sizeof *items);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        if (r->pos >= r->len) {
            r->bad = true;
            break;
        }
        unsigned char tag = r->p[r->pos++];
        size_t len;
        const char *s;
        switch (tag) {
        case 0:
            items[i] = jsg_null();
            break;
        case 1:
            items[i] = jsg_bigint((int64_t)get_u64(r));
            break;
        case 2: {
            uint64_t bits = get_u64(r);
            double d;
            memcpy(&d, &bits, 8);
            items[i] = jsg_number(d);
            break;
        }
        case 3:
            s = get_str(r, &len);
            items[i] = jsg_string(s, len);
            break;
        case 4:
            s = get_str(r, &len);
            items[i] = jsg_bytes(s, len);
            break;
        default:
            r->bad = true;
        }
    }
    *out = jsg_array(items, n);
    return !r->bad && r->pos == r->len;
}

/* ---- handles ---- */

static handle *find_handle(struct Z_trail_instance_t *ni, uint32_t id)
{
    for (handle *h = ni->handles; h; h = h->next)
        if (h->id == id && !h->released) return h;
    return NULL;
}

/* The guest is done with h: freed now, or when its transfer ends. */
static void handle_release(struct Z_trail_instance_t *ni, handle *h)
{
    if (h->in_fetch)
        h->released = true;
    else
        handle_free(ni, h);
}

static handle *new_handle(struct Z_trail_instance_t *ni)
{
    if (ni->nhandles >= COMP_NATIVE_MAX_HANDLES) return NULL;
    handle *h = tr_calloc(1, sizeof *h);
    h->ni = ni;
    loop_timer_init(&h->timer, NULL); /* a zeroed timer would look active */
    h->id = ni->next_id++;
    if (ni->next_id == 0 || ni->next_id > INT32_MAX) ni->next_id = 1;
    h->next = ni->handles;
    ni->handles = h;
    ni->nhandles++;
    return h;
}

static void ready(struct Z_trail_instance_t *ni, handle *h, bool ok)
{
    h->state = H_READY;
    h->ok = ok;
    h->notify = true;
    if (ni->env && ni->nat->complete && !loop_timer_active(&ni->pump))
        loop_timer_start(ni->env->loop, &ni->pump, 0);
}

static void ready_error(struct Z_trail_instance_t *ni, handle *h, const char *msg)
{
    tr_buf_reset(&h->result);
    tr_buf_append_str(&h->result, msg);
    ready(ni, h, false);
}

/* Counts a trail_complete call that started at the thread's CPU time cpu0 against the window
 * (as guest.c counts JS timers): a guest that keeps re-arming short waits with heavy callbacks
 * would otherwise hold its worker, each callback within the CPU budget. Past the share, the
 * instance is replaced and true returned. */
static bool callbacks_over_share(struct Z_trail_instance_t *ni, uint64_t cpu0)
{
    uint64_t cpu1 = tr_thread_cpu_ns(), now = loop_now_ns(ni->env->loop);
    uint64_t window = (uint64_t)GUEST_TIMER_CPU_WINDOW_MS * 1000000u;
    if (now - ni->cb_window_ns >= window) {
        ni->cb_window_ns = now;
        ni->cb_window_cpu_ns = cpu0;
        ni->cb_cpu_ns = 0;
    }
    ni->cb_cpu_ns += cpu1 - cpu0;
    uint64_t worker = cpu1 - ni->cb_window_cpu_ns;
    if (ni->cb_cpu_ns <= (uint64_t)GUEST_MIN_TIMER_CPU_MS * 1000000u ||
        ni->cb_cpu_ns * 100 <= worker * GUEST_MAX_TIMER_CPU_PCT)
        return false;
    tr_error err;
    tr_error_set(&err, TR_ELIMIT,
                 "the instance's callbacks used more than %d%% of its worker's CPU (over %d ms "
                 "within %d ms)",
                 GUEST_MAX_TIMER_CPU_PCT, GUEST_MIN_TIMER_CPU_MS, GUEST_TIMER_CPU_WINDOW_MS);
    ni->cb_cpu_ns = 0;
    failed_call(ni, NULL, TR_ELIMIT, &err);
    return true;
}

/* Delivers ready results: trail_complete(handle) for each, then the answers they led to. */
static void pump(loop *l, loop_timer *t)
{
    (void)l;
    struct Z_trail_instance_t *ni = (struct Z_trail_instance_t *)((char *)t -
                                                                   offsetof(struct Z_trail_instance_t, pump));
    if (ni->pumping || ni->inst == NULL) return;
    ni->pumping = true;
    /* the ids ready now; those that become ready meanwhile wait for the next round */
    size_t n = 0;
    for (handle *h = ni->handles; h; h = h->next) n += h->notify;
    uint32_t *ids = tr_malloc((n ? n : 1) * sizeof *ids);
    n = 0;
    for (handle *h = ni->handles; h; h = h->next)
        if (h->notify) ids[n++] = h->id;
    for (size_t i = 0; i < n && ni->inst; i++) {
        handle *h = find_handle(ni, ids[i]);
        if (h == NULL || !h->notify) continue;
        h->notify = false;
        gcall c = {.what = C_COMPLETE, .a = ids[i]};
        tr_error err = {0};
        uint64_t cpu0 = tr_thread_cpu_ns();
        int rc = call_guest(ni, &c, &err);
        if (rc < 0) {
            failed_call(ni, NULL, rc, &err);
            break;
        }
        if (callbacks_over_share(ni, cpu0)) break;
    }
    tr_free(ids);
    ni->pumping = false;
    send_answers(ni);
}

/* ---- statements ---- */

/* Opens h's transaction now; false when it must wait. */
static bool run_begin(struct Z_trail_instance_t *ni, handle *h)
{
    bool wait = false;
    uint32_t id = 0;
    tr_error err = {0};
    int rc = guest_sql_tx_begin_for(ni->env->sql, ni->env->loop, ni, &wait, &id, &err);
    if (rc == 0 && wait) return false;
    tr_buf_reset(&h->result);
    if (rc < 0)
        tr_buf_append_str(&h->result, err.msg);
    else
        put_u32(&h->result, id);
    ready(ni, h, rc == 0);
    return true;
}

/* Runs h's statement now; false when it must wait (and then it is retried from the loop). */
static bool run_sql(struct Z_trail_instance_t *ni, handle *h, uint64_t cpu_deadline_ns)
{
    if (h->begin) return run_begin(ni, h);
    guest_sql *s = ni->env->sql;
    tr_error err = {0};
    int rc = 0;
    if (h->tx != 0) {
        rc = guest_sql_tx_check(s, ni, h->tx, &err);
    } else if (guest_sql_must_wait(s)) {
        return false;
    }
    tr_arena a;
    tr_arena_init(&a, 16384);
    reader r = {(const unsigned char *)h->params.data, h->params.len, 0, false};
    jsg_val params, out;
    if (rc == 0)
        rc = get_params(&r, &a, &params)
                 ? guest_sql_run_vals(s, h->rows, h->sql, h->sql_len, &params, cpu_deadline_ns,
                                      ni->mod->limits.memory_limit, &a, &out, &err)
                 : tr_error_set(&err, TR_EINVAL, "malformed SQL parameters (docs/guest-abi.md)");
    if (h->tx != 0) guest_sql_tx_after_statement(s);
    if (rc < 0 && h->tx == 0 && guest_sql_busy(s)) {
        tr_arena_deinit(&a);
        return false;
    }
    tr_buf_reset(&h->result);
    if (rc < 0) {
        tr_buf_append_str(&h->result, err.msg);
    } else if (!h->rows) {
        put_u64(&h->result, (uint64_t)out.u.big);
    } else {
        const jsg_val *names = &out.u.arr.items[0];
        put_u32(&h->result, (uint32_t)names->u.arr.len);
        for (size_t i = 0; i < names->u.arr.len; i++)
            put_str(&h->result, names->u.arr.items[i].u.str.ptr, names->u.arr.items[i].u.str.len);
        put_u32(&h->result, (uint32_t)(out.u.arr.len - 1));
        for (size_t i = 1; i < out.u.arr.len; i++)
            for (size_t k = 0; k < out.u.arr.items[i].u.arr.len; k++)
                put_val(&h->result, &out.u.arr.items[i].u.arr.items[k]);
    }
    tr_arena_deinit(&a);
    tr_free(h->sql);
    h->sql = NULL;
    tr_buf_free(&h->params);
    ready(ni, h, rc == 0);
    return true;
}

/* The longest a statement or BEGIN waits for the worker's connection (a transaction of this
 * worker holds it); a transaction is rolled back after 30 s anyway. */
#define NATIVE_SQL_MAX_WAIT_MS 60000

/* A statement that waits: for a transaction of the worker to end, or for another connection's
 * lock (at most DB_BUSY_TIMEOUT_MS, as for JS). */
static void retry_sql(loop *l, loop_timer *t)
{
    handle *h = (handle *)t;
    struct Z_trail_instance_t *ni = h->ni;
    uint64_t budget = ni->mod->limits.cpu_budget_ms * 1000000u;
    if (run_sql(ni, h, tr_thread_cpu_ns() + budget)) return;
    uint64_t waited_ms = (tr_now_ns() - h->since_ns) / 1000000u;
    bool busy = guest_sql_busy(ni->env->sql);
    if ((busy && waited_ms >= DB_BUSY_TIMEOUT_MS) || waited_ms >= NATIVE_SQL_MAX_WAIT_MS) {
        char msg[200];
        if (busy)
            snprintf(msg, sizeof msg,
                     "database is locked: another connection held the lock this statement "
                     "needs for more than %d ms",
                     DB_BUSY_TIMEOUT_MS);
        else
            snprintf(msg, sizeof msg,
                     "the worker's database connection was taken by a transaction for more "
                     "than %d ms",
                     NATIVE_SQL_MAX_WAIT_MS);
        tr_free(h->sql);
        h->sql = NULL;
        ready_error(ni, h, msg);
        return;
    }
    h->retry_ms = TR_MIN(h->retry_ms * 2, 50u);
    loop_timer_start(l, &h->timer, h->retry_ms);
}

/* Runs h now, or from the loop when it must wait. */
static void start_sql(struct Z_trail_instance_t *ni, handle *h)
{
    h->since_ns = tr_now_ns();
    if (!run_sql(ni, h, call_deadline())) {
        loop_timer_init(&h->timer, retry_sql);
        h->retry_ms = 2;
        loop_timer_start(ni->env->loop, &h->timer, h->retry_ms);
    }
}

/* ---- the imports (module "trail") ---- */

static const char *guest_bytes(struct Z_trail_instance_t *ni, uint32_t ptr, uint32_t len)
{
    if (ni->mem == NULL) return NULL;
    const char *p = wrt_mem_ptr(ni->mem, ptr, len);
    return p ? p : NULL;
}

#define ERR_BAD_POINTER ((uint32_t)-1)
#define ERR_TOO_MANY    ((uint32_t)-2)

void Z_trailZ_log(struct Z_trail_instance_t *ni, uint32_t level, uint32_t ptr, uint32_t len)
{
    bool saved = wrt_host_enter();
    const char *msg = guest_bytes(ni, ptr, len);
    if (msg != NULL) {
        static const tr_log_level levels[] = {TR_LOG_DEBUG, TR_LOG_INFO, TR_LOG_WARN,
                                              TR_LOG_ERROR};
        tr_buf line = TR_BUF_INIT;
        guest_log_escape(msg, TR_MIN(len, GUEST_LOG_MAX_BYTES), &line);
        tr_log(levels[level <= 3 ? level : 1], GUEST_LOG_PREFIX "%.*s", (int)line.len,
               line.data ? line.data : "");
        tr_buf_free(&line);
    }
    wrt_host_leave(saved);
}

uint32_t Z_trailZ_manifest(struct Z_trail_instance_t *ni, uint32_t ptr, uint32_t len)
{
    bool saved = wrt_host_enter();
    uint32_t rc = 0;
    const char *p = guest_bytes(ni, ptr, len);
    if (!ni->in_init || ni->got_manifest || p == NULL || len > (1u << 20)) {
        rc = ERR_BAD_POINTER;
    } else {
        tr_buf_reset(&ni->manifest);
        tr_buf_append(&ni->manifest, p, len);
        ni->got_manifest = true;
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_respond(struct Z_trail_instance_t *ni, uint32_t req, uint32_t status,
                          uint32_t head_ptr, uint32_t head_len, uint32_t body_ptr,
                          uint32_t body_len)
{
    bool saved = wrt_host_enter();
    uint32_t rc = 0;
    waiting *w = find_wait(ni, req);
    const char *head = guest_bytes(ni, head_ptr, head_len);
    const char *body = guest_bytes(ni, body_ptr, body_len);
    if (w == NULL || w->res == NULL || w->answered) {
        rc = ERR_BAD_POINTER;
    } else {
        tr_arena *a = w->req->arena;
        jsg_prop *props = tr_arena_alloc(a, 3 * sizeof *props);
        props[0] = (jsg_prop){"status", 6, jsg_number(status)};
        props[1] = (jsg_prop){"headers", 7, jsg_number(0)}; /* invalid unless decoded below */
        props[2] = (jsg_prop){"body", 4, jsg_null()};
        /* more header fields than a response may have is refused before any is decoded: the
         * host allocates about nine times the encoding's bytes for them */
        reader r = {(const unsigned char *)head, head && body ? head_len : 0, 0, false};
        uint32_t n = head && body ? get_count(&r, 8) : 0;
        if (n > http_response_limits(w->res)->max_headers) r.bad = true;
        if (head && body && !r.bad) {
            jsg_val *pairs = tr_arena_alloc(a, (n ? n : 1) * 3 * sizeof *pairs);
            for (uint32_t i = 0; i < n && !r.bad; i++) {
                size_t nl, vl;
                const char *name = get_str(&r, &nl);
                const char *val = get_str(&r, &vl);
                pairs[n + 2 * i] = jsg_string(tr_arena_strndup(a, name, nl), nl);
                pairs[n + 2 * i + 1] = jsg_string(tr_arena_strndup(a, val, vl), vl);
                pairs[i] = jsg_array(&pairs[n + 2 * i], 2);
            }
            if (!r.bad && r.pos == r.len) props[1].val = jsg_array(pairs, n);
            char *copy = tr_arena_alloc(a, body_len ? body_len : 1);
            memcpy(copy, body, body_len);
            props[2].val = jsg_bytes(copy, body_len);
        }
        if (status < 100 || status > 599 || props[1].val.type != JSG_ARRAY) rc = (uint32_t)-2;
        w->answer = jsg_object(props, 3);
        w->answered = true;
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_job_done(struct Z_trail_instance_t *ni, uint32_t run, uint32_t ok,
                           uint32_t msg_ptr, uint32_t msg_len)
{
    bool saved = wrt_host_enter();
    uint32_t rc = 0;
    waiting *w = find_wait(ni, run);
    const char *msg = guest_bytes(ni, msg_ptr, msg_len);
    if (w == NULL || w->res != NULL || w->answered) {
        rc = ERR_BAD_POINTER;
    } else {
        w->answered = true;
        w->job_ok = ok != 0;
        if (!w->job_ok) w->job_msg = msg ? tr_strndup(msg, TR_MIN(msg_len, 4096)) : NULL;
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_sql(struct Z_trail_instance_t *ni, uint32_t tx, uint32_t kind, uint32_t sql_ptr,
                      uint32_t sql_len, uint32_t params_ptr, uint32_t params_len)
{
    bool saved = wrt_host_enter();
    uint32_t rc;
    const char *sql = guest_bytes(ni, sql_ptr, sql_len);
    const char *params = guest_bytes(ni, params_ptr, params_len);
    handle *h = sql && params && kind <= 1 ? new_handle(ni) : NULL;
    if (sql == NULL || params == NULL || kind > 1) {
        rc = ERR_BAD_POINTER;
    } else if (h == NULL) {
        rc = ERR_TOO_MANY;
    } else {
        rc = h->id;
        if (ni->env == NULL || ni->env->sql == NULL) {
            ready_error(ni, h, "no database here (statements cannot run in trail_init)");
        } else {
            h->rows = kind == 0;
            h->tx = tx;
            h->sql = tr_strndup(sql, sql_len);
            h->sql_len = sql_len;
            tr_buf_append(&h->params, params, params_len);
            start_sql(ni, h);
        }
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_tx_begin(struct Z_trail_instance_t *ni)
{
    bool saved = wrt_host_enter();
    handle *h = new_handle(ni);
    uint32_t rc = h ? h->id : ERR_TOO_MANY;
    if (h && (ni->env == NULL || ni->env->sql == NULL || ni->env->loop == NULL)) {
        ready_error(ni, h, "no database here (transactions cannot run in trail_init)");
    } else if (h) {
        h->begin = true;
        start_sql(ni, h);
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_tx_end(struct Z_trail_instance_t *ni, uint32_t tx, uint32_t commit)
{
    bool saved = wrt_host_enter();
    handle *h = new_handle(ni);
    uint32_t rc = h ? h->id : ERR_TOO_MANY;
    if (h && (ni->env == NULL || ni->env->sql == NULL)) {
        ready_error(ni, h, "no database here");
    } else if (h) {
        tr_error err = {0};
        if (guest_sql_tx_end_for(ni->env->sql, ni, tx, commit != 0, &err) < 0)
            ready_error(ni, h, err.msg);
        else
            ready(ni, h, true);
    }
    wrt_host_leave(saved);
    return rc;
}

static void timer_fired(loop *l, loop_timer *t)
{
    (void)l;
    handle *h = (handle *)t;
    tr_buf_reset(&h->result);
    ready(h->ni, h, true);
}

uint32_t Z_trailZ_timer(struct Z_trail_instance_t *ni, uint32_t ms)
{
    bool saved = wrt_host_enter();
    handle *h = new_handle(ni);
    uint32_t rc = h ? h->id : ERR_TOO_MANY;
    if (h && ni->env == NULL) {
        ready_error(ni, h, "no timers here (trail_init)");
    } else if (h) {
        loop_timer_init(&h->timer, timer_fired);
        loop_timer_start(ni->env->loop, &h->timer, ms);
    }
    wrt_host_leave(saved);
    return rc;
}

static void fetch_done(void *ud, int rc, const tr_error *why, const jsg_val *response)
{
    handle *h = ud;
    struct Z_trail_instance_t *ni = h->ni;
    h->in_fetch = false;
    if (h->released) {
        handle_free(ni, h);
        return;
    }
    if (rc < 0) {
        ready_error(ni, h, why->msg);
        return;
    }
    /* [status, statusText, headers, body, finalUrl] */
    const jsg_val *v = response->u.arr.items;
    tr_buf_reset(&h->result);
    put_u32(&h->result, (uint32_t)v[0].u.num);
    put_u32(&h->result, (uint32_t)v[2].u.arr.len);
    for (size_t i = 0; i < v[2].u.arr.len; i++) {
        const jsg_val *pair = v[2].u.arr.items[i].u.arr.items;
        put_str(&h->result, pair[0].u.str.ptr, pair[0].u.str.len);
        put_str(&h->result, pair[1].u.str.ptr, pair[1].u.str.len);
    }
    if (v[3].type == JSG_BYTES)
        put_str(&h->result, v[3].u.str.ptr, v[3].u.str.len);
    else
        put_str(&h->result, "", 0);
    put_str(&h->result, v[4].u.str.ptr, v[4].u.str.len);
    ready(ni, h, true);
}

/* The fetch request's encoding (docs/guest-abi.md) as the five values guest_fetch_start()
 * takes, in a; false when malformed. */
static bool decode_fetch(reader *r, tr_arena *a, jsg_val *args)
{
    size_t ml, ul, bl;
    const char *method = get_str(r, &ml);
    const char *url = get_str(r, &ul);
    uint32_t n = get_count(r, 8);
    if (n > GUEST_FETCH_MAX_HEADERS) return false; /* never allocated for */
    jsg_val *pairs = tr_arena_alloc(a, (n ? n : 1) * 3 * sizeof *pairs);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        size_t nl, vl;
        const char *name = get_str(r, &nl);
        const char *val = get_str(r, &vl);
        pairs[n + 2 * i] = jsg_string(name, nl);
        pairs[n + 2 * i + 1] = jsg_string(val, vl);
        pairs[i] = jsg_array(&pairs[n + 2 * i], 2);
    }
    const char *body = get_str(r, &bl);
    uint32_t timeout = get_u32(r);
    args[0] = jsg_string(method, ml);
    args[1] = jsg_string(url, ul);
    args[2] = jsg_array(pairs, n);
    args[3] = bl ? jsg_bytes(body, bl) : jsg_null();
    args[4] = jsg_number(timeout);
    return !r->bad && r->pos == r->len;
}

uint32_t Z_trailZ_fetch(struct Z_trail_instance_t *ni, uint32_t ptr, uint32_t len)
{
    bool saved = wrt_host_enter();
    const char *req = guest_bytes(ni, ptr, len);
    handle *h = req ? new_handle(ni) : NULL;
    uint32_t rc = req == NULL ? ERR_BAD_POINTER : h ? h->id : ERR_TOO_MANY;
    if (h && ni->env == NULL) {
        ready_error(ni, h, "fetch is not available in trail_init");
    } else if (h) {
        tr_arena a;
        tr_arena_init(&a, 1024);
        reader r = {(const unsigned char *)req, len, 0, false};
        jsg_val args[5];
        tr_error why = {0};
        if (!decode_fetch(&r, &a, args))
            ready_error(ni, h, "malformed fetch request (docs/guest-abi.md)");
        else if (guest_fetch_start(ni->env, &ni->fetches, args, fetch_done, h, &why) < 0)
            ready_error(ni, h, why.msg);
        else
            h->in_fetch = true;
        tr_arena_deinit(&a);
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_read_file(struct Z_trail_instance_t *ni, uint32_t ptr, uint32_t len)
{
    bool saved = wrt_host_enter();
    const char *path = guest_bytes(ni, ptr, len);
    handle *h = path ? new_handle(ni) : NULL;
    uint32_t rc = path == NULL ? ERR_BAD_POINTER : h ? h->id : ERR_TOO_MANY;
    if (h) {
        tr_error err = {0};
        if (ni->env == NULL || ni->env->fs == NULL) {
            ready_error(ni, h,
                        "ENOSYS: no filesystem is enabled (trail run --runtime-root-fs DIR)");
        } else if (guest_fs_read(ni->env->fs, path, len,
                                 TR_MIN(ni->env->fs_max_read, ni->mod->limits.memory_limit),
                                 &h->result, &err) < 0) {
            ready_error(ni, h, err.msg);
        } else {
            ready(ni, h, true);
        }
    }
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_trailZ_result_len(struct Z_trail_instance_t *ni, uint32_t id)
{
    handle *h = find_handle(ni, id);
    if (h == NULL) return (uint32_t)-2;
    if (h->state == H_PENDING) return (uint32_t)-1;
    return (uint32_t)h->result.len;
}

uint32_t Z_trailZ_result_take(struct Z_trail_instance_t *ni, uint32_t id, uint32_t ptr,
                              uint32_t len)
{
    bool saved = wrt_host_enter();
    uint32_t rc;
    handle *h = find_handle(ni, id);
    char *dst = ni->mem ? wrt_mem_ptr(ni->mem, ptr, len) : NULL;
    if (h == NULL) {
        rc = (uint32_t)-2;
    } else if (h->state == H_PENDING) {
        rc = (uint32_t)-1;
    } else if (dst == NULL || len != h->result.len) {
        rc = (uint32_t)-3;
    } else {
        if (len) memcpy(dst, h->result.data, len);
        rc = h->ok ? 0 : 1;
        handle_release(ni, h);
    }
    wrt_host_leave(saved);
    return rc;
}

void Z_trailZ_release(struct Z_trail_instance_t *ni, uint32_t id)
{
    bool saved = wrt_host_enter();
    handle *h = find_handle(ni, id);
    if (h) handle_release(ni, h);
    wrt_host_leave(saved);
}

/* ---- WASI beyond what the engine needs (wasm/wasi/wasi.c has the rest) ---- */

void Z_wasi_snapshot_preview1Z_proc_exit(wasi_ctx *ctx, uint32_t code);
void Z_wasi_snapshot_preview1Z_proc_exit(wasi_ctx *ctx, uint32_t code)
{
    (void)ctx;
    (void)code;
    wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
}

/* No environment and no arguments: both counts 0. */
static uint32_t two_zeros(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    bool saved = wrt_host_enter();
    uint32_t rc = WASI_ESUCCESS;
    char *pa = wrt_mem_ptr(ctx->memory, a, 4), *pb = wrt_mem_ptr(ctx->memory, b, 4);
    if (pa == NULL || pb == NULL)
        rc = WASI_EFAULT;
    else
        memset(pa, 0, 4), memset(pb, 0, 4);
    wrt_host_leave(saved);
    return rc;
}

uint32_t Z_wasi_snapshot_preview1Z_environ_sizes_get(wasi_ctx *ctx, uint32_t a, uint32_t b);
uint32_t Z_wasi_snapshot_preview1Z_environ_sizes_get(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    return two_zeros(ctx, a, b);
}

uint32_t Z_wasi_snapshot_preview1Z_args_sizes_get(wasi_ctx *ctx, uint32_t a, uint32_t b);
uint32_t Z_wasi_snapshot_preview1Z_args_sizes_get(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    return two_zeros(ctx, a, b);
}

uint32_t Z_wasi_snapshot_preview1Z_environ_get(wasi_ctx *ctx, uint32_t a, uint32_t b);
uint32_t Z_wasi_snapshot_preview1Z_environ_get(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    (void)ctx;
    (void)a;
    (void)b;
    return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_args_get(wasi_ctx *ctx, uint32_t a, uint32_t b);
uint32_t Z_wasi_snapshot_preview1Z_args_get(wasi_ctx *ctx, uint32_t a, uint32_t b)
{
    (void)ctx;
    (void)a;
    (void)b;
    return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_sched_yield(wasi_ctx *ctx);
uint32_t Z_wasi_snapshot_preview1Z_sched_yield(wasi_ctx *ctx)
{
    (void)ctx;
    return WASI_ESUCCESS;
}

/* ---- requests and jobs ---- */

/* Copies bytes into a buffer the guest allocated; 0 and a guest pointer, or an error. */
static int pass_bytes(struct Z_trail_instance_t *ni, const tr_buf *b, uint32_t *ptr,
                      tr_error *err)
{
    if (b->len > ni->mod->limits.memory_limit)
        return tr_error_set(err, TR_ENOMEM,
                            "the request takes more than the instance's memory limit of %zu MiB "
                            "(runtime.memory_limit_mb)",
                            ni->mod->limits.memory_limit >> 20);
    gcall c = {.what = C_ALLOC, .a = (uint32_t)b->len};
    int rc = call_guest(ni, &c, err);
    if (rc < 0) return rc;
    char *dst = c.ret ? wrt_mem_ptr(ni->mem, c.ret, b->len) : NULL;
    if (dst == NULL)
        return tr_error_set(err, TR_ENOMEM,
                            c.ret ? "trail_alloc() returned memory outside the instance"
                                  : "the instance is out of memory (runtime.memory_limit_mb = "
                                    "%zu MiB): trail_alloc() returned 0",
                            ni->mod->limits.memory_limit >> 20);
    if (b->len) memcpy(dst, b->data, b->len);
    *ptr = c.ret;
    return 0;
}

void comp__native_dispatch(comp_native_inst *ni, size_t route, const http_request *req,
                           http_response *res)
{
    tr_error err = {0};
    if (ni->inst == NULL && create_instance(ni, &err) < 0) {
        tr_log_error(GUEST_LOG_PREFIX "%s: cannot recreate the instance: %s", ni->mod->name,
                     err.msg);
        http_response_send_error(res, 503, "the component is not available");
        return;
    }
    tr_buf b = TR_BUF_INIT;
    encode_request(req, &b);
    waiting *w = new_wait(ni);
    w->res = res;
    w->req = req;
    uint32_t ptr = 0, len = (uint32_t)b.len;
    int rc = pass_bytes(ni, &b, &ptr, &err);
    tr_buf_free(&b);
    if (rc == 0) {
        gcall c = {.what = C_HTTP, .a = w->id, .b = (uint32_t)route, .c = ptr, .d = len};
        rc = call_guest(ni, &c, &err);
    }
    if (rc == TR_ENOMEM) {
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s", ni->mod->name, (int)req->method.len,
                     req->method.ptr, (int)TR_MIN(req->path.len, 200), req->path.ptr, err.msg);
        http_response_send_error(res, 500, err.msg);
        unwait(ni, w);
        return;
    }
    if (rc < 0) {
        failed_call(ni, w, rc, &err);
        return;
    }
    if (!w->answered) {
        w->parked = true;
        loop_timer_start(ni->env->loop, &w->deadline, ni->mod->limits.deadline_ms);
        http_response_on_cancel(res, on_cancel, w);
    }
    send_answers(ni);
}

void comp__native_run_job(comp_native_inst *ni, size_t job, uint64_t deadline_ms,
                          comp_job_done_fn done, void *ud)
{
    tr_error err = {0};
    if (ni->nat->job == NULL) {
        tr_error_set(&err, TR_EINVAL, "the module does not export trail_job");
        done(ud, TR_EINVAL, &err);
        return;
    }
    if (ni->inst == NULL && create_instance(ni, &err) < 0) {
        done(ud, err.code ? err.code : TR_EINVAL, &err);
        return;
    }
    waiting *w = new_wait(ni);
    w->done = done;
    w->ud = ud;
    gcall c = {.what = C_JOB, .a = w->id, .b = (uint32_t)job};
    int rc = call_guest(ni, &c, &err);
    if (rc < 0) {
        failed_call(ni, w, rc, &err);
        return;
    }
    if (!w->answered) {
        w->parked = true;
        loop_timer_start(ni->env->loop, &w->deadline, deadline_ms);
    }
    send_answers(ni);
}

/* ---- loading ---- */

/* The manifest's encoding (docs/guest-abi.md) into the value comp__read_manifest() reads. */
static bool decode_manifest(const tr_buf *b, tr_arena *a, jsg_val *out)
{
    reader r = {(const unsigned char *)b->data, b->len, 0, false};
    jsg_prop *props = tr_arena_alloc(a, 2 * sizeof *props);
    static const char *const keys[2] = {"http", "jobs"};
    for (int k = 0; k < 2; k++) {
        uint32_t n = get_count(&r, 8);
        jsg_val *items = tr_arena_alloc(a, (n ? n : 1) * 3 * sizeof *items);
        for (uint32_t i = 0; i < n && !r.bad; i++) {
            size_t l1, l2;
            const char *s1 = get_str(&r, &l1);
            const char *s2 = get_str(&r, &l2);
            items[n + 2 * i] = jsg_string(s1, l1);
            items[n + 2 * i + 1] = jsg_string(s2, l2);
            items[i] = jsg_array(&items[n + 2 * i], 2);
        }
        props[k] = (jsg_prop){keys[k], 4, jsg_array(items, n)};
    }
    *out = jsg_object(props, 2);
    return !r.bad && r.pos == r.len;
}

/* Route paths and names may not hold NUL bytes (they become C strings). */
static bool manifest_has_nul(const jsg_val *man)
{
    for (size_t k = 0; k < man->u.obj.len; k++) {
        const jsg_val *list = &man->u.obj.props[k].val;
        for (size_t i = 0; i < list->u.arr.len; i++)
            for (size_t j = 0; j < 2; j++) {
                const jsg_val *s = &list->u.arr.items[i].u.arr.items[j];
                if (memchr(s->u.str.ptr, '\0', s->u.str.len)) return true;
            }
    }
    return false;
}

int comp__native_load(comp_module *m, const unsigned char *bytes, size_t len, tr_error *err)
{
    uint64_t ms = 0;
    int rc = comp_native_compile(bytes, len, &m->native, &ms, err);
    if (rc < 0) return rc;
    if (ms > 0) tr_log_info("component %s: compiled to native code in %llu ms", m->name,
                            (unsigned long long)ms);
    m->compile_ms = ms;
    struct Z_trail_instance_t *ni = inst_alloc(m, NULL);
    rc = create_instance(ni, err);
    tr_arena a;
    tr_arena_init(&a, 4096);
    jsg_val man;
    if (rc == 0 && (!decode_manifest(&ni->manifest, &a, &man) || manifest_has_nul(&man)))
        rc = tr_error_set(err, TR_EINVAL,
                          "the manifest trail_init() gave is malformed (docs/guest-abi.md)");
    if (rc == 0) rc = comp__read_manifest(m, &man, err);
    tr_arena_deinit(&a);
    drop_instance(ni);
    tr_buf_free(&ni->manifest);
    /* the scratch instance's module ref: m is still being made, its refcount is the caller's */
    atomic_fetch_sub(&ni->mod->refs, 1);
    tr_free(ni);
    return rc;
}
