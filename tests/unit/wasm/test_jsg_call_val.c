/* Tests for jsg_call_val() and jsg_promise_val() (wasm/js/jsg.h), the one-entry request path:
 * arguments built from host values (names, refs, nested arrays and objects), the result read
 * back whether it is a value, a settled promise, a pending one or a rejection. */
#include "test.h"

#include "wasm/js/jsg.h"

static jsg_isolate *iso_new(void)
{
    jsg_isolate *iso = NULL;
    tr_error err;
    tr_error_clear(&err);
    CHECK_EQ(jsg_isolate_new(NULL, &iso, &err), 0);
    return iso;
}

static jsg_ref eval_ref(jsg_isolate *iso, const char *code)
{
    tr_error err;
    tr_error_clear(&err);
    jsg_ref r = 0;
    int rc = jsg_eval(iso, code, strlen(code), "<test>", &r, &err);
    if (rc != 0) fprintf(stderr, "eval %s: %s\n", code, err.msg);
    CHECK_EQ(rc, 0);
    return r;
}

static const jsg_val *prop(const jsg_val *obj, const char *key)
{
    CHECK_EQ(obj->type, JSG_OBJECT);
    for (size_t i = 0; i < obj->u.obj.len; i++)
        if (strlen(key) == obj->u.obj.props[i].key_len &&
            memcmp(key, obj->u.obj.props[i].key, obj->u.obj.props[i].key_len) == 0)
            return &obj->u.obj.props[i].val;
    CHECK(!"property missing");
    return NULL;
}

TEST(jsg_call_val_builds_arguments_and_reads_the_result)
{
    jsg_isolate *iso = iso_new();
    tr_arena a;
    tr_arena_init(&a, 1024);
    tr_error err;
    tr_error_clear(&err);
    jsg_ref fn = eval_ref(iso, "(i, r) => ({ i, m: r.method, h: r.headers, shared: r.body === "
                               "globalThis.empty, frozen: Object.isFrozen(r.body), n: r.n + 0.5, "
                               "big: r.big * 2n, keys: Object.keys(r), f: () => 1 })");
    jsg_ref empty = eval_ref(iso, "globalThis.empty = Object.freeze(new Uint8Array(0))");
    /* the same names twice: the second time they come from the isolate's cache */
    for (int round = 0; round < 2; round++) {
        jsg_val pair[2] = {jsg_name("user-agent", 10), jsg_string("wrk\0x", 5)};
        jsg_val headers[2] = {jsg_array(pair, 2), jsg_array(pair, 2)};
        jsg_prop props[5] = {
            {"method", 6, jsg_name("GET", 3)},
            {"headers", 7, jsg_array(headers, 2)},
            {"body", 4, jsg_ref_val(empty)},
            {"n", 1, jsg_number(1e9 + round)},
            {"big", 3, jsg_bigint(-(INT64_C(1) << 40))},
        };
        jsg_val args[2] = {jsg_number(3), jsg_object(props, 5)}, out;
        jsg_ref pending = 1;
        CHECK_EQ(jsg_call_val(iso, fn, 0, 2, args, &a, &out, &pending, &err), 0);
        CHECK_EQ(pending, 0u);
        CHECK_EQ(prop(&out, "i")->u.num, 3.0);
        CHECK_EQ(prop(&out, "m")->type, JSG_STRING);
        CHECK_MEM_EQ(prop(&out, "m")->u.str.ptr, prop(&out, "m")->u.str.len, "GET");
        const jsg_val *h = prop(&out, "h");
        CHECK_EQ(h->type, JSG_ARRAY);
        CHECK_EQ(h->u.arr.len, 2u);
        CHECK_EQ(h->u.arr.items[1].u.arr.items[0].u.str.len, 10u);
        CHECK_EQ(h->u.arr.items[1].u.arr.items[1].u.str.len, 5u);
        CHECK(memcmp(h->u.arr.items[1].u.arr.items[1].u.str.ptr, "wrk\0x", 5) == 0);
        CHECK_EQ(prop(&out, "shared")->u.b, true);
        CHECK_EQ(prop(&out, "frozen")->u.b, true);
        CHECK_EQ(prop(&out, "n")->u.num, 1e9 + round + 0.5);
        CHECK_EQ(prop(&out, "big")->u.big, -(INT64_C(1) << 41));
        CHECK_EQ(prop(&out, "keys")->u.arr.len, 5u);
        CHECK_EQ(out.u.obj.len, 8u); /* the function is skipped */
    }
    /* a bare string, and a function (not convertible) */
    jsg_ref s = eval_ref(iso, "(x) => x ? 'héllo' : () => 1");
    jsg_val t = jsg_bool(true), f = jsg_bool(false), out;
    jsg_ref pending;
    CHECK_EQ(jsg_call_val(iso, s, 0, 1, &t, &a, &out, &pending, &err), 0);
    CHECK_EQ(out.type, JSG_STRING);
    CHECK_STR_EQ(out.u.str.ptr, "héllo");
    CHECK_EQ(jsg_call_val(iso, s, 0, 1, &f, &a, &out, &pending, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "function");
    jsg_ref_free(iso, s);
    jsg_ref_free(iso, fn);
    jsg_ref_free(iso, empty);
    tr_arena_deinit(&a);
    jsg_isolate_free(iso);
}

TEST(jsg_call_val_promises_settled_pending_rejected)
{
    jsg_isolate *iso = iso_new();
    tr_arena a;
    tr_arena_init(&a, 1024);
    tr_error err;
    tr_error_clear(&err);
    jsg_val out, x = jsg_number(21);
    jsg_ref pending = 0;
    /* settled by the jobs jsg_call_val runs */
    jsg_ref dbl = eval_ref(iso, "async (x) => { await null; return { v: x * 2 } }");
    CHECK_EQ(jsg_call_val(iso, dbl, 0, 1, &x, &a, &out, &pending, &err), 0);
    CHECK_EQ(pending, 0u);
    CHECK_EQ(prop(&out, "v")->u.num, 42.0);
    /* pending until the host settles it later */
    jsg_ref wait = eval_ref(iso, "() => new Promise((r) => { globalThis.later = r })");
    CHECK_EQ(jsg_call_val(iso, wait, 0, 0, NULL, &a, &out, &pending, &err), 0);
    CHECK(pending != 0);
    CHECK_EQ(out.type, JSG_UNDEFINED);
    bool settled = true;
    CHECK_EQ(jsg_promise_val(iso, pending, &a, &out, &settled, &err), 0);
    CHECK(!settled);
    jsg_ref_free(iso, eval_ref(iso, "later('done')"));
    CHECK_EQ(jsg_run_jobs(iso, &err), 0);
    CHECK_EQ(jsg_promise_val(iso, pending, &a, &out, &settled, &err), 0);
    CHECK(settled);
    CHECK_STR_EQ(out.u.str.ptr, "done");
    CHECK_EQ(jsg_promise_val(iso, dbl, &a, &out, &settled, &err), TR_EINVAL);
    jsg_ref_free(iso, pending);
    /* rejections and synchronous throws carry the JS error */
    jsg_ref bad = eval_ref(iso, "async (x) => { if (x) throw new TypeError('nope'); }");
    CHECK_EQ(jsg_call_val(iso, bad, 0, 1, &x, &a, &out, &pending, &err), TR_EJS);
    CHECK_CONTAINS(err.msg, "TypeError: nope");
    CHECK_EQ(pending, 0u);
    jsg_ref thr = eval_ref(iso, "() => { throw new RangeError('sync') }");
    CHECK_EQ(jsg_call_val(iso, thr, 0, 0, NULL, &a, &out, &pending, &err), TR_EJS);
    CHECK_CONTAINS(err.msg, "RangeError: sync");
    /* the isolate is fine afterwards */
    CHECK_EQ(jsg_call_val(iso, dbl, 0, 1, &x, &a, &out, &pending, &err), 0);
    CHECK_EQ(prop(&out, "v")->u.num, 42.0);
    jsg_ref_free(iso, dbl);
    jsg_ref_free(iso, wait);
    jsg_ref_free(iso, bad);
    jsg_ref_free(iso, thr);
    tr_arena_deinit(&a);
    jsg_isolate_free(iso);
}

/* An object argument nothing holds after its call is reused for the next call with the same
 * keys; one that something kept, or that was frozen, is not. */
TEST(jsg_call_val_reuses_only_unreferenced_arguments)
{
    jsg_isolate *iso = iso_new();
    tr_arena a;
    tr_arena_init(&a, 1024);
    tr_error err;
    tr_error_clear(&err);
    jsg_ref fn = eval_ref(iso, "(r, mode) => { const prev = globalThis.last; "
                               "if (mode === 'keep') globalThis.last = r; "
                               "if (mode === 'freeze') Object.freeze(r); "
                               "return [r.x, r.y, prev ? prev.x : null, prev === r] }");
    const char *modes[] = {"keep", "none", "none", "freeze", "none", "keep", "none"};
    for (int i = 0; i < 7; i++) {
        jsg_prop props[2] = {{"x", 1, jsg_number(i)},
                             {"y", 1, jsg_string(modes[i], strlen(modes[i]))}};
        jsg_val args[2] = {jsg_object(props, 2), jsg_string(modes[i], strlen(modes[i]))}, out;
        jsg_ref pending;
        CHECK_EQ(jsg_call_val(iso, fn, 0, 2, args, &a, &out, &pending, &err), 0);
        CHECK_EQ(out.type, JSG_ARRAY);
        CHECK_EQ(out.u.arr.items[0].u.num, (double)i);
        CHECK_STR_EQ(out.u.arr.items[1].u.str.ptr, modes[i]);
        /* what a call kept is never handed to a later call */
        CHECK_EQ(out.u.arr.items[3].u.b, false);
        if (i >= 1 && i < 5) CHECK_EQ(out.u.arr.items[2].u.num, 0.0); /* kept by call 0 */
        if (i == 6) CHECK_EQ(out.u.arr.items[2].u.num, 5.0);
    }
    jsg_ref_free(iso, fn);
    tr_arena_deinit(&a);
    jsg_isolate_free(iso);
}

/* JSG_SHARED arrays are frozen and the same object for the same contents; an equal string
 * that follows another at the same address is the same value, a different one is not. */
TEST(jsg_call_val_shared_arrays_and_strings)
{
    jsg_isolate *iso = iso_new();
    tr_arena a;
    tr_arena_init(&a, 1024);
    tr_error err;
    tr_error_clear(&err);
    jsg_ref fn =
        eval_ref(iso, "(h, u, p, q) => { const prev = globalThis.prev; globalThis.prev = h; "
                      "return [Object.isFrozen(h[0]), prev !== undefined && prev[0] === "
                      "h[0], h[0] === h[1], h[1][1], u, p, q] }");
    static const char target[] = "/a/b?x=1";
    for (int i = 0; i < 3; i++) {
        char value[8];
        snprintf(value, sizeof value, "v%d", i < 2 ? 0 : 1);
        jsg_val p0[2] = {jsg_name("x-a", 3), jsg_string(value, strlen(value))};
        jsg_val p1[2] = {jsg_name("x-a", 3), jsg_string(value, strlen(value))};
        jsg_val hs[2] = {jsg_shared(p0, 2), jsg_shared(p1, 2)};
        jsg_val args[4] = {jsg_array(hs, 2), jsg_string(target, 8), jsg_string(target, 4),
                           jsg_string(target + 5, 3)},
                out;
        jsg_ref pending;
        CHECK_EQ(jsg_call_val(iso, fn, 0, 4, args, &a, &out, &pending, &err), 0);
        jsg_val *r = out.u.arr.items;
        CHECK_EQ(r[0].u.b, true);   /* frozen */
        CHECK_EQ(r[1].u.b, i == 1); /* the same pair object as the call before */
        CHECK_EQ(r[2].u.b, true);   /* equal contents, one object */
        CHECK_STR_EQ(r[3].u.str.ptr, value);
        CHECK_STR_EQ(r[4].u.str.ptr, "/a/b?x=1");
        CHECK_STR_EQ(r[5].u.str.ptr, "/a/b");
        CHECK_STR_EQ(r[6].u.str.ptr, "x=1");
    }
    /* a shared array holds strings only */
    jsg_val bad[1] = {jsg_number(1)}, arg = jsg_shared(bad, 1), out;
    jsg_ref pending;
    CHECK_EQ(jsg_call_val(iso, fn, 0, 1, &arg, &a, &out, &pending, &err), TR_EINVAL);
    jsg_ref_free(iso, fn);
    tr_arena_deinit(&a);
    jsg_isolate_free(iso);
}

/* jsg_call_result() takes strings, Uint8Arrays and instances of the given class as they are and
 * hands anything else (and a rejection's reason) back as a ref; jsg_promise_result() does the
 * same for a promise that settles later. */
TEST(jsg_call_result_accepts_only_the_given_shapes)
{
    jsg_isolate *iso = iso_new();
    tr_arena a;
    tr_arena_init(&a, 1024);
    tr_error err;
    tr_error_clear(&err);
    jsg_ref cls =
        eval_ref(iso, "globalThis.Resp = class Resp { constructor(b) { this.body = b } }");
    jsg_ref fn =
        eval_ref(iso, "class Sub extends Resp { get status() { return 201 } extra = () => 1 };"
                      "(k) => [() => 'text', () => new Uint8Array([7]), "
                      "() => new Resp('r'), () => new Sub('s'), () => 42, "
                      "() => ({ body: 'plain' }), async () => { await null; return 'a' }, "
                      "async () => { throw new RangeError('no') }, "
                      "() => new Promise((r) => { globalThis.later = r }), "
                      "() => { throw new TypeError('sync') }, "
                      "() => new Proxy({}, { getPrototypeOf() { throw 1 } })][k]()");
    static const char *const props[] = {"body", "status", NULL};
    jsg_accept acc = {cls, props};
    jsg_result r;
    jsg_val k;
    /* taken as they are */
    k = jsg_number(0);
    CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &acc, &a, &r, &err), 0);
    CHECK(r.other == 0 && r.pending == 0);
    CHECK_STR_EQ(r.val.u.str.ptr, "text");
    k = jsg_number(1);
    CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &acc, &a, &r, &err), 0);
    CHECK_EQ(r.val.type, JSG_BYTES);
    for (int i = 2; i <= 3; i++) {
        k = jsg_number(i);
        CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &acc, &a, &r, &err), 0);
        CHECK_EQ(r.other, 0u);
        /* read as the properties asked for, by name: own or inherited */
        CHECK_EQ(r.val.u.obj.len, 2u);
        CHECK_STR_EQ(r.val.u.obj.props[0].key, "body");
        CHECK_STR_EQ(prop(&r.val, "body")->u.str.ptr, i == 2 ? "r" : "s");
        CHECK_EQ(prop(&r.val, "status")->type, i == 2 ? JSG_UNDEFINED : JSG_NUMBER);
    }
    k = jsg_number(6);
    CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &acc, &a, &r, &err), 0);
    CHECK_STR_EQ(r.val.u.str.ptr, "a");
    /* handed back: other values, rejections, a proxy whose prototype cannot be read */
    int others[] = {4, 5, 7, 10};
    for (size_t i = 0; i < TR_ARRAY_LEN(others); i++) {
        k = jsg_number(others[i]);
        CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &acc, &a, &r, &err), 0);
        CHECK(r.other != 0);
        CHECK_EQ(r.pending, 0u);
        CHECK_EQ(r.val.type, JSG_UNDEFINED);
        CHECK_EQ(r.rejected, others[i] == 7);
        jsg_kind want[] = {JSG_K_NUMBER, JSG_K_OBJECT, JSG_K_ERROR, JSG_K_OBJECT};
        CHECK_EQ(jsg_ref_kind(iso, r.other), want[i]);
        jsg_ref_free(iso, r.other);
    }
    /* a synchronous throw is an error, as with jsg_call_val */
    k = jsg_number(9);
    CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &acc, &a, &r, &err), TR_EJS);
    CHECK_CONTAINS(err.msg, "TypeError: sync");
    /* pending, then fulfilled with a value that is not taken */
    k = jsg_number(8);
    CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &acc, &a, &r, &err), 0);
    CHECK(r.pending != 0 && r.other == 0);
    jsg_ref p = r.pending;
    bool settled = true;
    CHECK_EQ(jsg_promise_result(iso, p, &acc, &a, &r, &settled, &err), 0);
    CHECK(!settled);
    jsg_ref_free(iso, eval_ref(iso, "later(new Map())"));
    CHECK_EQ(jsg_run_jobs(iso, &err), 0);
    CHECK_EQ(jsg_promise_result(iso, p, &acc, &a, &r, &settled, &err), 0);
    CHECK(settled && r.other != 0 && !r.rejected);
    CHECK_EQ(jsg_ref_kind(iso, r.other), JSG_K_OBJECT);
    jsg_ref_free(iso, r.other);
    jsg_ref_free(iso, p);
    /* the class may change between calls: an instance of one is not one of another */
    jsg_ref other = eval_ref(iso, "(class Other {})");
    jsg_accept acc2 = {other, props};
    for (int round = 0; round < 2; round++) {
        k = jsg_number(2); /* new Resp('r') */
        CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &acc2, &a, &r, &err), 0);
        CHECK(r.other != 0);
        jsg_ref_free(iso, r.other);
        CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &acc, &a, &r, &err), 0);
        CHECK_EQ(r.other, 0u);
        CHECK_STR_EQ(prop(&r.val, "body")->u.str.ptr, "r");
    }
    jsg_ref_free(iso, other);
    /* without a class there is nothing to check against */
    jsg_accept none = {0, props};
    CHECK_EQ(jsg_call_result(iso, fn, 0, 1, &k, &none, &a, &r, &err), TR_EINVAL);
    jsg_ref_free(iso, fn);
    jsg_ref_free(iso, cls);
    tr_arena_deinit(&a);
    jsg_isolate_free(iso);
}

/* Strings come back byte for byte whichever way they are read: ASCII in place, Latin-1 and
 * 16-bit characters, ropes, NULs and the empty string through the engine. */
TEST(jsg_strings_read_in_place_or_copied)
{
    jsg_isolate *iso = iso_new();
    tr_arena a;
    tr_arena_init(&a, 1024);
    tr_error err;
    tr_error_clear(&err);
    jsg_ref fn =
        eval_ref(iso, "(s) => [s, 'plain ascii', 'caf\\u00e9', '\\u20ac1', 'a\\u0000b', '', "
                      "s + '-' + 'x'.repeat(300), JSON.stringify({k: s, v: 'caf\\u00e9'})]");
    static const char *const want[] = {"from the host",
                                       "plain ascii",
                                       "caf\xc3\xa9",
                                       "\xe2\x82\xac"
                                       "1",
                                       NULL,
                                       "",
                                       NULL,
                                       "{\"k\":\"from the host\",\"v\":\"caf\xc3\xa9\"}"};
    jsg_val arg = jsg_string("from the host", 13), out;
    jsg_ref pending;
    CHECK_EQ(jsg_call_val(iso, fn, 0, 1, &arg, &a, &out, &pending, &err), 0);
    CHECK_EQ(out.u.arr.len, TR_ARRAY_LEN(want));
    for (size_t i = 0; i < TR_ARRAY_LEN(want); i++)
        if (want[i] != NULL) CHECK_STR_EQ(out.u.arr.items[i].u.str.ptr, want[i]);
    CHECK_EQ(out.u.arr.items[4].u.str.len, 3u);
    CHECK(memcmp(out.u.arr.items[4].u.str.ptr, "a\0b", 3) == 0);
    const jsg_val *rope = &out.u.arr.items[6];
    CHECK_EQ(rope->u.str.len, 14u + 300u);
    CHECK(memcmp(rope->u.str.ptr, "from the host-xxx", 17) == 0);
    /* and jsonStringify's fast path writes them the same way */
    jsg_ref obj = eval_ref(iso, "({a: 'ascii', b: 'caf\\u00e9', c: '\\u20ac', d: 'q\"\\n'})"), json;
    CHECK_EQ(jsg_json_fast(iso, obj, &json, &err), 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_string(iso, json, &b, &err), 0);
    CHECK_STR_EQ(
        b.data,
        "{\"a\":\"ascii\",\"b\":\"caf\xc3\xa9\",\"c\":\"\xe2\x82\xac\",\"d\":\"q\\\"\\n\"}");
    tr_buf_free(&b);
    jsg_ref_free(iso, json);
    jsg_ref_free(iso, obj);
    jsg_ref_free(iso, fn);
    tr_arena_deinit(&a);
    jsg_isolate_free(iso);
}

/* A reused argument is refilled with the atoms of its keys kept from when it was kept: right
 * for long keys (not in the atom cache), after the key list changed, and after other calls
 * filled the atom cache with other names. */
TEST(jsg_call_val_refills_with_kept_atoms)
{
    jsg_isolate *iso = iso_new();
    tr_arena a;
    tr_arena_init(&a, 1024);
    tr_error err;
    tr_error_clear(&err);
    jsg_ref fn = eval_ref(iso, "(o) => JSON.stringify(o)");
    static const char long_key[] = "a key longer than the atom cache keeps";
    for (int i = 0; i < 6; i++) {
        char other[32];
        snprintf(other, sizeof other, "k%d", i < 3 ? 0 : 1);
        jsg_prop props[2] = {{long_key, sizeof long_key - 1, jsg_number(i)},
                             {other, strlen(other), jsg_number(-i)}};
        jsg_val arg = jsg_object(props, 2), out;
        jsg_ref pending;
        CHECK_EQ(jsg_call_val(iso, fn, 0, 1, &arg, &a, &out, &pending, &err), 0);
        char want[128];
        snprintf(want, sizeof want, "{\"%s\":%d,\"%s\":%d}", long_key, i, other, -i);
        CHECK_STR_EQ(out.u.str.ptr, want);
        /* fill the atom cache with 100 other names between calls */
        for (int k = 0; k < 100; k++) {
            char name[32];
            snprintf(name, sizeof name, "n%d_%d", i, k);
            jsg_prop p = {name, strlen(name), jsg_number(k)};
            jsg_val o = jsg_object(&p, 1);
            jsg_ref r = 0;
            CHECK_EQ(jsg_from_val(iso, &o, &r, &err), 0);
            jsg_ref_free(iso, r);
        }
    }
    jsg_ref_free(iso, fn);
    tr_arena_deinit(&a);
    jsg_isolate_free(iso);
}
