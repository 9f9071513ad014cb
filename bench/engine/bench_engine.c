/* bench/engine/bench_engine.c: the JS engine's basic costs, as medians over many runs:
 * creating an isolate, a host->JS->host round trip, JSON.stringify of a 1 KiB object.
 * Release build; runs on a thread made like trail's workers. Never pass/fail. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "wasm/js/jsg.h"
#include "wasm/runtime/wrt.h"

#define BATCH 100 /* calls timed together, so that clock reads do not dominate */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct stat {
    double median_ns, p10_ns, p90_ns;
} stat;

static stat summarize(uint64_t *ns, size_t n, size_t per)
{
    qsort(ns, n, sizeof *ns, cmp_u64);
    return (stat){(double)ns[n / 2] / (double)per, (double)ns[n / 10] / (double)per,
                  (double)ns[n * 9 / 10] / (double)per};
}

static void row(const char *what, stat s, size_t runs)
{
    printf("| %-44s | %12.2f | %12.2f | %12.2f | %8zu |\n", what, s.median_ns / 1000.0,
           s.p10_ns / 1000.0, s.p90_ns / 1000.0, runs);
}

static void die(const char *what, int rc, const tr_error *err)
{
    fprintf(stderr, "bench_engine: %s: %s\n", what, err && err->code ? err->msg : tr_strerror(rc));
    exit(1);
}

static int host_echo(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                     jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    (void)err;
    return argc ? jsg_ref_dup(iso, argv[0], result) : 0;
}

static void *bench(void *arg)
{
    (void)arg;
    tr_error err;
    int rc;

    printf("| %-44s | %12s | %12s | %12s | %8s |\n", "operation", "median (us)", "p10 (us)",
           "p90 (us)", "runs");
    printf("|%s|%s|%s|%s|%s|\n", "----------------------------------------------", "--------------",
           "--------------", "--------------", "----------");

    /* 1. isolate creation (instantiate + QuickJS runtime and context + limits) */
    enum { NCREATE = 300 };
    static uint64_t t_new[NCREATE], t_free[NCREATE];
    for (int i = 0; i < NCREATE + 10; i++) {
        jsg_isolate *iso;
        uint64_t t0 = tr_now_ns();
        if ((rc = jsg_isolate_new(NULL, &iso, &err)) < 0) die("jsg_isolate_new", rc, &err);
        uint64_t t1 = tr_now_ns();
        jsg_isolate_free(iso);
        uint64_t t2 = tr_now_ns();
        if (i >= 10) { /* the first ones fault in the engine's code pages */
            t_new[i - 10] = t1 - t0;
            t_free[i - 10] = t2 - t1;
        }
    }
    row("create an isolate (jsg_isolate_new)", summarize(t_new, NCREATE, 1), NCREATE);
    row("destroy an isolate (jsg_isolate_free)", summarize(t_free, NCREATE, 1), NCREATE);

    jsg_isolate *iso;
    if ((rc = jsg_isolate_new(NULL, &iso, &err)) < 0) die("jsg_isolate_new", rc, &err);
    if ((rc = jsg_define_function(iso, 0, "echo", host_echo, NULL, &err)) < 0)
        die("define", rc, &err);

    /* 2. host -> JS -> host: the host calls a JS function with a number, JS calls a host
     * function with it and returns the result, the host reads the number back. */
    static const char fsrc[] = "(x) => echo(x) + 1";
    jsg_ref fn, empty;
    if ((rc = jsg_eval(iso, fsrc, sizeof fsrc - 1, "bench.js", &fn, &err)) < 0)
        die("eval", rc, &err);
    if ((rc = jsg_eval(iso, "() => 0", 7, "bench.js", &empty, &err)) < 0) die("eval", rc, &err);
    enum { NBATCH = 1000 };
    static uint64_t t_rt[NBATCH], t_empty[NBATCH], t_json[NBATCH];
    tr_arena a;
    tr_arena_init(&a, 4096);
    for (int b = 0; b < NBATCH; b++) {
        uint64_t t0 = tr_now_ns();
        for (int i = 0; i < BATCH; i++) {
            jsg_val x = jsg_number(i);
            jsg_ref in, out;
            if ((rc = jsg_from_val(iso, &x, &in, &err)) < 0) die("from_val", rc, &err);
            if ((rc = jsg_call(iso, fn, 0, 1, &in, &out, &err)) < 0) die("call", rc, &err);
            jsg_val r;
            if ((rc = jsg_to_val(iso, out, &a, &r, &err)) < 0) die("to_val", rc, &err);
            if (r.type != JSG_NUMBER || r.u.num != i + 1) die("wrong result", TR_EINVAL, NULL);
            jsg_ref_free(iso, in);
            jsg_ref_free(iso, out);
        }
        t_rt[b] = tr_now_ns() - t0;
        tr_arena_reset(&a);

        t0 = tr_now_ns();
        for (int i = 0; i < BATCH; i++)
            if ((rc = jsg_call(iso, empty, 0, 0, NULL, NULL, &err)) < 0) die("call", rc, &err);
        t_empty[b] = tr_now_ns() - t0;
    }
    row("host->JS->host round trip (number in/out)", summarize(t_rt, NBATCH, BATCH),
        (size_t)NBATCH * BATCH);
    row("call an empty JS function (jsg_call)", summarize(t_empty, NBATCH, BATCH),
        (size_t)NBATCH * BATCH);

    /* A request-shaped call: a plain object in, an async function, pending jobs, the promise's
     * result (a plain object) copied out: what a WASM route costs beyond the handler's work. */
    static const char asrc[] =
        "(async (req) => ({ status: 200, headers: [['content-type', 'text/plain']], "
        "  body: 'hello ' + req.path }))";
    jsg_ref afn;
    if ((rc = jsg_eval(iso, asrc, sizeof asrc - 1, "bench.js", &afn, &err)) < 0)
        die("eval", rc, &err);
    jsg_val hdr[] = {jsg_string("host", 4), jsg_string("localhost", 9)};
    jsg_val hdrs[] = {jsg_array(hdr, 2)};
    jsg_prop req_props[] = {
        {"method", 6, jsg_string("GET", 3)}, {"path", 4, jsg_string("/hello", 6)},
        {"query", 5, jsg_string("", 0)},     {"headers", 7, jsg_array(hdrs, 1)},
        {"body", 4, jsg_bytes("", 0)},
    };
    jsg_val req = jsg_object(req_props, TR_ARRAY_LEN(req_props));
    static uint64_t t_req[NBATCH];
    for (int b = 0; b < NBATCH; b++) {
        uint64_t t0 = tr_now_ns();
        for (int i = 0; i < BATCH; i++) {
            jsg_ref in, p, res;
            jsg_promise_state st;
            jsg_val out;
            if ((rc = jsg_from_val(iso, &req, &in, &err)) < 0) die("from_val", rc, &err);
            if ((rc = jsg_call(iso, afn, 0, 1, &in, &p, &err)) < 0) die("call", rc, &err);
            if ((rc = jsg_run_jobs(iso, &err)) < 0) die("jobs", rc, &err);
            if ((rc = jsg_promise_state_get(iso, p, &st, &res, &err)) < 0 || st != JSG_FULFILLED)
                die("promise", rc, &err);
            if ((rc = jsg_to_val(iso, res, &a, &out, &err)) < 0) die("to_val", rc, &err);
            jsg_ref_free(iso, in);
            jsg_ref_free(iso, p);
            jsg_ref_free(iso, res);
        }
        t_req[b] = tr_now_ns() - t0;
        tr_arena_reset(&a);
    }
    row("request-shaped async call (object in/out)", summarize(t_req, NBATCH, BATCH),
        (size_t)NBATCH * BATCH);
    jsg_ref_free(iso, afn);

    /* 3. JSON.stringify of a 1 KiB object, built once in JS, result copied to the host */
    static const char osrc[] =
        "({ id: 12345, name: 'Ada Lovelace', email: 'ada@example.com', active: true, "
        "  tags: ['math', 'engines', 'poetry', 'notes'], score: 98.25, "
        "  address: { street: '12 St James Square', city: 'London', zip: 'SW1Y 4JH' }, "
        "  items: Array.from({ length: 19 }, (_, i) => ({ n: i, label: 'item number ' + i, "
        "    done: i % 2 === 0 })) })";
    jsg_ref obj;
    if ((rc = jsg_eval(iso, osrc, sizeof osrc - 1, "bench.js", &obj, &err)) < 0)
        die("eval", rc, &err);
    tr_buf json = TR_BUF_INIT;
    for (int b = 0; b < NBATCH; b++) {
        uint64_t t0 = tr_now_ns();
        for (int i = 0; i < BATCH; i++)
            if ((rc = jsg_to_json(iso, obj, &json, &err)) < 0) die("to_json", rc, &err);
        t_json[b] = tr_now_ns() - t0;
    }
    char label[64];
    snprintf(label, sizeof label, "JSON.stringify of a %zu-byte object", json.len);
    row(label, summarize(t_json, NBATCH, BATCH), (size_t)NBATCH * BATCH);

    /* Loading a component: a ~100 KiB module from source, and from bytecode compiled once. */
    tr_buf src = TR_BUF_INIT;
    for (int i = 0; i < 400; i++)
        tr_buf_printf(&src,
                      "export function handler%d(req) {\n"
                      "  const out = { status: 200, headers: [['x-n', '%d']], body: '' };\n"
                      "  for (const [k, v] of req.headers) out.body += k + '=' + v + ';';\n"
                      "  return out;\n}\n",
                      i, i);
    tr_buf_append_str(&src, "export default { count: 400 };\n");
    tr_buf bc = TR_BUF_INIT;
    if ((rc = jsg_compile(iso, src.data, src.len, "component.js", true, &bc, &err)) < 0)
        die("compile", rc, &err);
    enum { NLOAD = 50 };
    static uint64_t t_src[NLOAD], t_bc[NLOAD];
    for (int i = 0; i < NLOAD; i++) {
        jsg_isolate *fresh;
        jsg_ref ns;
        if ((rc = jsg_isolate_new(NULL, &fresh, &err)) < 0) die("jsg_isolate_new", rc, &err);
        uint64_t t0 = tr_now_ns();
        if ((rc = jsg_eval_module(fresh, src.data, src.len, "component.js", &ns, &err)) < 0)
            die("eval_module", rc, &err);
        t_src[i] = tr_now_ns() - t0;
        jsg_isolate_free(fresh);
        if ((rc = jsg_isolate_new(NULL, &fresh, &err)) < 0) die("jsg_isolate_new", rc, &err);
        t0 = tr_now_ns();
        if ((rc = jsg_eval_bytecode(fresh, bc.data, bc.len, &ns, &err)) < 0)
            die("eval_bytecode", rc, &err);
        t_bc[i] = tr_now_ns() - t0;
        jsg_isolate_free(fresh);
    }
    snprintf(label, sizeof label, "load a %zu KiB module from source", src.len >> 10);
    row(label, summarize(t_src, NLOAD, 1), NLOAD);
    snprintf(label, sizeof label, "load it from bytecode (%zu KiB)", bc.len >> 10);
    row(label, summarize(t_bc, NLOAD, 1), NLOAD);
    tr_buf_free(&src);
    tr_buf_free(&bc);

    tr_buf_free(&json);
    tr_arena_deinit(&a);
    jsg_ref_free(iso, obj);
    jsg_ref_free(iso, fn);
    jsg_ref_free(iso, empty);
    jsg_isolate_free(iso);
    wrt_thread_deinit();
    return NULL;
}

int main(void)
{
    printf("engine: %s (module sha256 %.16s...)\n\n", jsg_engine_version(), jsg_engine_sha256());
    pthread_attr_t attr;
    pthread_t t;
    if (wrt_thread_attr_init(&attr) != 0 || pthread_create(&t, &attr, bench, NULL) != 0) {
        fprintf(stderr, "bench_engine: cannot start a thread\n");
        return 1;
    }
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    return 0;
}
