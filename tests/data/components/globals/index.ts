import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";

// The standard globals trail gives every isolate (src/guest/prelude.js over trail's host
// functions), checked inside the real server by tests/e2e/test_serving.c. Each check records
// "ok" or, on a mismatch, ["FAIL", got, expected].
function checks(): Record<string, unknown> {
    const out = {};
    const eq = (name, a, b) => { if (JSON.stringify(a) !== JSON.stringify(b)) out[name] = ["FAIL", a, b]; else out[name] = "ok"; };
    console.log("hello", 1, {a: [1, "x"]}, null);
    console.error("bad %s %d", "x", 42);
    eq("enc", Array.from(new TextEncoder().encode("hé😀")), [104,195,169,240,159,152,128]);
    eq("dec", new TextDecoder().decode(new Uint8Array([104,195,169])), "hé");
    let threw = false; try { new TextDecoder("utf-8", {fatal: true}).decode(new Uint8Array([0xff])); } catch (e) { threw = true; } eq("fatal", threw, true);
    const u = new URL("https://user:pw@Example.COM:443/a/./b/../c%20d?x=1&y=a+b#frag");
    eq("url", [u.href, u.host, u.pathname, u.search, u.hash, u.origin, u.searchParams.get("y")], ["https://user:pw@example.com/a/c%20d?x=1&y=a+b#frag", "example.com", "/a/c%20d", "?x=1&y=a+b", "#frag", "https://example.com", "a b"]);
    eq("rel", new URL("../x?q#h", "http://h.com/a/b/c").href, "http://h.com/a/x?q#h");
    eq("rel2", new URL("//other.org/p", "https://h.com/a").href, "https://other.org/p");
    eq("rel3", new URL("?z=2", "http://h.com/a/b?q=1").href, "http://h.com/a/b?z=2");
    eq("port", new URL("http://localhost:4000/hello").port, "4000");
    const u2 = new URL("http://a.com/p"); u2.searchParams.append("k", "v w"); u2.searchParams.append("k", "2");
    eq("sp", u2.href, "http://a.com/p?k=v+w&k=2");
    eq("sp2", new URLSearchParams({a: "1", b: "x y"}).toString(), "a=1&b=x+y");
    eq("sp3", [...new URLSearchParams("a=1&a=2&b=%20")].map(p => p.join(":")), ["a:1","a:2","b: "]);
    eq("bad", URL.canParse("not a url"), false);
    eq("mailto", new URL("mailto:a@b.c").href, "mailto:a@b.c");
    eq("ipv6", new URL("http://[::1]:8080/").host, "[::1]:8080");
    const o = {d: new Date(0), m: new Map([[1, {x: 2}]]), s: new Set([1]), b: new Uint8Array([1,2]), n: null, big: 10n};
    o.self = o;
    const c = structuredClone(o);
    eq("sc", [c !== o, c.self === c, c.d.getTime(), c.m.get(1).x, c.s.has(1), Array.from(c.b), c.big === 10n], [true, true, 0, 2, true, [1,2], true]);
    threw = false; try { structuredClone(() => 1); } catch (e) { threw = e.name; } eq("scfn", threw, "DataCloneError");
    const r = new Uint32Array(4); crypto.getRandomValues(r); eq("rand", r.length, 4);
    eq("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()), true);
    const h = new Headers({"Content-Type": "text/plain"}); h.append("X-A", "1"); h.append("x-a", "2"); h.append("Set-Cookie", "a=1"); h.append("set-cookie", "b=2");
    eq("headers", [...h], [["content-type","text/plain"],["set-cookie","a=1"],["set-cookie","b=2"],["x-a","1, 2"]]);
    const resp = Response.json({a: 1}, {status: 201});
    eq("resp", [resp.status, resp.headers.get("content-type"), resp.ok], [201, "application/json", true]);
    return out;
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/globals", () => HttpResponse.json(checks())),
    HttpHandler.get("/time", () => HttpResponse.json({ now: Date.now(), perf: performance.now() > 0 })),
    HttpHandler.get("/b64", () => btoa("trail") + " " + atob("dHJhaWw=")),
  ],
});
