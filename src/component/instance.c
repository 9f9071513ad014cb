/* component/instance.c: a component's isolate on one worker: dispatching requests to it,
 * parking those whose handler's promise is still pending, and turning results and failures
 * into HTTP responses. */
#include "component/native_internal.h"
#include "guest/test_hooks.h"

#include "auth/auth.h"

#include <stdio.h>
#include <string.h>

/* A request or a job run waiting for its promise. */
typedef struct parked {
    loop_timer deadline; /* the loop hands us &deadline */
    struct parked *prev, *next;
    comp_instance *ci;
    http_response *res; /* a request: res and req; a job run: done and ud */
    const http_request *req;
    comp_job_done_fn done;
    void *ud;
    size_t job;
    uint64_t deadline_ms;
    jsg_ref promise;
} parked;

struct comp_instance {
    comp_module *mod;
    guest_env *env;
    jsg_isolate *iso; /* NULL after a failure until the next request recreates it */
    guest *g;
    jsg_ref def;            /* the default export */
    jsg_ref dispatch;       /* def.dispatch */
    jsg_ref complete;       /* def.complete: for a rejection or a result that is not a response */
    jsg_ref response_class; /* def.responseClass: its instances are responses */
    jsg_ref run_job;        /* def.runJob */
    jsg_ref no_body;        /* a frozen empty Uint8Array: the body of every request without one */
    jsg_ref no_params;      /* a frozen empty object: the params of every route without any */
    parked *parked;         /* doubly linked list of waiting requests */
    size_t nparked;
    comp_native_inst *native; /* a compiled component's instance; then nothing above is used */
    bool checking;    /* inside check_parked(): no re-entry */
    parked *settling; /* the entry check_parked() is settling: already answered if it fails */
};

static void drop_isolate(comp_instance *ci);

static void wake(void *owner);

static int create_isolate(comp_instance *ci, tr_error *err)
{
    const comp_limits *lim = &ci->mod->limits;
    /* cpu_budget_ms is CPU time of synchronous guest code: time the worker spends elsewhere
     * (other isolates, the loop) while this one waits does not count. */
    jsg_options opt = {.memory_limit = lim->memory_limit,
                       .timeout_ns = lim->cpu_budget_ms * 1000000u,
                       .cpu_time = true};
    jsg_ref ns = 0;
    int rc = jsg_isolate_new(&opt, &ci->iso, err);
    if (rc == 0) rc = guest_new(ci->iso, ci->env, wake, ci, &ci->g, err);
    if (rc == 0) rc = guest_test_hooks_install(ci->iso, err);
    if (rc == 0) rc = comp_module_map_stacks(ci->mod, ci->iso, err);
    if (rc == 0)
        rc = jsg_eval_module(ci->iso, ci->mod->js, ci->mod->js_len, "component.js", &ns, err);
    if (rc == 0) rc = comp_module_entry(ci->iso, ns, &ci->def, err);
    if (rc == 0) rc = jsg_get(ci->iso, ci->def, "dispatch", 8, &ci->dispatch, err);
    if (rc == 0 && jsg_ref_kind(ci->iso, ci->dispatch) != JSG_K_FUNCTION)
        rc = tr_error_set(err, TR_EINVAL, "the component's default export has no dispatch()");
    if (rc == 0) rc = jsg_get(ci->iso, ci->def, "complete", 8, &ci->complete, err);
    if (rc == 0) rc = jsg_get(ci->iso, ci->def, "responseClass", 13, &ci->response_class, err);
    if (rc == 0 && (jsg_ref_kind(ci->iso, ci->complete) != JSG_K_FUNCTION ||
                    jsg_ref_kind(ci->iso, ci->response_class) != JSG_K_FUNCTION))
        rc = tr_error_set(err, TR_EINVAL,
                          "the component's default export has no complete() or responseClass "
                          "(rebuild it with this version of trailbase-wasm)");
    if (rc == 0) rc = jsg_get(ci->iso, ci->def, "runJob", 6, &ci->run_job, err);
    if (rc == 0) {
        static const char no_body[] = "Object.freeze(new Uint8Array(0))";
        rc = jsg_eval(ci->iso, no_body, sizeof no_body - 1, "<trail>", &ci->no_body, err);
    }
    if (rc == 0) {
        static const char no_params[] = "Object.freeze({})";
        rc = jsg_eval(ci->iso, no_params, sizeof no_params - 1, "<trail>", &ci->no_params, err);
    }
    if (ns && ci->iso && !jsg_isolate_dead(ci->iso)) jsg_ref_free(ci->iso, ns);
    if (rc < 0) drop_isolate(ci);
    return rc;
}

int comp_instance_new(comp_module *m, guest_env *env, comp_instance **out, tr_error *err)
{
    comp_instance *ci = tr_calloc(1, sizeof *ci);
    ci->mod = comp_module_ref(m);
    ci->env = env;
    int rc = m->native ? comp__native_inst_new(m, env, &ci->native, err) : create_isolate(ci, err);
    if (rc < 0) {
        comp_module_unref(ci->mod);
        tr_free(ci);
        return rc;
    }
    *out = ci;
    return 0;
}

static void unpark(comp_instance *ci, parked *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        ci->parked = p->next;
    if (p->next) p->next->prev = p->prev;
    ci->nparked--;
    loop_timer_stop(ci->env->loop, &p->deadline);
    if (ci->iso && !jsg_isolate_dead(ci->iso)) jsg_ref_free(ci->iso, p->promise);
    tr_free(p);
}

/* Answers every parked request with status/message, ends every parked job run as failed, and
 * forgets them. */
static void fail_parked(comp_instance *ci, int status, const char *msg)
{
    while (ci->parked) {
        parked *p = ci->parked;
        if (p == ci->settling) {
            /* fail() or job_failed() answered it already */
        } else if (p->res) {
            http_response_send_error(p->res, status, msg);
        } else {
            tr_error e;
            tr_error_set(&e, TR_EIO, "%s", msg);
            p->done(p->ud, TR_EIO, &e);
        }
        unpark(ci, p);
    }
}

static void drop_isolate(comp_instance *ci)
{
    if (ci->iso == NULL) return;
    if (!jsg_isolate_dead(ci->iso)) {
        if (ci->dispatch) jsg_ref_free(ci->iso, ci->dispatch);
        if (ci->complete) jsg_ref_free(ci->iso, ci->complete);
        if (ci->response_class) jsg_ref_free(ci->iso, ci->response_class);
        if (ci->run_job) jsg_ref_free(ci->iso, ci->run_job);
        if (ci->def) jsg_ref_free(ci->iso, ci->def);
        if (ci->no_body) jsg_ref_free(ci->iso, ci->no_body);
        if (ci->no_params) jsg_ref_free(ci->iso, ci->no_params);
    }
    ci->dispatch = ci->complete = ci->response_class = 0;
    ci->def = ci->run_job = ci->no_body = ci->no_params = 0;
    guest_free(ci->g);
    ci->g = NULL;
    jsg_isolate_free(ci->iso);
    ci->iso = NULL;
}

void comp_instance_free(comp_instance *ci)
{
    if (ci == NULL) return;
    comp__native_inst_free(ci->native);
    fail_parked(ci, 503, "the server is shutting down");
    drop_isolate(ci);
    comp_module_unref(ci->mod);
    tr_free(ci);
}

size_t comp_instance_parked(const comp_instance *ci)
{
    if (ci->native) return comp__native_parked(ci->native);
    return ci->nparked;
}

/* ---- failures ---- */

/* The first line of a JS error message ("TypeError: x is not a function"). */
static void first_line(const char *msg, char *out, size_t cap)
{
    size_t n = strcspn(msg, "\n");
    snprintf(out, cap, "%.*s", (int)TR_MIN(n, cap - 1), msg);
}

/* Answers a failed call and, when the isolate can no longer be trusted, replaces it. */
static void fail(comp_instance *ci, const http_request *req, http_response *res, int rc,
                 const tr_error *err)
{
    char line[512];
    const comp_limits *lim = &ci->mod->limits;
    const char *name = ci->mod->name;
    int mlen = (int)req->method.len, plen = (int)TR_MIN(req->path.len, 200);
    switch (rc) {
    case TR_EINTERRUPTED:
        snprintf(line, sizeof line,
                 "the handler exceeded its CPU time limit of %llu ms (runtime.cpu_budget_ms)",
                 (unsigned long long)lim->cpu_budget_ms);
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s; the isolate is replaced", name, mlen,
                     req->method.ptr, plen, req->path.ptr, line);
        http_response_send_error(res, 503, line);
        /* The interrupt can land anywhere in the guest's code, leaving its module state half
         * updated: the isolate is replaced like after a trap. */
        fail_parked(ci, 503, "the isolate was reset after a handler exceeded its CPU time limit");
        drop_isolate(ci);
        return;
    case TR_ENOMEM:
        snprintf(line, sizeof line,
                 "the handler exceeded its isolate's memory limit of %zu MiB "
                 "(runtime.memory_limit_mb)",
                 lim->memory_limit >> 20);
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s; the isolate is replaced", name, mlen,
                     req->method.ptr, plen, req->path.ptr, line);
        http_response_send_error(res, 500, line);
        fail_parked(ci, 500, "the isolate was reset after running out of memory");
        drop_isolate(ci);
        return;
    case TR_ETRAP:
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: the isolate trapped (%s); it is replaced",
                     name, mlen, req->method.ptr, plen, req->path.ptr, err->msg);
        http_response_send_error(res, 500, "the handler's isolate crashed (WebAssembly trap)");
        fail_parked(ci, 500, "the isolate was reset after a WebAssembly trap");
        drop_isolate(ci);
        return;
    default: {
        /* The log gets the stack in the user's TypeScript when there is a source map. */
        tr_error mapped = *err;
        comp_module_map_error(ci->mod, &mapped);
        first_line(err->msg, line, sizeof line);
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: uncaught %s", name, mlen, req->method.ptr,
                     plen, req->path.ptr, mapped.msg);
        http_response_send_error(res, 500, line[0] ? line : "the handler failed");
        return;
    }
    }
}

/* ---- responses ---- */

static bool header_safe(const jsg_val *v)
{
    return v->type == JSG_STRING && memchr(v->u.str.ptr, '\r', v->u.str.len) == NULL &&
           memchr(v->u.str.ptr, '\n', v->u.str.len) == NULL &&
           memchr(v->u.str.ptr, '\0', v->u.str.len) == NULL;
}

static bool name_is(const jsg_val *v, const char *name)
{
    size_t n = strlen(name);
    if (v->u.str.len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = v->u.str.ptr[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != name[i]) return false;
    }
    return true;
}

/* What the host reads of an HttpResponse (the SDK's responseClass). */
static const char *const response_props[] = {"status", "headers", "body", NULL};

/* Sends the handler's result, already copied from the isolate (see docs/guest-abi.md for its
 * shape and the checks). */
void comp__respond(const comp_module *m, const http_request *req, http_response *res,
                   const jsg_val *v)
{
    /* A bare string or Uint8Array: 200 with the SDK's default content type. */
    if (v->type == JSG_STRING || v->type == JSG_BYTES) {
        http_response_send(res, 200,
                           v->type == JSG_STRING ? "text/plain; charset=utf-8"
                                                 : "application/octet-stream",
                           v->u.str.ptr, v->u.str.len);
        return;
    }
    const jsg_val *status = NULL, *headers = NULL, *body = NULL;
    if (v->type == JSG_OBJECT) {
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const jsg_prop *p = &v->u.obj.props[i];
            if (p->key_len == 6 && memcmp(p->key, "status", 6) == 0) status = &p->val;
            if (p->key_len == 7 && memcmp(p->key, "headers", 7) == 0) headers = &p->val;
            if (p->key_len == 4 && memcmp(p->key, "body", 4) == 0) body = &p->val;
        }
    }
    const char *problem = NULL;
    if (status == NULL || status->type != JSG_NUMBER || status->u.num != (int)status->u.num ||
        status->u.num < 100 || status->u.num > 599)
        problem = "its status is not an integer from 100 to 599";
    else if (headers != NULL && headers->type != JSG_ARRAY && headers->type != JSG_UNDEFINED)
        problem = "its headers are not an array of [name, value] pairs";
    else if (body != NULL && body->type != JSG_STRING && body->type != JSG_BYTES &&
             body->type != JSG_UNDEFINED && body->type != JSG_NULL)
        problem = "its body is neither a string nor a Uint8Array";
    const char *content_type = NULL;
    /* The guest's headers are held to what a request's may be (server.max_headers and
     * max_header_bytes): a client would refuse more, and the host would copy them all. */
    const http_limits *lim = http_response_limits(res);
    size_t nhdrs = headers && headers->type == JSG_ARRAY ? headers->u.arr.len : 0;
    uint64_t hdr_bytes = 0;
    for (size_t i = 0; problem == NULL && i < nhdrs; i++) {
        const jsg_val *h = &headers->u.arr.items[i];
        if (h->type == JSG_ARRAY && h->u.arr.len == 2 && h->u.arr.items[0].type == JSG_STRING &&
            h->u.arr.items[1].type == JSG_STRING)
            hdr_bytes += h->u.arr.items[0].u.str.len + h->u.arr.items[1].u.str.len + 4;
    }
    if (problem == NULL && (nhdrs > lim->max_headers || hdr_bytes > lim->max_header_bytes)) {
        char msg[200];
        if (nhdrs > lim->max_headers)
            snprintf(msg, sizeof msg,
                     "the handler's response has %zu header fields, more than %u "
                     "(server.max_headers)",
                     nhdrs, lim->max_headers);
        else
            snprintf(msg, sizeof msg,
                     "the handler's response headers take %llu bytes, more than %u "
                     "(server.max_header_bytes)",
                     (unsigned long long)hdr_bytes, lim->max_header_bytes);
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s", m->name, (int)req->method.len,
                     req->method.ptr, (int)TR_MIN(req->path.len, 200), req->path.ptr, msg);
        http_response_send_error(res, 500, msg);
        return;
    }
    for (size_t i = 0;
         problem == NULL && headers && headers->type == JSG_ARRAY && i < headers->u.arr.len; i++) {
        const jsg_val *h = &headers->u.arr.items[i];
        if (h->type != JSG_ARRAY || h->u.arr.len != 2 || !header_safe(&h->u.arr.items[0]) ||
            !header_safe(&h->u.arr.items[1]) || h->u.arr.items[0].u.str.len == 0) {
            problem = "a header is not a [name, value] pair of strings without CR, LF or NUL";
            break;
        }
        if (!http_is_token(h->u.arr.items[0].u.str.ptr, h->u.arr.items[0].u.str.len)) {
            problem = "a header name is not a token (letters, digits and !#$%&'*+-.^_`|~)";
            break;
        }
        const jsg_val *name = &h->u.arr.items[0], *val = &h->u.arr.items[1];
        /* The server owns framing headers. */
        if (name_is(name, "content-length") || name_is(name, "transfer-encoding") ||
            name_is(name, "connection") || name_is(name, "date"))
            continue;
        if (name_is(name, "content-type") && content_type == NULL) {
            content_type = tr_arena_strndup(req->arena, val->u.str.ptr, val->u.str.len);
            continue;
        }
        char *n = tr_arena_strndup(req->arena, name->u.str.ptr, name->u.str.len);
        http_response_header(res, n, val->u.str.ptr, val->u.str.len);
    }
    if (problem != NULL) {
        tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: the handler's response is invalid: %s",
                     m->name, (int)req->method.len, req->method.ptr,
                     (int)TR_MIN(req->path.len, 200), req->path.ptr, problem);
        http_response_send_error(res, 500, "the handler returned an invalid response");
        return;
    }
    const char *data = "";
    size_t len = 0;
    if (body && (body->type == JSG_STRING || body->type == JSG_BYTES)) {
        data = body->u.str.ptr;
        len = body->u.str.len;
    }
    http_response_send(res, (int)status->u.num, content_type, data, len);
}

/* Sends a handler's result (r, from jsg_call_result or jsg_promise_result): as it is when the
 * host took it, else through the component's complete(), which turns an HttpError into its
 * response and throws for anything else. */
static void respond_result(comp_instance *ci, const http_request *req, http_response *res,
                           jsg_result *r)
{
    if (r->other == 0) {
        comp__respond(ci->mod, req, res, &r->val);
        return;
    }
    tr_error err = {0};
    jsg_val args[2] = {jsg_ref_val(r->other), jsg_bool(r->rejected)}, v;
    jsg_ref pending = 0;
    int rc = jsg_call_val(ci->iso, ci->complete, ci->def, 2, args, req->arena, &v, &pending, &err);
    if (ci->iso && !jsg_isolate_dead(ci->iso)) {
        jsg_ref_free(ci->iso, r->other);
        if (pending) jsg_ref_free(ci->iso, pending);
    }
    r->other = 0;
    if (rc == 0 && pending)
        rc = tr_error_set(&err, TR_EINVAL, "the component's complete() returned a promise");
    if (rc < 0)
        fail(ci, req, res, rc, &err);
    else
        comp__respond(ci->mod, req, res, &v);
}

/* After a job run's call failed: an isolate that can no longer be trusted is replaced. */
static void job_failed(comp_instance *ci, comp_job_done_fn done, void *ud, int rc,
                       const tr_error *err)
{
    tr_error mapped = *err;
    comp_module_map_error(ci->mod, &mapped);
    done(ud, rc, &mapped);
    if (jsg_rc_is_fatal(rc)) {
        fail_parked(ci, 500, "the isolate was reset after a job run crashed it");
        drop_isolate(ci);
    }
}

/* Completes a settled promise for a request (res) or a job run (done); returns false while it
 * is pending. */
static bool settle(comp_instance *ci, const http_request *req, http_response *res,
                   comp_job_done_fn done, void *ud, jsg_ref promise)
{
    tr_error err = {0};
    if (res != NULL) {
        jsg_result r;
        bool settled;
        jsg_accept acc = {ci->response_class, response_props};
        int rc = jsg_promise_result(ci->iso, promise, &acc, req->arena, &r, &settled, &err);
        if (rc == 0 && !settled) return false;
        if (rc < 0)
            fail(ci, req, res, rc, &err);
        else
            respond_result(ci, req, res, &r);
        return true;
    }
    jsg_promise_state state;
    jsg_ref result = 0;
    int rc = jsg_promise_state_get(ci->iso, promise, &state, &result, &err);
    if (rc == 0 && state == JSG_PENDING) return false;
    if (rc == 0 && state == JSG_REJECTED) rc = jsg_error_from(ci->iso, result, &err);
    if (rc < 0) {
        job_failed(ci, done, ud, rc, &err);
    } else {
        done(ud, 0, NULL);
    }
    if (result && ci->iso && !jsg_isolate_dead(ci->iso)) jsg_ref_free(ci->iso, result);
    return true;
}

/* Looks at every parked request's promise. */
static void check_parked(comp_instance *ci)
{
    if (ci->checking) return;
    ci->checking = true;
    for (parked *p = ci->parked; p != NULL && ci->iso != NULL;) {
        parked *next = p->next;
        ci->settling = p;
        bool settled = settle(ci, p->req, p->res, p->done, p->ud, p->promise);
        ci->settling = NULL;
        if (settled) {
            if (ci->iso == NULL) break; /* the isolate failed: fail() answered the rest */
            unpark(ci, p);
        }
        p = next;
    }
    ci->checking = false;
}

static void wake(void *owner)
{
    comp_instance *ci = owner;
    if (ci->iso && jsg_isolate_dead(ci->iso)) {
        tr_log_error(GUEST_LOG_PREFIX "%s: the isolate trapped in a timer; it is replaced",
                     ci->mod->name);
        fail_parked(ci, 500, "the isolate was reset after a WebAssembly trap");
        drop_isolate(ci);
        return;
    }
    int failure = ci->g ? guest_take_failure(ci->g) : 0;
    if (ci->iso && failure) {
        /* Code run from a timer or an I/O completion ran past a limit: the same as a request
         * that did, for every request waiting on this isolate (they may well be waiting for
         * that very code). */
        char msg[200];
        const comp_limits *lim = &ci->mod->limits;
        if (failure == TR_EINTERRUPTED)
            snprintf(msg, sizeof msg,
                     "the isolate exceeded its CPU time limit of %llu ms in a callback "
                     "(runtime.cpu_budget_ms)",
                     (unsigned long long)lim->cpu_budget_ms);
        else if (failure == TR_ELIMIT)
            snprintf(msg, sizeof msg,
                     "the isolate's timers used more than %d%% of its worker's CPU (over %d "
                     "ms within %d ms)",
                     GUEST_MAX_TIMER_CPU_PCT, GUEST_MIN_TIMER_CPU_MS, GUEST_TIMER_CPU_WINDOW_MS);
        else
            snprintf(msg, sizeof msg,
                     "the isolate exceeded its memory limit of %zu MiB in a callback "
                     "(runtime.memory_limit_mb)",
                     lim->memory_limit >> 20);
        tr_log_error(GUEST_LOG_PREFIX "%s: %s; it is replaced", ci->mod->name, msg);
        fail_parked(ci, failure == TR_ENOMEM ? 500 : 503, msg);
        drop_isolate(ci);
        return;
    }
    check_parked(ci);
}

/* The client went away (or the server closed the connection): forget the request; its promise
 * may still settle, and nobody will be told. */
static void on_cancel(void *ud)
{
    parked *p = ud;
    unpark(p->ci, p);
}

static void on_deadline(loop *l, loop_timer *t)
{
    (void)l;
    parked *p = TR_CONTAINER_OF(t, parked, deadline);
    comp_instance *ci = p->ci;
    char msg[160];
    if (p->res == NULL) {
        tr_error e;
        tr_error_set(&e, TR_ETIMEDOUT, "the job did not finish within %llu ms (jobs.deadline_ms)",
                     (unsigned long long)p->deadline_ms);
        p->done(p->ud, TR_ETIMEDOUT, &e);
        unpark(ci, p);
        return;
    }
    snprintf(msg, sizeof msg, "the handler did not respond within %llu ms (runtime.deadline_ms)",
             (unsigned long long)ci->mod->limits.deadline_ms);
    tr_log_error(GUEST_LOG_PREFIX "%s %.*s %.*s: %s", ci->mod->name, (int)p->req->method.len,
                 p->req->method.ptr, (int)TR_MIN(p->req->path.len, 200), p->req->path.ptr, msg);
    http_response_send_error(p->res, 503, msg);
    unpark(ci, p);
}

/* ---- dispatch ---- */

/* Percent-decodes (s, n) into the arena; a malformed escape stays as it is. */
static jsg_val decoded(tr_arena *a, const char *s, size_t n)
{
    char *d = tr_arena_alloc(a, n + 1);
    size_t j = (size_t)tr_percent_decode(s, n, d, n, NULL);
    d[j] = '\0';
    return jsg_string(d, j);
}

/* The request as dispatch() receives it (docs/guest-abi.md), in req's arena. The method and
 * header names go as interned names (a small set, sent again and again); each header's pair is
 * frozen and shared with earlier requests that sent the same header; a request without a body
 * shares one frozen empty Uint8Array, one without path parameters one frozen empty object. */
static jsg_val build_request(comp_instance *ci, const http_request *req)
{
    tr_arena *a = req->arena;
    jsg_prop *params = tr_arena_alloc(a, (req->nparams ? req->nparams : 1) * sizeof *params);
    for (size_t i = 0; i < req->nparams; i++) {
        params[i].key = req->params[i].name.ptr;
        params[i].key_len = req->params[i].name.len;
        params[i].val = decoded(a, req->params[i].value.ptr, req->params[i].value.len);
    }
    jsg_val *headers = tr_arena_alloc(a, (req->nheaders ? req->nheaders : 1) * sizeof *headers);
    jsg_val *pairs = tr_arena_alloc(a, (req->nheaders ? req->nheaders : 1) * 2 * sizeof *pairs);
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        char *lower = tr_arena_alloc(a, h->name.len + 1);
        for (size_t k = 0; k < h->name.len; k++) {
            char c = h->name.ptr[k];
            lower[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        pairs[2 * i] = jsg_name(lower, h->name.len);
        pairs[2 * i + 1] = jsg_string(h->value.ptr, h->value.len);
        headers[i] = jsg_shared(&pairs[2 * i], 2);
    }
    jsg_prop *props = tr_arena_alloc(a, 9 * sizeof *props);
    props[0] = (jsg_prop){"method", 6, jsg_name(req->method.ptr, req->method.len)};
    props[1] = (jsg_prop){"url", 3, jsg_string(req->target.ptr, req->target.len)};
    props[2] = (jsg_prop){"path", 4, jsg_string(req->path.ptr, req->path.len)};
    props[3] = (jsg_prop){"query", 5, jsg_string(req->query.ptr, req->query.len)};
    props[4] = (jsg_prop){
        "params", 6, req->nparams ? jsg_object(params, req->nparams) : jsg_ref_val(ci->no_params)};
    props[5] = (jsg_prop){"headers", 7, jsg_array(headers, req->nheaders)};
    props[6] = (jsg_prop){"body", 4,
                          req->body.len ? jsg_bytes(req->body.ptr, req->body.len)
                                        : jsg_ref_val(ci->no_body)};
    /* the caller (docs/auth.md): user {id, email, csrf}, or, when credentials were sent that do
     * not count, authError [status, message]; an anonymous request has neither property (the SDK
     * reads a missing one as null), so that it costs no more than before users existed */
    auth_caller *caller = tr_arena_alloc(a, sizeof *caller);
    auth_request_caller(auth_ctx_published(), req, caller);
    size_t nprops = 7;
    if (caller->signed_in) {
        jsg_prop *u = tr_arena_alloc(a, 3 * sizeof *u);
        const auth_claims *cl = &caller->claims;
        u[0] = (jsg_prop){"id", 2, jsg_string(cl->sub, strlen(cl->sub))};
        u[1] = (jsg_prop){"email", 5,
                          cl->email[0] ? jsg_string(cl->email, strlen(cl->email)) : jsg_null()};
        u[2] = (jsg_prop){"csrf", 4, jsg_string(cl->csrf_token, strlen(cl->csrf_token))};
        props[nprops++] = (jsg_prop){"user", 4, jsg_object(u, 3)};
    } else if (caller->error != NULL) {
        jsg_val *e = tr_arena_alloc(a, 2 * sizeof *e);
        e[0] = jsg_number(caller->error_status);
        e[1] = jsg_string(caller->error, strlen(caller->error));
        props[nprops++] = (jsg_prop){"authError", 9, jsg_array(e, 2)};
    }
    return jsg_object(props, nprops);
}

/* Parks promise (owned) with a deadline. */
static parked *park(comp_instance *ci, jsg_ref promise, uint64_t deadline_ms)
{
    parked *p = tr_calloc(1, sizeof *p);
    p->ci = ci;
    p->promise = promise;
    p->deadline_ms = deadline_ms;
    p->next = ci->parked;
    if (ci->parked) ci->parked->prev = p;
    ci->parked = p;
    ci->nparked++;
    loop_timer_init(&p->deadline, on_deadline);
    loop_timer_start(ci->env->loop, &p->deadline, deadline_ms);
    return p;
}

void comp_instance_dispatch(comp_instance *ci, size_t route, const http_request *req,
                            http_response *res)
{
    if (ci->native) {
        comp__native_dispatch(ci->native, route, req, res);
        return;
    }
    tr_error err = {0};
    if (ci->iso == NULL && create_isolate(ci, &err) < 0) {
        tr_log_error(GUEST_LOG_PREFIX "%s: cannot recreate the isolate: %s", ci->mod->name,
                     err.msg);
        http_response_send_error(res, 503, "the component is not available");
        return;
    }
    /* One call into the isolate: build the arguments, call, run jobs, read the response. */
    jsg_val args[2] = {jsg_number((double)route), build_request(ci, req)};
    jsg_result r;
    jsg_accept acc = {ci->response_class, response_props};
    int rc = jsg_call_result(ci->iso, ci->dispatch, ci->def, 2, args, &acc, req->arena, &r, &err);
    if (rc < 0) {
        fail(ci, req, res, rc, &err);
        return;
    }
    if (r.pending) {
        parked *p = park(ci, r.pending, ci->mod->limits.deadline_ms);
        p->res = res;
        p->req = req;
        http_response_on_cancel(res, on_cancel, p);
        return;
    }
    respond_result(ci, req, res, &r);
    /* This request's code may have settled promises other requests wait for. */
    if (ci->nparked) check_parked(ci);
}

int comp_instance_record_hook(comp_instance *ci, size_t hook, const char *ctx_json, size_t len,
                              tr_buf *out, tr_error *err)
{
    if (hook >= ci->mod->nhooks) return tr_error_set(err, TR_EINVAL, "no record hook %zu", hook);
    if (ci->native) return comp__native_record_hook(ci->native, hook, ctx_json, len, out, err);
    if (ci->iso == NULL && create_isolate(ci, err) < 0) return err->code ? err->code : TR_EINVAL;
    jsg_ref fn = 0, pending = 0;
    int rc = jsg_get(ci->iso, ci->def, "runRecordHook", 13, &fn, err);
    if (rc == 0 && jsg_ref_kind(ci->iso, fn) != JSG_K_FUNCTION)
        rc = tr_error_set(err, TR_EINVAL,
                          "the component has no runRecordHook() (rebuild it with this version of "
                          "trailbase-wasm)");
    tr_arena arena;
    tr_arena_init(&arena, 4096);
    jsg_val args[2] = {jsg_number((double)hook), jsg_string(ctx_json, len)};
    jsg_val result = jsg_undefined();
    if (rc == 0) rc = jsg_call_val(ci->iso, fn, ci->def, 2, args, &arena, &result, &pending, err);
    if (fn && !jsg_isolate_dead(ci->iso)) jsg_ref_free(ci->iso, fn);
    if (rc == 0 && pending) {
        if (!jsg_isolate_dead(ci->iso)) jsg_ref_free(ci->iso, pending);
        rc = tr_error_set(err, TR_EINVAL,
                          "a record hook must finish without waiting for timers or fetch()");
    }
    if (rc == 0 && result.type != JSG_STRING)
        rc = tr_error_set(err, TR_EINVAL, "runRecordHook() did not return a string");
    if (rc == 0) {
        tr_buf_reset(out);
        tr_buf_append(out, result.u.str.ptr, result.u.str.len);
    }
    tr_arena_deinit(&arena);
    if (rc < 0) {
        comp_module_map_error(ci->mod, err);
        /* as after a handler's: a trap, running out of memory or the CPU budget may leave the
         * module's state half updated */
        if (jsg_rc_is_fatal(rc) || rc == TR_EINTERRUPTED) {
            fail_parked(ci, 500, "the isolate was reset after a record hook failed");
            drop_isolate(ci);
        }
    }
    return rc;
}

void comp_instance_run_job(comp_instance *ci, size_t job, uint64_t deadline_ms,
                           comp_job_done_fn done, void *ud)
{
    tr_error err = {0};
    if (job >= ci->mod->njobs) {
        tr_error_set(&err, TR_EINVAL, "no job %zu", job);
        done(ud, TR_EINVAL, &err);
        return;
    }
    if (ci->native) {
        comp__native_run_job(ci->native, job, deadline_ms, done, ud);
        return;
    }
    if (ci->iso == NULL && create_isolate(ci, &err) < 0) {
        done(ud, err.code ? err.code : TR_EINVAL, &err);
        return;
    }
    const char *name = ci->mod->jobs[job].name;
    jsg_val namev = jsg_string(name, strlen(name));
    jsg_ref arg = 0, result = 0;
    int rc = jsg_from_val(ci->iso, &namev, &arg, &err);
    if (rc == 0) rc = jsg_call(ci->iso, ci->run_job, ci->def, 1, &arg, &result, &err);
    if (arg && !jsg_isolate_dead(ci->iso)) jsg_ref_free(ci->iso, arg);
    if (rc == 0) rc = jsg_run_jobs(ci->iso, &err);
    if (rc < 0) {
        if (result && !jsg_isolate_dead(ci->iso)) jsg_ref_free(ci->iso, result);
        job_failed(ci, done, ud, rc, &err);
        return;
    }
    if (jsg_ref_kind(ci->iso, result) == JSG_K_PROMISE) {
        if (!settle(ci, NULL, NULL, done, ud, result)) {
            parked *p = park(ci, result, deadline_ms);
            p->done = done;
            p->ud = ud;
            p->job = job;
            return;
        }
    } else {
        done(ud, 0, NULL);
    }
    if (ci->iso) jsg_ref_free(ci->iso, result);
    if (ci->nparked) check_parked(ci);
}
