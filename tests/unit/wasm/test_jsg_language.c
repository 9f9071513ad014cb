/* The engine runs the language as it should after tools/engine-fixup.sh rewrote its interpreter
 * (the dispatch on the opcode, the inline JS_FreeValueRT, no step-dump test): one script that
 * goes through most kinds of bytecode instruction, with the results Node.js gives for it. */
#include "test.h"

#include "wasm/js/jsg.h"

static const char language_js[] =
    "var out = [];\n"
    "(function () {\n"
    "  var add = function (x) { out.push(String(x)); };\n"
    "  // numbers: the int fast paths, overflow into doubles, bit operations, comparisons\n"
    "  var i = 2147483647;\n"
    "  add(i + 1); add(-i - 2); add(7 / 2); add(7 % -3); add(2 ** 10);\n"
    "  add((5 & 3) | (8 ^ 2)); add(~5); add(-16 >> 2); add(-16 >>> 28); add(1 << 31);\n"
    "  add(0.1 + 0.2 === 0.3); add(NaN !== NaN); add(1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 4);\n"
    "  add(typeof null + typeof undefined + typeof 1n + typeof Symbol() + typeof add);\n"
    "  var n = 5; n++; ++n; n--; n += 10; n -= 1; n *= 2; n /= 4; n %= 5; add(n);\n"
    "  // closures, per-iteration bindings, the temporal dead zone\n"
    "  function counter() { let c = 0; return { inc: () => ++c, get: () => c }; }\n"
    "  var ctr = counter(); ctr.inc(); ctr.inc(); add(ctr.get());\n"
    "  var fs = []; for (let k = 0; k < 3; k++) fs.push(() => k);\n"
    "  add(fs.map(f => f()).join(''));\n"
    "  try { (function () { tdz; let tdz = 1; })(); } catch (e) { add(e.constructor.name); }\n"
    "  // classes: fields, private members, accessors, static blocks, super, new.target\n"
    "  class A {\n"
    "    #x = 1; static s = 0; y = 2;\n"
    "    static { A.s = 40; }\n"
    "    get x() { return this.#x; }\n"
    "    set x(v) { this.#x = v * 2; }\n"
    "    #priv() { return 'p'; }\n"
    "    callPriv() { return this.#priv(); }\n"
    "    static has(o) { return #x in o; }\n"
    "    m() { return 'A'; }\n"
    "  }\n"
    "  class B extends A {\n"
    "    constructor() { super(); this.z = new.target === B; }\n"
    "    m() { return super.m() + 'B'; }\n"
    "  }\n"
    "  var b = new B(); b.x = 5;\n"
    "  add(b.x + b.y + A.s); add(b.m() + b.callPriv() + A.has(b) + b.z);\n"
    "  add(b instanceof A && !(({}) instanceof A));\n"
    "  // generators, iterators, spread, destructuring, rest and default parameters\n"
    "  function* gen(n) { for (let j = 0; j < n; j++) yield j * j; return 'done'; }\n"
    "  add([...gen(4)].join(','));\n"
    "  var it = gen(1); add(JSON.stringify([it.next(), it.next(), it.next()]));\n"
    "  var [p, , q = 9, ...r] = [1, 2, undefined, 4, 5]; add([p, q, r.length].join(''));\n"
    "  var { u, v: { w = 'dw' } = {}, ...rest } = { u: 1, x: 2, y: 3 };\n"
    "  add(u + w + Object.keys(rest));\n"
    "  function rp(a, b = a + 1, ...c) { return a + b + c.length + arguments.length; }\n"
    "  add(rp(1) + rp(1, 2, 3, 4));\n"
    "  // strings: templates, tagged templates, methods\n"
    "  var tag = (s, ...vs) => s.raw.join('|') + vs.join(); add(tag`a${1}b${2}c`);\n"
    "  add(`x${1 + 1}y`.padStart(5, '*').toUpperCase().replace(/Y/, 'z'));\n"
    "  // optional chaining, nullish coalescing, logical assignment\n"
    "  var o = { a: { b: null } }; add(o?.a?.b?.c ?\? 'nn'); add(o.z?.());\n"
    "  var la = null; la ?\?= 3; la ||= 4; la &&= la + 1; add(la);\n"
    "  // control flow: labels, switch, try/finally, for-in, for-of, do-while\n"
    "  var s = '';\n"
    "  outer: for (var x = 0; x < 3; x++) {\n"
    "    for (var y = 0; y < 3; y++) {\n"
    "      if (y === 1) continue outer;\n"
    "      if (x === 2) break outer;\n"
    "      s += x + '' + y;\n"
    "    }\n"
    "  }\n"
    "  add(s);\n"
    "  function sw(v) {\n"
    "    switch (v) {\n"
    "      case 1: return 'one';\n"
    "      case 'a': case 'b': return 'ab';\n"
    "      default: return 'def';\n"
    "    }\n"
    "  }\n"
    "  add(sw(1) + sw('b') + sw(null));\n"
    "  function tf() {\n"
    "    try { throw new TypeError('t'); }\n"
    "    catch (e) { return e.message; }\n"
    "    finally { add('fin'); }\n"
    "  }\n"
    "  add(tf());\n"
    "  var ks = [];\n"
    "  for (var key in { a: 1, b: 2 }) ks.push(key);\n"
    "  for (var ch of 'hi') ks.push(ch);\n"
    "  add(ks.join(''));\n"
    "  var dw = 0; do { dw++; } while (dw < 5); add(dw);\n"
    "  // objects: getters, computed keys, spread, delete, in, symbol keys, Proxy, Reflect\n"
    "  var sym = Symbol('s');\n"
    "  var ob = { ['k' + 1]: 1, get g() { return 'G'; }, [sym]: 2, ...{ sp: 3 } };\n"
    "  delete ob.sp; add(Object.keys(ob).join() + ob.g + ('k1' in ob) + ob[sym]);\n"
    "  var px = new Proxy({}, { get: (t, k) => 'px:' + String(k) }); add(px.hello);\n"
    "  add(Reflect.ownKeys({ b: 1, a: 2, 1: 3 }).join());\n"
    "  // built-ins: BigInt, Map, Set, JSON, RegExp, arrays, Date, Math\n"
    "  add(2n ** 64n - 1n); add(new Map([[1, 'a']]).get(1) + new Set([1, 1, 2]).size);\n"
    "  add(JSON.stringify(JSON.parse('{\"a\":[1,{\"b\":null}],\"c\":\"\\\\u00e9\"}')));\n"
    "  add('2026-11-25'.match(/(\\d+)-(\\d+)/).slice(1).join('/'));\n"
    "  add([3, 1, 2].sort().reverse().filter(e => e > 1).reduce((a, e) => a + e, 0));\n"
    "  add(new Date(0).toISOString()); add(Math.max(1, 5, 3) + Math.floor(-1.5));\n"
    "  // sloppy mode: with, direct eval, arguments aliasing its parameters\n"
    "  var wo = { wv: 'with' }; with (wo) { add(wv); }\n"
    "  add(eval('var ev = 6; ev * 7')); add(ev);\n"
    "  (function (a) { arguments[0] = 'alias'; add(a); })('orig');\n"
    "  // async functions and async generators: they finish in the jobs that run afterwards\n"
    "  (async function () {\n"
    "    var v = await Promise.resolve('aw');\n"
    "    for await (var e of (async function* () { yield 1; yield 2; })()) v += e;\n"
    "    add(v);\n"
    "  })();\n"
    "})();\n";

/* What Node.js 20 prints for out.join(' ') after running language_js. */
static const char language_out[] =
    "2147483648 -2147483649 3.5 1 1024 11 -6 -4 15 -2147483648 false true "
    "false objectundefinedbigintsymbolfunction 2.5 2 012 ReferenceError 52 "
    "ABptruetrue true 0,1,4,9 "
    "[{\"value\":0,\"done\":false},{\"value\":\"done\",\"done\":true},{\"done\":true}] "
    "192 1dwx,y 13 a|b|c1,2 **X2z nn undefined 4 0010 oneabdef fin t abhi 5 "
    "k1,gGtrue2 px:hello 1,b,a 18446744073709551615 a2 "
    "{\"a\":[1,{\"b\":null}],\"c\":\"é\"} 2026/11 5 1970-01-01T00:00:00.000Z 3 with "
    "42 6 alias aw12";

TEST(jsg_language_features_run_as_in_node)
{
    jsg_isolate *iso = NULL;
    tr_error err;
    tr_error_clear(&err);
    CHECK_EQ(jsg_isolate_new(NULL, &iso, &err), 0);
    jsg_ref r = 0;
    int rc = jsg_eval(iso, language_js, strlen(language_js), "language.js", &r, &err);
    if (rc != 0) fprintf(stderr, "language.js: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    jsg_ref_free(iso, r);
    CHECK_EQ(jsg_run_jobs(iso, &err), 0);
    static const char join[] = "out.join(' ')";
    CHECK_EQ(jsg_eval(iso, join, strlen(join), "<test>", &r, &err), 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_string(iso, r, &b, &err), 0);
    jsg_ref_free(iso, r);
    CHECK_STR_EQ(b.data, language_out);
    tr_buf_free(&b);
    jsg_isolate_free(iso);
}
