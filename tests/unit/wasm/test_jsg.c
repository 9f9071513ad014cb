/* Tests for the engine binding (wasm/js/jsg.h) against the real engine: evaluation, values, host
 * functions, promises, limits, threads. */
#include "test.h"

#include <pthread.h>
#include <time.h>

#include "wasm/js/jsg.h"
#include "wasm/runtime/wrt.h"

static jsg_isolate *new_iso(void)
{
    jsg_isolate *iso = NULL;
    tr_error err;
    tr_error_clear(&err);
    int rc = jsg_isolate_new(NULL, &iso, &err);
    if (rc != 0) fprintf(stderr, "jsg_isolate_new: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    return iso;
}

/* Evaluates code and returns its JSON (caller frees), failing the test on an error. */
static char *eval_json(jsg_isolate *iso, const char *code)
{
    tr_error err;
    tr_error_clear(&err);
    jsg_ref r = 0;
    int rc = jsg_eval(iso, code, strlen(code), "<test>", &r, &err);
    if (rc != 0) fprintf(stderr, "eval %s: %s\n", code, err.msg);
    CHECK_EQ(rc, 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_json(iso, r, &b, &err), 0);
    jsg_ref_free(iso, r);
    return tr_buf_take(&b, NULL);
}

TEST(jsg_eval_simple)
{
    jsg_isolate *iso = new_iso();
    char *s = eval_json(iso, "1+2");
    CHECK_STR_EQ(s, "3");
    tr_free(s);
    s = eval_json(iso, "({a: [1, 'x', null], b: {c: true}})");
    CHECK_STR_EQ(s, "{\"a\":[1,\"x\",null],\"b\":{\"c\":true}}");
    tr_free(s);
    jsg_isolate_free(iso);
}

/* Evaluates code, expecting success; returns the result ref. */
static jsg_ref eval_ok(jsg_isolate *iso, const char *code)
{
    tr_error err;
    tr_error_clear(&err);
    jsg_ref r = 0;
    int rc = jsg_eval(iso, code, strlen(code), "<test>", &r, &err);
    if (rc != 0) fprintf(stderr, "eval %s: %s\n", code, err.msg);
    CHECK_EQ(rc, 0);
    return r;
}

/* Evaluates code whose result is a string and compares it with want. */
static void eval_str(jsg_isolate *iso, const char *code, const char *want)
{
    jsg_ref r = eval_ok(iso, code);
    tr_buf b = TR_BUF_INIT;
    tr_error err;
    CHECK_EQ(jsg_to_string(iso, r, &b, &err), 0);
    jsg_ref_free(iso, r);
    CHECK_STR_EQ(b.data, want);
    tr_buf_free(&b);
}

static bool val_eq(const jsg_val *a, const jsg_val *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSG_UNDEFINED:
    case JSG_NULL:
        return true;
    case JSG_BOOL:
        return a->u.b == b->u.b;
    case JSG_NUMBER:
        return memcmp(&a->u.num, &b->u.num, sizeof(double)) == 0;
    case JSG_BIGINT:
        return a->u.big == b->u.big;
    case JSG_STRING:
    case JSG_BYTES:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0;
    case JSG_ARRAY:
        if (a->u.arr.len != b->u.arr.len) return false;
        for (size_t i = 0; i < a->u.arr.len; i++)
            if (!val_eq(&a->u.arr.items[i], &b->u.arr.items[i])) return false;
        return true;
    case JSG_OBJECT:
        if (a->u.obj.len != b->u.obj.len) return false;
        for (size_t i = 0; i < a->u.obj.len; i++) {
            const jsg_prop *x = &a->u.obj.props[i], *y = &b->u.obj.props[i];
            if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0) return false;
            if (!val_eq(&x->val, &y->val)) return false;
        }
        return true;
    default: /* JSG_NAME, JSG_REF, JSG_SHARED: never read back */
        return false;
    }
}

TEST(jsg_values_round_trip)
{
    jsg_isolate *iso = new_iso();
    static const char emoji_nul[] = "a\0b\xf0\x9f\x98\x80 \xc3\xa9"; /* a NUL b 😀 space é */
    uint8_t bytes[300];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 7);
    jsg_val inner[] = {jsg_number(1), jsg_array((jsg_val[]){jsg_string("deep", 4)}, 1)};
    jsg_prop nested[] = {{"k", 1, jsg_array(inner, 2)}, {"", 0, jsg_null()}};
    jsg_val items[] = {
        jsg_undefined(),
        jsg_null(),
        jsg_bool(true),
        jsg_bool(false),
        jsg_number(9007199254740992.0),  /* 2^53 */
        jsg_number(-9007199254740992.0), /* -2^53 */
        jsg_number(0.1),
        jsg_number(-1e308),
        jsg_bigint(9007199254740993LL), /* 2^53 + 1 */
        jsg_bigint(INT64_MIN),
        jsg_bigint(INT64_MAX),
        jsg_string(emoji_nul, sizeof emoji_nul - 1),
        jsg_string("", 0),
        jsg_bytes(bytes, sizeof bytes),
        jsg_bytes("", 0),
        jsg_object(nested, 2),
    };
    jsg_prop top[] = {{"items", 5, jsg_array(items, TR_ARRAY_LEN(items))},
                      {"__proto__", 9, jsg_string("plain key", 9)},
                      {"k\0ey", 4, jsg_number(3)}};
    jsg_val in = jsg_object(top, TR_ARRAY_LEN(top));

    tr_error err;
    jsg_ref ref = 0;
    CHECK_EQ(jsg_from_val(iso, &in, &ref, &err), 0);

    /* JS sees the right types and contents */
    CHECK_EQ(jsg_set(iso, 0, "v", 1, ref, &err), 0);
    eval_str(iso,
             "const it = v.items; [typeof it[0], it[1], it[2], it[3], it[4] === 2**53, "
             "it[5] === -(2**53), typeof it[8], it[8] === 2n**53n + 1n, "
             "it[9] === -(2n**63n), it[11].length, it[11].codePointAt(3), "
             "it[13] instanceof Uint8Array, it[13].length, it[13][299], "
             "Object.keys(v).length, Object.getPrototypeOf(v) === Object.prototype, "
             "v['k\\0ey']].join()",
             "undefined,,true,false,true,true,bigint,true,true,7,128512,true,300,45,3,true,3");

    /* and the value comes back exactly, also through a JS function */
    jsg_ref ident = eval_ok(iso, "(x) => x");
    jsg_ref back = 0;
    CHECK_EQ(jsg_call(iso, ident, 0, 1, &ref, &back, &err), 0);
    tr_arena a;
    tr_arena_init(&a, 4096);
    jsg_val out;
    CHECK_EQ(jsg_to_val(iso, back, &a, &out, &err), 0);
    CHECK(val_eq(&in, &out));
    tr_arena_deinit(&a);
    jsg_ref_free(iso, back);
    jsg_ref_free(iso, ident);
    jsg_ref_free(iso, ref);
    jsg_isolate_free(iso);
}

TEST(jsg_values_from_js)
{
    jsg_isolate *iso = new_iso();
    jsg_ref r =
        eval_ok(iso, "({s: 'x\\u0000y\\u{1F600}', max: 2**53, min: -(2**53), "
                     "big: 2n**63n - 1n, u8: new Uint8Array([9, 1, 2, 3, 255]).subarray(1), "
                     "fn() {}, sym: Symbol('s'), arr: [1, [2, [3]], () => 1], nul: null})");
    tr_arena a;
    tr_arena_init(&a, 4096);
    jsg_val v;
    tr_error err;
    CHECK_EQ(jsg_to_val(iso, r, &a, &v, &err), 0);
    CHECK_EQ(v.type, JSG_OBJECT);
    CHECK_EQ(v.u.obj.len, 7); /* fn and sym skipped */
    const jsg_prop *p = v.u.obj.props;
    CHECK_MEM_EQ(p[0].key, p[0].key_len, "s");
    CHECK_EQ(p[0].val.type, JSG_STRING);
    CHECK_EQ(p[0].val.u.str.len, 7);
    CHECK(memcmp(p[0].val.u.str.ptr, "x\0y\xf0\x9f\x98\x80", 7) == 0);
    CHECK(p[1].val.u.num == 9007199254740992.0);
    CHECK(p[2].val.u.num == -9007199254740992.0);
    CHECK_EQ(p[3].val.type, JSG_BIGINT);
    CHECK(p[3].val.u.big == INT64_MAX);
    CHECK_EQ(p[4].val.type, JSG_BYTES);
    CHECK_EQ(p[4].val.u.str.len, 4);
    CHECK(memcmp(p[4].val.u.str.ptr, "\x01\x02\x03\xff", 4) == 0);
    CHECK_MEM_EQ(p[5].key, p[5].key_len, "arr");
    CHECK_EQ(p[5].val.u.arr.len, 3);
    CHECK_EQ(p[5].val.u.arr.items[1].u.arr.items[1].u.arr.items[0].u.num, 3);
    CHECK_EQ(p[5].val.u.arr.items[2].type, JSG_NULL); /* a function in an array: null */
    CHECK_EQ(p[6].val.type, JSG_NULL);
    tr_arena_deinit(&a);
    jsg_ref_free(iso, r);

    /* a sparse array claiming billions of elements is refused before the host allocates */
    r = eval_ok(iso, "const sparse = []; sparse.length = 4e9; ({ sparse })");
    tr_arena_init(&a, 1024);
    CHECK_EQ(jsg_to_val(iso, r, &a, &v, &err), TR_ELIMIT);
    tr_arena_deinit(&a);
    jsg_ref_free(iso, r);

    /* a function at the top level cannot be converted */
    r = eval_ok(iso, "(function f() {})");
    tr_arena_init(&a, 1024);
    CHECK_EQ(jsg_to_val(iso, r, &a, &v, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "function");
    tr_arena_deinit(&a);
    jsg_ref_free(iso, r);
    jsg_isolate_free(iso);
}

TEST(jsg_exception_message_and_stack)
{
    jsg_isolate *iso = new_iso();
    static const char code[] = "function inner() { throw new TypeError('bad thing'); }\n"
                               "function outer() { inner(); }\nouter();";
    tr_error err;
    CHECK_EQ(jsg_eval(iso, code, sizeof code - 1, "app.js", NULL, &err), TR_EJS);
    CHECK_CONTAINS(err.msg, "TypeError: bad thing");
    CHECK_CONTAINS(err.msg, "at inner (app.js:1");
    CHECK_CONTAINS(err.msg, "at outer (app.js:2");
    /* a thrown non-Error */
    CHECK_EQ(jsg_eval(iso, "throw 42", 8, "x.js", NULL, &err), TR_EJS);
    CHECK_STR_EQ(err.msg, "Uncaught 42");
    /* a syntax error names file and line */
    CHECK_EQ(jsg_eval(iso, "\n\nlet = = 1", 10, "syn.js", NULL, &err), TR_EJS);
    CHECK_CONTAINS(err.msg, "SyntaxError");
    CHECK_CONTAINS(err.msg, "syn.js:3");
    /* the isolate is still fine */
    eval_str(iso, "'still ' + 'ok'", "still ok");
    jsg_isolate_free(iso);
}

/* ---- host functions ---- */

static int host_add(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                    jsg_ref *result, tr_error *err)
{
    (void)this_;
    int *calls = user;
    ++*calls;
    tr_arena a;
    tr_arena_init(&a, 1024);
    double sum = 0;
    for (size_t i = 0; i < argc; i++) {
        jsg_val v;
        int rc = jsg_to_val(iso, argv[i], &a, &v, err);
        if (rc == 0 && v.type != JSG_NUMBER)
            rc = tr_error_set(err, TR_EINVAL, "add: argument %zu is not a number", i);
        if (rc < 0) {
            tr_arena_deinit(&a);
            return rc;
        }
        sum += v.u.num;
    }
    tr_arena_deinit(&a);
    jsg_val r = jsg_number(sum);
    return jsg_from_val(iso, &r, result, err);
}

static int host_echo(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                     jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    (void)err;
    if (argc == 0) return 0; /* undefined */
    return jsg_ref_dup(iso, argv[0], result);
}

static int host_fail(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                     jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    (void)result;
    tr_buf b = TR_BUF_INIT;
    if (argc > 0) jsg_to_string(iso, argv[0], &b, err);
    tr_error_set(err, TR_ESQL, "host says: %s", b.data ? b.data : "");
    tr_buf_free(&b);
    return TR_ESQL;
}

TEST(jsg_host_functions)
{
    jsg_isolate *iso = new_iso();
    int calls = 0;
    tr_error err;
    CHECK_EQ(jsg_define_function(iso, 0, "add", host_add, &calls, &err), 0);
    CHECK_EQ(jsg_define_function(iso, 0, "echo", host_echo, NULL, &err), 0);
    CHECK_EQ(jsg_define_function(iso, 0, "add", host_add, &calls, &err), TR_ECONFLICT);
    /* on an object of its own, like __trailhost */
    jsg_ref obj = eval_ok(iso, "globalThis.host = {}; host");
    CHECK_EQ(jsg_define_function(iso, obj, "fail", host_fail, NULL, &err), 0);
    jsg_ref_free(iso, obj);

    eval_str(iso, "String(add(1, 2, 3.5))", "6.5");
    CHECK_EQ(calls, 1);
    eval_str(iso,
             "[echo('\\u{1F600}\\u0000!') === '\\u{1F600}\\u0000!', echo() === undefined, "
             "echo(2n**60n) === 2n**60n, echo(echo).name].join()",
             "true,true,true,echo");
    /* a host error is a catchable Error in JS */
    eval_str(iso,
             "try { host.fail('no such table'); 'not thrown' } "
             "catch (e) { (e instanceof Error) + ' ' + e.message }",
             "true host says: no such table");
    eval_str(iso, "try { add('x') } catch (e) { e.message }", "add: argument 0 is not a number");
    /* uncaught, it reaches the host as TR_EJS with the message */
    CHECK_EQ(jsg_eval(iso, "host.fail('x')", 14, "a.js", NULL, &err), TR_EJS);
    CHECK_CONTAINS(err.msg, "Error: host says: x");
    jsg_isolate_free(iso);
}

/* ---- promises from the host ---- */

typedef struct pending {
    jsg_deferred d[4];
    int n;
} pending;

static int host_query(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                      jsg_ref *result, tr_error *err)
{
    (void)this_;
    (void)argc;
    (void)argv;
    pending *p = user;
    if (p->n == 4) return tr_error_set(err, TR_ELIMIT, "too many queries");
    jsg_deferred *d = &p->d[p->n];
    int rc = jsg_deferred_new(iso, d, err);
    if (rc < 0) return rc;
    p->n++;
    return jsg_ref_dup(iso, d->promise, result);
}

TEST(jsg_promises_settled_by_host)
{
    jsg_isolate *iso = new_iso();
    pending p = {.n = 0};
    tr_error err;
    CHECK_EQ(jsg_define_function(iso, 0, "query", host_query, &p, &err), 0);
    jsg_ref_free(iso, eval_ok(iso, "var log = []; "
                                   "(async () => { const rows = await query('SELECT 1'); "
                                   "  log.push('rows ' + JSON.stringify(rows)); })(); "
                                   "query('bad').catch(e => log.push('error ' + e.message)); "
                                   "log.push('sync done');"));
    CHECK_EQ(p.n, 2);
    CHECK_EQ(jsg_run_jobs(iso, &err), 0);
    eval_str(iso, "log.join('|')", "sync done");

    /* the host loop settles them later */
    jsg_val row[] = {jsg_number(1), jsg_string("a", 1)};
    jsg_val rows_v = jsg_array((jsg_val[]){jsg_array(row, 2)}, 1);
    jsg_ref rows = 0;
    CHECK_EQ(jsg_from_val(iso, &rows_v, &rows, &err), 0);
    CHECK_EQ(jsg_deferred_resolve(iso, &p.d[0], rows, &err), 0);
    jsg_ref_free(iso, rows);
    CHECK_EQ(jsg_deferred_reject(iso, &p.d[1], "no such table: t", 16, &err), 0);
    eval_str(iso, "log.join('|')", "sync done"); /* not before jobs run */
    CHECK_EQ(jsg_run_jobs(iso, &err), 0);
    eval_str(iso, "log.join('|')", "sync done|rows [[1,\"a\"]]|error no such table: t");

    /* the host can read a promise's state and result */
    jsg_promise_state st;
    jsg_ref res = 0;
    CHECK_EQ(jsg_promise_state_get(iso, p.d[0].promise, &st, &res, &err), 0);
    CHECK_EQ(st, JSG_FULFILLED);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_json(iso, res, &b, &err), 0);
    CHECK_STR_EQ(b.data, "[[1,\"a\"]]");
    tr_buf_free(&b);
    jsg_ref_free(iso, res);
    CHECK_EQ(jsg_promise_state_get(iso, p.d[1].promise, &st, NULL, &err), 0);
    CHECK_EQ(st, JSG_REJECTED);
    CHECK_EQ(jsg_deferred_resolve(iso, &p.d[0], 0, &err), TR_EINVAL); /* already settled */
    for (int i = 0; i < p.n; i++)
        jsg_ref_free(iso, p.d[i].promise);

    /* a deferred dropped unsettled */
    jsg_deferred d;
    CHECK_EQ(jsg_deferred_new(iso, &d, &err), 0);
    CHECK_EQ(jsg_promise_state_get(iso, d.promise, &st, NULL, &err), 0);
    CHECK_EQ(st, JSG_PENDING);
    jsg_deferred_free(iso, &d);
    jsg_ref_free(iso, d.promise);
    jsg_isolate_free(iso);
}

static int host_now(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                    jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    return jsg_promise_resolved(iso, argc > 0 ? argv[0] : 0, result, err);
}

TEST(jsg_promise_resolved_at_once)
{
    jsg_isolate *iso = new_iso();
    tr_error err;
    CHECK_EQ(jsg_define_function(iso, 0, "now", host_now, NULL, &err), 0);
    /* settled before the call returns, its value seen one microtask later, in order */
    /* as Promise.resolve(): a promise comes back as itself, a thenable is followed */
    jsg_ref_free(iso, eval_ok(iso, "var log = []; "
                                   "(async () => { "
                                   "  log.push('got ' + JSON.stringify(await now([1, 'a']))); })(); "
                                   "now().then(v => log.push('undefined ' + (v === undefined))); "
                                   "var p = Promise.resolve(7); log.push('same ' + (now(p) === p)); "
                                   "now({then(f) { f('thenable'); }}).then(v => log.push(v)); "
                                   "log.push('sync done');"));
    CHECK_EQ(jsg_run_jobs(iso, &err), 0);
    eval_str(iso, "log.join('|')", "same true|sync done|got [1,\"a\"]|undefined true|thenable");
    jsg_ref v = eval_ok(iso, "[2, 3]");
    jsg_ref pr = 0;
    CHECK_EQ(jsg_promise_resolved(iso, v, &pr, &err), 0);
    jsg_ref_free(iso, v);
    jsg_promise_state st;
    jsg_ref res = 0;
    CHECK_EQ(jsg_promise_state_get(iso, pr, &st, &res, &err), 0);
    CHECK_EQ(st, JSG_FULFILLED);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_json(iso, res, &b, &err), 0);
    CHECK_STR_EQ(b.data, "[2,3]");
    tr_buf_free(&b);
    jsg_ref_free(iso, res);
    jsg_ref_free(iso, pr);
    jsg_isolate_free(iso);
}

typedef struct rejections {
    int n;
    char msgs[4][1024];
} rejections;

static void on_rejection(jsg_isolate *iso, void *user, const tr_error *reason)
{
    (void)iso;
    rejections *r = user;
    if (r->n < 4) snprintf(r->msgs[r->n], sizeof r->msgs[0], "%s", reason->msg);
    r->n++;
}

TEST(jsg_unhandled_rejections_reported)
{
    jsg_isolate *iso = new_iso();
    rejections r = {0};
    jsg_set_rejection_handler(iso, on_rejection, &r);
    tr_error err;
    /* handled right away, handled later in a job, and never handled */
    jsg_ref_free(iso, eval_ok(iso, "Promise.reject(new Error('handled')).catch(() => {});"
                                   "const late = Promise.reject(new Error('late'));"
                                   "Promise.resolve().then(() => late.catch(() => {}));"
                                   "Promise.reject(new TypeError('lost one'));"
                                   "(async () => { throw new RangeError('lost two'); })(); 0"));
    CHECK_EQ(r.n, 0); /* nothing before the jobs ran out */
    CHECK_EQ(jsg_run_jobs(iso, &err), 0);
    CHECK_EQ(r.n, 2);
    CHECK_CONTAINS(r.msgs[0], "TypeError: lost one");
    CHECK_CONTAINS(r.msgs[1], "RangeError: lost two");
    CHECK_EQ(jsg_run_jobs(iso, &err), 0);
    CHECK_EQ(r.n, 2); /* each reported once */
    jsg_isolate_free(iso);
}

/* ---- modules and calls ---- */

TEST(jsg_module_default_export)
{
    jsg_isolate *iso = new_iso();
    static const char src[] =
        "const greeting = await Promise.resolve('hi');\n"
        "export const answer = 42;\n"
        "export default { greet(name) { return `${greeting} ${name}`; }, count: 0 };\n";
    tr_error err;
    jsg_ref ns = 0;
    CHECK_EQ(jsg_eval_module(iso, src, sizeof src - 1, "component.js", &ns, &err), 0);
    jsg_ref def = 0, greet = 0, answer = 0;
    CHECK_EQ(jsg_get(iso, ns, "default", 7, &def, &err), 0);
    CHECK_EQ(jsg_get(iso, ns, "answer", 6, &answer, &err), 0);
    CHECK_EQ(jsg_ref_kind(iso, answer), JSG_K_NUMBER);
    CHECK_EQ(jsg_get(iso, def, "greet", 5, &greet, &err), 0);
    CHECK_EQ(jsg_ref_kind(iso, greet), JSG_K_FUNCTION);
    jsg_val name = jsg_string("trail", 5);
    jsg_ref arg = 0, out = 0;
    CHECK_EQ(jsg_from_val(iso, &name, &arg, &err), 0);
    CHECK_EQ(jsg_call(iso, greet, def, 1, &arg, &out, &err), 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_string(iso, out, &b, &err), 0);
    CHECK_STR_EQ(b.data, "hi trail");
    /* write a property from the host, read it back from JS */
    jsg_val seven = jsg_number(7);
    jsg_ref sv = 0;
    CHECK_EQ(jsg_from_val(iso, &seven, &sv, &err), 0);
    CHECK_EQ(jsg_set(iso, def, "count", 5, sv, &err), 0);
    jsg_ref cnt = 0;
    CHECK_EQ(jsg_get(iso, def, "count", 5, &cnt, &err), 0);
    CHECK_EQ(jsg_to_json(iso, cnt, &b, &err), 0);
    CHECK_STR_EQ(b.data, "7");
    tr_buf_free(&b);
    jsg_ref refs[] = {ns, def, greet, answer, arg, out, sv, cnt};
    for (size_t i = 0; i < TR_ARRAY_LEN(refs); i++)
        jsg_ref_free(iso, refs[i]);

    /* a module that throws while evaluating, and one that imports */
    static const char bad[] = "export default 1;\nthrow new Error('init failed');";
    CHECK_EQ(jsg_eval_module(iso, bad, sizeof bad - 1, "bad.js", &ns, &err), TR_EJS);
    CHECK_CONTAINS(err.msg, "init failed");
    static const char imp[] = "import x from 'other.js';\nexport default x;";
    CHECK_EQ(jsg_eval_module(iso, imp, sizeof imp - 1, "imp.js", &ns, &err), TR_EJS);
    CHECK_CONTAINS(err.msg, "other.js");
    jsg_isolate_free(iso);
}

TEST(jsg_bytecode_compiled_once_runs_elsewhere)
{
    jsg_isolate *a = new_iso(), *b = new_iso();
    tr_error err;
    tr_buf bc = TR_BUF_INIT;
    static const char mod[] = "let n = 0;\n"
                              "export default { next() { return ++n; }, where() { throw new "
                              "Error('in module'); } };";
    CHECK_EQ(jsg_compile(a, mod, sizeof mod - 1, "component.js", true, &bc, &err), 0);
    CHECK(bc.len > 10);
    /* the same bytecode gives two independent module instances */
    for (int round = 0; round < 2; round++) {
        jsg_isolate *iso = round ? b : a;
        jsg_ref ns = 0, def = 0, next = 0, r = 0;
        CHECK_EQ(jsg_eval_bytecode(iso, bc.data, bc.len, &ns, &err), 0);
        CHECK_EQ(jsg_get(iso, ns, "default", 7, &def, &err), 0);
        CHECK_EQ(jsg_get(iso, def, "next", 4, &next, &err), 0);
        CHECK_EQ(jsg_call(iso, next, def, 0, NULL, NULL, &err), 0);
        CHECK_EQ(jsg_call(iso, next, def, 0, NULL, &r, &err), 0);
        tr_buf out = TR_BUF_INIT;
        CHECK_EQ(jsg_to_json(iso, r, &out, &err), 0);
        CHECK_STR_EQ(out.data, "2");
        tr_buf_free(&out);
        /* stack traces still name the file */
        jsg_ref where = 0;
        CHECK_EQ(jsg_get(iso, def, "where", 5, &where, &err), 0);
        CHECK_EQ(jsg_call(iso, where, def, 0, NULL, NULL, &err), TR_EJS);
        CHECK_CONTAINS(err.msg, "Error: in module");
        CHECK_CONTAINS(err.msg, "component.js:2");
        jsg_ref refs[] = {ns, def, next, r, where};
        for (size_t i = 0; i < TR_ARRAY_LEN(refs); i++)
            jsg_ref_free(iso, refs[i]);
    }
    /* a script */
    CHECK_EQ(jsg_compile(a, "6 * 7", 5, "s.js", false, &bc, &err), 0);
    jsg_ref r = 0;
    CHECK_EQ(jsg_eval_bytecode(b, bc.data, bc.len, &r, &err), 0);
    tr_buf out = TR_BUF_INIT;
    CHECK_EQ(jsg_to_json(b, r, &out, &err), 0);
    CHECK_STR_EQ(out.data, "42");
    tr_buf_free(&out);
    jsg_ref_free(b, r);
    /* errors */
    CHECK_EQ(jsg_compile(a, "let = =", 7, "bad.js", false, &bc, &err), TR_EJS);
    CHECK_CONTAINS(err.msg, "SyntaxError");
    CHECK_EQ(jsg_eval_bytecode(b, "x", 1, NULL, &err), TR_EINVAL);
    CHECK_EQ(jsg_eval_bytecode(b, "nope", 4, NULL, &err), TR_EINVAL);
    tr_buf_free(&bc);
    jsg_isolate_free(a);
    jsg_isolate_free(b);
}

/* ---- limits ---- */

TEST(jsg_interrupt_at_deadline)
{
    jsg_options o = {.timeout_ns = 100 * 1000000ull};
    jsg_isolate *iso = NULL;
    tr_error err;
    CHECK_EQ(jsg_isolate_new(&o, &iso, &err), 0);
    uint64_t t0 = tr_now_ns();
    CHECK_EQ(jsg_eval(iso, "while (true) {}", 15, "loop.js", NULL, &err), TR_EINTERRUPTED);
    uint64_t ms = (tr_now_ns() - t0) / 1000000;
    CHECK_CONTAINS(err.msg, "interrupted");
    /* JS cannot catch the interrupt */
    static const char catching[] = "try { for (;;) {} } catch (e) { 'caught' }";
    CHECK_EQ(jsg_eval(iso, catching, sizeof catching - 1, "c.js", NULL, &err), TR_EINTERRUPTED);
    /* the same isolate runs new code correctly, with a fresh deadline */
    eval_str(iso, "let s = 0; for (let i = 0; i < 1000; i++) s += i; String(s)", "499500");
    CHECK(!jsg_isolate_dead(iso));
    /* a function call is interrupted too */
    jsg_ref f = eval_ok(iso, "(function spin() { for (;;) {} })");
    CHECK_EQ(jsg_call(iso, f, 0, 0, NULL, NULL, &err), TR_EINTERRUPTED);
    jsg_ref_free(iso, f);
    test_report("while(true){} interrupted after %llu ms (deadline 100 ms)",
                (unsigned long long)ms);
    jsg_isolate_free(iso);
}

static int host_sleep(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                      jsg_ref *result, tr_error *err)
{
    (void)iso;
    (void)user;
    (void)this_;
    (void)argc;
    (void)argv;
    (void)result;
    (void)err;
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL);
    return 0;
}

TEST(jsg_cpu_time_budget)
{
    jsg_options o = {.timeout_ns = 100 * 1000000ull, .cpu_time = true};
    jsg_isolate *iso = NULL;
    tr_error err;
    CHECK_EQ(jsg_isolate_new(&o, &iso, &err), 0);
    CHECK_EQ(jsg_define_function(iso, 0, "sleep", host_sleep, NULL, &err), 0);
    /* sleeping is not CPU time: three 300 ms sleeps between busy bits pass a 100 ms budget */
    static const char idle[] = "for (let k = 0; k < 3; k++) { for (let i = 0; i < 20000; i++) {} "
                               "sleep(); } 'slept'";
    eval_str(iso, idle, "slept");
    /* spinning is */
    CHECK_EQ(jsg_eval(iso, "for (;;) {}", 11, "spin.js", NULL, &err), TR_EINTERRUPTED);
    jsg_isolate_free(iso);
    /* with a wall-clock budget the same sleeps run out of time */
    o.cpu_time = false;
    CHECK_EQ(jsg_isolate_new(&o, &iso, &err), 0);
    CHECK_EQ(jsg_define_function(iso, 0, "sleep", host_sleep, NULL, &err), 0);
    CHECK_EQ(jsg_eval(iso, idle, sizeof idle - 1, "idle.js", NULL, &err), TR_EINTERRUPTED);
    jsg_isolate_free(iso);
}

static void *interrupt_later(void *p)
{
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    jsg_interrupt(p);
    return NULL;
}

TEST(jsg_interrupt_from_another_thread)
{
    jsg_isolate *iso = new_iso(); /* no deadline */
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, interrupt_later, iso), 0);
    tr_error err;
    CHECK_EQ(jsg_eval(iso, "for (;;) {}", 11, "spin.js", NULL, &err), TR_EINTERRUPTED);
    pthread_join(t, NULL);
    eval_str(iso, "'after'", "after"); /* the request was used up */
    jsg_isolate_free(iso);
}

TEST(jsg_memory_limit)
{
    jsg_options o = {.memory_limit = 16 << 20};
    jsg_isolate *iso = NULL;
    tr_error err;
    CHECK_EQ(jsg_isolate_new(&o, &iso, &err), 0);
    /* many small allocations */
    eval_str(iso,
             "let keep = []; try { for (;;) keep.push(new Array(1000).fill(1.5)); } "
             "catch (e) { keep = null; String(e) }",
             "InternalError: out of memory");
    CHECK(jsg_memory_size(iso) <= (16u << 20));
    /* one big allocation */
    eval_str(iso, "try { new Uint8Array(64 << 20); 'allocated' } catch (e) { String(e) }",
             "InternalError: out of memory");
    eval_str(iso, "try { 'x'.repeat(1 << 29) } catch (e) { String(e) }",
             "InternalError: out of memory");
    /* uncaught, it is reported as out of memory */
    static const char grow[] = "let a = []; for (;;) a.push({x: [1, 2, 3]});";
    CHECK_EQ(jsg_eval(iso, grow, sizeof grow - 1, "m.js", NULL, &err), TR_ENOMEM);
    CHECK(jsg_memory_size(iso) <= (16u << 20));
    /* and the isolate still works */
    jsg_ref_free(iso, eval_ok(iso, "a = null; 0"));
    eval_str(iso, "[1, 2, 3].map(x => x * 2).join()", "2,4,6");
    test_report("linear memory after OOM: %zu KiB of a 16384 KiB limit",
                jsg_memory_size(iso) >> 10);
    jsg_isolate_free(iso);
}

typedef struct rec_case {
    const char *code;
    const char *want;
} rec_case;

static void *recursion_thread(void *arg)
{
    const rec_case *cases = arg;
    jsg_isolate *iso = new_iso();
    for (const rec_case *c = cases; c->code; c++) {
        tr_error err;
        jsg_ref r = 0;
        int rc = jsg_eval(iso, c->code, strlen(c->code), "rec.js", &r, &err);
        if (rc != 0) fprintf(stderr, "%s: %s\n", c->code, err.msg);
        CHECK_EQ(rc, 0);
        tr_buf b = TR_BUF_INIT;
        CHECK_EQ(jsg_to_string(iso, r, &b, &err), 0);
        jsg_ref_free(iso, r);
        CHECK_STR_EQ(b.data, c->want);
        tr_buf_free(&b);
    }
    CHECK(!jsg_isolate_dead(iso));
    jsg_isolate_free(iso);
    wrt_thread_deinit();
    return NULL;
}

TEST(jsg_deep_recursion_is_range_error)
{
    /* Each shape of recursion that the engine runs on the native stack; the parser and JSON
     * use the most native stack per byte of QuickJS's own stack (docs/engine.md). */
    static const rec_case cases[] = {
        {"function f() { return f() + 1; } try { f() } catch (e) { e.name }", "RangeError"},
        {"function g() { return [1].map(g); } try { g() } catch (e) { e.name }", "RangeError"},
        {"var o = { get x() { return this.x; } }; try { o.x } catch (e) { e.name }", "RangeError"},
        {"var p = new Proxy({}, { get(t, k, r) { return r[k]; } }); try { p.x } catch (e) { e.name "
         "}",
         "RangeError"},
        {"try { eval('('.repeat(100000) + '1' + ')'.repeat(100000)) } catch (e) { e.name }",
         "RangeError"},
        {"try { JSON.parse('['.repeat(100000) + ']'.repeat(100000)) } catch (e) { e.name }",
         "RangeError"},
        {"var a = []; for (var i = 0; i < 100000; i++) a = [a]; "
         "try { JSON.stringify(a) } catch (e) { e.name }",
         "RangeError"},
        {"function h() { return h.call(null) + 1; } try { h() } catch (e) { e.name }",
         "RangeError"},
        {"function d(n) { return n ? d(n - 1) + 1 : 0; } String(d(2000))", "2000"},
        {NULL, NULL},
    };
    pthread_attr_t attr;
    CHECK_EQ(wrt_thread_attr_init(&attr), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, &attr, recursion_thread, (void *)cases), 0);
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
}

TEST(jsg_stack_limit_follows_the_thread)
{
    /* The parser is the hungriest for native stack: on the test's main thread (8 MiB) and on
     * a 2 MiB thread the default limit shrinks with the stack and deep nesting is still a
     * RangeError, not a trap. */
    static const rec_case cases[] = {
        {"try { eval('('.repeat(100000) + '1' + ')'.repeat(100000)) } catch (e) { e.name }",
         "RangeError"},
        {"var a = []; for (var i = 0; i < 100000; i++) a = [a]; "
         "try { JSON.stringify(a) } catch (e) { e.name }",
         "RangeError"},
        {"function f() { return f() + 1; } try { f() } catch (e) { e.name }", "RangeError"},
        {NULL, NULL},
    };
    recursion_thread((void *)cases);
    pthread_attr_t attr;
    CHECK_EQ(pthread_attr_init(&attr), 0);
    CHECK_EQ(pthread_attr_setstacksize(&attr, 2 << 20), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, &attr, recursion_thread, (void *)cases), 0);
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
}

TEST(jsg_trap_kills_only_that_isolate)
{
    jsg_isolate *iso = new_iso(), *other = new_iso();
    tr_error err;
    tr_arena a;
    tr_arena_init(&a, 1024);
    jsg_val v;
    /* a bogus ref makes the engine read outside its memory: a trap, not a host crash */
    CHECK_EQ(jsg_to_val(iso, 0xfffffff0u, &a, &v, &err), TR_ETRAP);
    CHECK_CONTAINS(err.msg, "out of bounds");
    CHECK(jsg_isolate_dead(iso));
    CHECK_EQ(jsg_eval(iso, "1", 1, "x.js", NULL, &err), TR_ETRAP);
    tr_arena_deinit(&a);
    jsg_isolate_free(iso);
    eval_str(other, "'fine'", "fine");
    jsg_isolate_free(other);
    /* a new isolate on the same thread works */
    iso = new_iso();
    eval_str(iso, "'new'", "new");
    jsg_isolate_free(iso);
}

static int host_traps(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                      jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    (void)argc;
    (void)argv;
    (void)result;
    tr_arena a;
    tr_arena_init(&a, 256);
    jsg_val v;
    int rc = jsg_to_val(iso, 0xfffffff0u, &a, &v, err); /* traps inside the nested call */
    tr_arena_deinit(&a);
    return rc;
}

TEST(jsg_trap_inside_host_function_unwinds_the_outer_call)
{
    jsg_isolate *iso = new_iso();
    tr_error err;
    CHECK_EQ(jsg_define_function(iso, 0, "boom", host_traps, NULL, &err), 0);
    static const char code[] = "try { boom(); 'caught' } catch (e) { 'caught' }";
    CHECK_EQ(jsg_eval(iso, code, sizeof code - 1, "t.js", NULL, &err), TR_ETRAP);
    CHECK(jsg_isolate_dead(iso));
    jsg_isolate_free(iso);
    iso = new_iso();
    eval_str(iso, "'next'", "next");
    jsg_isolate_free(iso);
}

static size_t vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

TEST(jsg_free_releases_everything)
{
    jsg_isolate_free(new_iso()); /* warm up process-wide state */
    size_t before = vm_size_kib();
    for (int i = 0; i < 50; i++) {
        jsg_isolate *iso = new_iso();
        jsg_ref_free(iso, eval_ok(iso, "globalThis.big = new Array(100000).fill('x'); 1"));
        jsg_ref leaked = eval_ok(iso, "({ never: 'freed by the host' })");
        (void)leaked; /* released with the isolate */
        jsg_isolate_free(iso);
    }
    size_t after = vm_size_kib();
    test_report("VmSize %zu KiB before, %zu KiB after 50 isolates", before, after);
    CHECK(after < before + 64 * 1024);
}

/* ---- threads ---- */

typedef struct thread_arg {
    int id;
    long ok;
} thread_arg;

static void *call_thread(void *p)
{
    thread_arg *t = p;
    jsg_isolate *iso = new_iso();
    tr_error err;
    int calls = 0;
    CHECK_EQ(jsg_define_function(iso, 0, "add", host_add, &calls, &err), 0);
    char code[128];
    snprintf(code, sizeof code, "(x) => add(x, %d) * 2", t->id);
    jsg_ref f = eval_ok(iso, code);
    for (int i = 0; i < 10000; i++) {
        jsg_val x = jsg_number(i);
        jsg_ref arg = 0, out = 0;
        CHECK_EQ(jsg_from_val(iso, &x, &arg, &err), 0);
        CHECK_EQ(jsg_call(iso, f, 0, 1, &arg, &out, &err), 0);
        tr_arena a;
        tr_arena_init(&a, 256);
        jsg_val r;
        CHECK_EQ(jsg_to_val(iso, out, &a, &r, &err), 0);
        if (r.type == JSG_NUMBER && r.u.num == (double)((i + t->id) * 2)) t->ok++;
        tr_arena_deinit(&a);
        jsg_ref_free(iso, arg);
        jsg_ref_free(iso, out);
    }
    CHECK_EQ(calls, 10000);
    jsg_ref_free(iso, f);
    jsg_isolate_free(iso);
    wrt_thread_deinit();
    return NULL;
}

TEST_TIMEOUT(jsg_four_threads_concurrently, 60)
{
    pthread_attr_t attr;
    CHECK_EQ(wrt_thread_attr_init(&attr), 0);
    thread_arg args[4];
    pthread_t th[4];
    uint64_t t0 = tr_now_ns();
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){i + 1, 0};
        CHECK_EQ(pthread_create(&th[i], &attr, call_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pthread_attr_destroy(&attr);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(args[i].ok, 10000);
    test_report("4 threads x 10000 host->JS->host calls in %llu ms (ASan build)",
                (unsigned long long)((tr_now_ns() - t0) / 1000000));
}

TEST(jsg_engine_identity)
{
    CHECK_STR_EQ(jsg_engine_version(), "quickjs-wasi 3.6.2");
    CHECK_EQ(strlen(jsg_engine_sha256()), 64);
}
