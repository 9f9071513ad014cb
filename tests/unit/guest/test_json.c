/* Tests for __trailhost.jsonParse (guest/json.c) in a real isolate: for every text it takes, the
 * value is JSON.parse's to the last detail (key order, -0, own "__proto__", lone surrogates,
 * property attributes); every text it leaves (invalid JSON, non-UTF-8 bytes, deep nesting) comes
 * back undefined so that JSON.parse gives its own result or error. */
#include "test.h"
#include "guest/guest.h"

static char *run(const char *code)
{
    tr_error err = {0};
    guest_env env;
    guest_env_init(&env, NULL, NULL, NULL);
    jsg_isolate *iso;
    guest *g;
    if (jsg_isolate_new(NULL, &iso, &err) < 0) return NULL;
    if (guest_new(iso, &env, NULL, NULL, &g, &err) < 0) return NULL;
    jsg_ref r = 0;
    tr_buf b = TR_BUF_INIT;
    if (jsg_eval(iso, code, strlen(code), "json.js", &r, &err) == 0) {
        jsg_to_string(iso, r, &b, &err);
        jsg_ref_free(iso, r);
    } else {
        tr_buf_append(&b, err.msg, strlen(err.msg) + 1);
    }
    guest_free(g);
    jsg_isolate_free(iso);
    guest_env_deinit(&env);
    return b.data;
}

/* Runs code (which ends in 'ok' or a description of what went wrong) and checks for 'ok'. */
#define CHECK_JS_OK(code)             \
    do {                              \
        char *out_ = run(code);       \
        CHECK(out_ != NULL);          \
        CHECK_STR_EQ(out_, "ok");     \
        tr_free(out_);                \
    } while (0)

/* same(a, b): equal as JSON.parse results, down to -0, key order, prototypes and attributes. */
#define SAME                                                                                       \
    "function same(a, b) {"                                                                        \
    "  if (typeof a !== typeof b) return false;"                                                   \
    "  if (typeof a === 'number') return Object.is(a, b);"                                         \
    "  if (a === null || typeof a !== 'object') return a === b;"                                   \
    "  if (Array.isArray(a) !== Array.isArray(b)) return false;"                                   \
    "  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;"                   \
    "  const ka = Reflect.ownKeys(a), kb = Reflect.ownKeys(b);"                                    \
    "  if (ka.length !== kb.length) return false;"                                                 \
    "  for (let i = 0; i < ka.length; i++) {"                                                      \
    "    if (ka[i] !== kb[i]) return false;"                                                       \
    "    const da = Object.getOwnPropertyDescriptor(a, ka[i]);"                                    \
    "    const db = Object.getOwnPropertyDescriptor(b, kb[i]);"                                    \
    "    if (da.writable !== db.writable || da.enumerable !== db.enumerable ||"                    \
    "        da.configurable !== db.configurable || !same(da.value, db.value)) return false;"      \
    "  }"                                                                                          \
    "  return true;"                                                                               \
    "}"

TEST(guest_json_parse_gives_json_parse_value)
{
    static const char code[] =
        SAME
        "const deep = (n) => '['.repeat(n) + '1' + ']'.repeat(n);"
        "const texts = ['{\"message\":\"test\"}', '[]', '{}', '[1,2,3]', '\"x\"', 'true', 'null',"
        "  ' \\t\\n{\"a\" : [ true , false , null ] }\\r\\n', '0', '-0', '[-0, 0.0, -0.0]',"
        "  '1.5e3', '-1E-7', '2e+2', '12345678901234567890', '1e400', '-1e400', '5e-324', '0.1',"
        "  '123456789012345', '1234567890123456', '9007199254740993', '-2147483648',"
        "  '{\"a\":1,\"a\":2,\"b\":3}', '{\"b\":1,\"2\":2,\"1\":3,\"-1\":4}',"
        "  '{\"__proto__\":{\"x\":1}}', '{\"\":\"\"}',"
        "  '\"\\\\u00e9\\\\n\\\\t\\\\\"\\\\\\\\\\\\/\\\\b\\\\f\\\\r\"', '\"\\\\ud83d\\\\ude00\"',"
        "  '\"\\\\ud83d\"', '\"\\\\ude00x\"', '\"\\\\ud83d\\\\u0041\"', '\"\\\\uDBFF\\\\uDFFF\"',"
        "  '\"\\u00e9\\ud83d\\ude00\\u4e2d\"', '\"\\\\u0000a\"', '{\"\\\\u0061\":1,\"a\":2}',"
        "  deep(59), '{\"a\":{\"b\":{\"c\":[1,{\"d\":\"e\"}]}}}',"
        "  JSON.stringify(Array.from({length: 1000}, (_, i) => ({id: i, s: 'v' + i, f: i / 3}))),"
        "  JSON.stringify(Object.fromEntries(Array.from({length: 40}, (_, i) => ['k' + i, [i]])))];"
        "const bad = [];"
        "for (const t of texts) {"
        "  const got = __trailhost.jsonParse(__trailhost.encodeUtf8(t));"
        "  if (got === undefined || !same(got, JSON.parse(t))) bad.push(t.slice(0, 40));"
        "}"
        "const o = __trailhost.jsonParse(__trailhost.encodeUtf8('{\"__proto__\":{\"x\":1}}'));"
        "if (o.x !== undefined || Object.getPrototypeOf(o) !== Object.prototype) bad.push('proto');"
        "bad.length ? 'differs: ' + bad.join(' | ') : 'ok'";
    CHECK_JS_OK(code);
}

TEST(guest_json_parse_leaves_the_rest_to_json_parse)
{
    static const char code[] =
        "const deep = (n) => '['.repeat(n) + '1' + ']'.repeat(n);"
        "const texts = ['', ' ', '{', '[1,]', '{\"a\":1,}', '01', '1.', '.5', '+1', '-', '1e',"
        "  '1e+', '-a', 'NaN', 'Infinity', 'tru', 'nul', '\"abc', '\"a\\u0001b\"', '\"\\\\x\"',"
        "  '\"\\\\u12\"', '\"\\\\u12g4\"', \"'a'\", '{a:1}', '[1] x', '[1 2]', '{\"a\" 1}',"
        "  '\\ufeff{}', '\"\\\\\"', deep(61)];"
        "const bad = [];"
        "for (const t of texts) {"
        "  if (__trailhost.jsonParse(__trailhost.encodeUtf8(t)) !== undefined) bad.push(t);"
        "}"
        /* bytes that are not UTF-8: JSON.parse reads them as U+FFFD after decodeUtf8 */
        "for (const b of [[0x22, 0xff, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xc0, 0x80, "
        "0x22]]) {"
        "  if (__trailhost.jsonParse(new Uint8Array(b)) !== undefined) bad.push(b.join(','));"
        "}"
        "bad.length ? 'taken: ' + bad.join(' | ') : 'ok'";
    CHECK_JS_OK(code);
}

/* Mutations of valid texts (a character dropped, doubled or replaced by one that matters to
 * JSON): whatever JSON.parse makes of each, jsonParse gives the same value or leaves it. */
TEST(guest_json_parse_agrees_with_json_parse_on_mutations)
{
    static const char code[] =
        SAME
        "let seed = 12345;"
        "const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };"
        "const seeds = ['{\"a\":[1,-2.5e3,true,null,\"x\\\\ny\"],\"b\":{\"c\":\"\\\\u00e9\"}}',"
        "  '[0,1e-7,\"\\\\ud83d\\\\ude00\",{},[],\"\u00e9\"]', ' {\"k\" : -0.0 , \"k\":12 } '];"
        "const alphabet = '{}[]:,\"\\\\ .-+0123456789eEtrufalsn\\u00e9';"
        "let taken = 0, valid = 0; const bad = [];"
        "for (let i = 0; i < 3000; i++) {"
        "  let t = seeds[rnd(seeds.length)];"
        "  for (let m = 1 + rnd(3); m > 0; m--) {"
        "    const at = rnd(t.length + 1), c = alphabet[rnd(alphabet.length)];"
        "    const op = rnd(3);"
        "    t = op === 0 ? t.slice(0, at) + t.slice(at + 1)"
        "      : op === 1 ? t.slice(0, at) + c + t.slice(at)"
        "      : t.slice(0, at) + c + t.slice(at + 1);"
        "  }"
        "  let want, ok = true;"
        "  try { want = JSON.parse(t); } catch (e) { ok = false; }"
        "  const got = __trailhost.jsonParse(__trailhost.encodeUtf8(t));"
        "  if (ok) valid++;"
        "  if (got === undefined) continue;"
        "  taken++;"
        "  if (!ok || !same(got, want)) bad.push(JSON.stringify(t));"
        "}"
        "bad.length ? 'differs: ' + bad.slice(0, 5).join(' | ')"
        "  : taken === valid && valid > 300 ? 'ok' : 'taken ' + taken + ' of ' + valid + ' valid'";
    CHECK_JS_OK(code);
}
