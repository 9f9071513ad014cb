/* Tests for jsg_json_fast() (wasm/js/jsg.h): for plain data it writes exactly what the engine's
 * JSON.stringify writes; for anything else it gives up (undefined) and leaves it to
 * JSON.stringify. Compared inside the engine over a corpus of values. */
#include "test.h"

#include "wasm/js/jsg.h"

static int fast_json(jsg_isolate *iso, void *user, jsg_ref this_, size_t argc, const jsg_ref *argv,
                     jsg_ref *result, tr_error *err)
{
    (void)user;
    (void)this_;
    return argc < 1 ? 0 : jsg_json_fast(iso, argv[0], result, err);
}

TEST(jsg_json_fast_matches_json_stringify)
{
    jsg_isolate *iso = NULL;
    tr_error err;
    tr_error_clear(&err);
    CHECK_EQ(jsg_isolate_new(NULL, &iso, &err), 0);
    CHECK_EQ(jsg_define_function(iso, 0, "fast", fast_json, NULL, &err), 0);
    static const char code[] =
        "const same = [\n"
        "  null, true, false, 0, -0, 1, -1, 42, 2147483647, -2147483648, 2147483648, 1e20, 1e21,\n"
        "  -1e21, 0.5, -0.1, 1/3, 1e-7, 123.456e-10, 5e-324, 1.7976931348623157e308, NaN,\n"
        "  Infinity, -Infinity, 1795596598227, 2**53, -(2**53) - 2,\n"
        "  '', 'plain', 'quote\" back\\\\slash', '\\b\\f\\n\\r\\t', "
        "'\\u0000\\u0001\\u001f\\u007f',\n"
        "  '\\u2028\\u2029', 'é ü 中文 😀', '\\ud800', 'a\\udc00b', '\\ud83d\\ude00', "
        "'\\udbff\\udfff',\n"
        "  [], {}, [1, 'a', null, true], [undefined, () => 1, Symbol('s')],\n"
        "  { a: 1, b: undefined, c: () => 1, d: Symbol('x'), e: 'e' },\n"
        "  { 'k\"ey': { 'nested\\n': [1, { x: [[]] }] } }, { 2: 'b', 1: 'a', z: 0, '-1': 1 },\n"
        "  { received: { message: 'test' }, timestamp: 1795596598227 },\n"
        "  Object.create(null), Object.assign(Object.create(null), { a: [1] }),\n"
        "  new (class P { constructor() { this.x = 1; } get y() { return 2; } })(),\n"
        "  Object.defineProperty({}, 'hidden', { value: 1, enumerable: false }),\n"
        "  Object.defineProperty({ a: 1 }, 'g', { get() { return [2]; }, enumerable: true }),\n"
        "  [ , 1, , 2], new Array(3), Array.from({ length: 70 }, (_, i) => i * 1.5),\n"
        /* each character that needs an escape, at every offset of the 8-byte steps */
        "  ...['\"', '\\\\', '\\n', '\\u0001', '\\u001f', '\\ud800', '\\udfff', 'é', '\\u007f',\n"
        "      '\\u00ed', '\\ud55c']\n"
        "    .map((c) => Array.from({ length: 40 }, (_, i) =>\n"
        "      'abcdefghijklmnopqrstuvwxyz0123456789ABCD'.slice(0, i) + c + c +\n"
        "      'tail, sixteen..')),\n"
        /* one long string referenced again and again (written by copying its text) */
        "  ((w) => [w, w, { x: w, y: [w] }, 'other', w])('w\"'.repeat(400)),\n"
        "];\n"
        "const cyclic = {}; cyclic.self = cyclic;\n"
        "let deep = 'x'; for (let i = 0; i < 100; i++) deep = [deep];\n"
        "const handed = [\n"
        "  undefined, () => 1, Symbol('s'), new Date(0), { d: new Date(0) }, new Map(),\n"
        "  new Uint8Array([1, 2]), new String('boxed'), new Number(1), { toJSON() { return 1; } "
        "},\n"
        "  [{ toJSON: () => 'x' }], new Proxy({}, {}), 1n, { big: 2n }, cyclic, deep,\n"
        "  { get boom() { throw new Error('getter'); } },\n"
        "];\n"
        "const bad = [];\n"
        "same.forEach((v, i) => { const f = fast(v); const j = JSON.stringify(v);\n"
        "  if (f !== j) bad.push(`same[${i}]: ${f} !== ${j}`); });\n"
        "handed.forEach((v, i) => { const f = fast(v);\n"
        "  if (f !== undefined) bad.push(`handed[${i}]: ${f}`); });\n"
        /* getters making a new long string each: one freed after writing may leave its
         * address to the next, which must not be taken for a repeat */
        "let k = 0; const fresh = { get a() { return 'z'.repeat(300) + k++; },\n"
        "  get b() { return 'z'.repeat(300) + k++; },\n"
        "  get c() { return 'z'.repeat(300) + k++; } };\n"
        "const fr = JSON.parse(fast(fresh));\n"
        "if (fr.a.endsWith('0') === false || fr.b.endsWith('1') === false || !fr.c.endsWith('2'))\n"
        "  bad.push('getter strings: ' + [fr.a.slice(300), fr.b.slice(300), fr.c.slice(300)]);\n"
        "Object.prototype.toJSON = function () { return 'proto'; };\n"
        "if (fast({ a: 1 }) !== undefined) bad.push('toJSON on Object.prototype was ignored');\n"
        "delete Object.prototype.toJSON;\n"
        "bad.length === 0 ? 'ok' : bad.join('\\n')";
    jsg_ref r = 0;
    int rc = jsg_eval(iso, code, sizeof code - 1, "json.js", &r, &err);
    if (rc != 0) fprintf(stderr, "%s\n", err.msg);
    CHECK_EQ(rc, 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_string(iso, r, &b, &err), 0);
    CHECK_STR_EQ(b.data, "ok");
    tr_buf_free(&b);
    jsg_ref_free(iso, r);
    jsg_isolate_free(iso);
}
