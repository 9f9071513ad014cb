// The SDK's runtime (dist/*.js, the code bundled into every component) under Node, with a fake
// __trailhost on globalThis that records what the SDK asks of the host.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

const calls = [];
const enc = new TextEncoder();
const dec = new TextDecoder();
const fakeHost = {
    log: (level, message) => calls.push(["log", level, message]),
    query: (sql, params) => {
        calls.push(["query", sql, params]);
        if (sql === "FAIL") return Promise.reject(new Error("near \"FAIL\": syntax error"));
        if (sql === "THROW") throw new TypeError("unsupported parameter");
        return Promise.resolve([[1, "a"], [2, null]]);
    },
    execute: (sql, params) => {
        calls.push(["execute", sql, params]);
        return Promise.resolve(3);
    },
    encodeUtf8: (s) => enc.encode(s),
    decodeUtf8: (b) => dec.decode(b),
};
globalThis.__trailhost = fakeHost;

const { defineConfig, addPeriodicCallback } = await import("../dist/index.js");
const { HttpHandler, HttpRequest, HttpResponse, HttpError } = await import("../dist/http.js");
const { JobHandler } = await import("../dist/job.js");
const db = await import("../dist/db.js");
const fs = await import("../dist/fs.js");

beforeEach(() => {
    calls.length = 0;
    globalThis.__trailhost = fakeHost;
});

function request(over = {}) {
    return {
        method: "GET",
        url: "/",
        path: "/",
        query: "",
        params: {},
        headers: [],
        body: new Uint8Array(0),
        ...over,
    };
}

function withQuery(query) {
    return new HttpRequest(request({ query, url: "/x?" + query }));
}

// What trail does with dispatch()'s result (docs/guest-abi.md): a string, a Uint8Array or an
// HttpResponse is the response; anything else, or a rejection, goes through complete().
function settle(c, r, rejected = false) {
    if (!rejected && (typeof r === "string" || r instanceof Uint8Array || r instanceof c.responseClass)) return r;
    return c.complete(r, rejected);
}
async function host(c, index, req) {
    let r;
    try {
        r = await c.dispatch(index, req);
    } catch (e) {
        return settle(c, e, true);
    }
    return settle(c, r);
}

const plain = (r) => ({ status: r.status, headers: r.headers, body: r.body });
const text = (r) => (typeof r.body === "string" ? r.body : dec.decode(r.body));

describe("manifest", () => {
    test("routes keep their order, methods are upper case, all() is *", () => {
        const h = () => "";
        const c = defineConfig({
            httpHandlers: [
                HttpHandler.get("/a", h),
                HttpHandler.post("/a", h),
                HttpHandler.put("/users/:id", h),
                HttpHandler.patch("/users/{id}", h),
                HttpHandler.delete("/users/:id", h),
                HttpHandler.head("/h", h),
                HttpHandler.options("/o", h),
                HttpHandler.all("/files/*", h),
            ],
        });
        assert.deepEqual(c.manifest(), {
            http: [
                ["GET", "/a"],
                ["POST", "/a"],
                ["PUT", "/users/:id"],
                ["PATCH", "/users/{id}"],
                ["DELETE", "/users/:id"],
                ["HEAD", "/h"],
                ["OPTIONS", "/o"],
                ["*", "/files/*"],
            ],
            jobs: [],
        });
    });

    test("jobs: the shorthands are cron expressions, cron() passes through", () => {
        const j = async () => {};
        const c = defineConfig({
            jobHandlers: [
                JobHandler.minutely("m", j),
                JobHandler.hourly("h", j),
                JobHandler.daily("d", j),
                JobHandler.weekly("w", j),
                JobHandler.cron("c", "*/5 * * * *", j),
                JobHandler.cron("s", "0 30 9 * * 1-5", j),
                JobHandler.cron("at", "@hourly", j),
            ],
        });
        assert.deepEqual(c.manifest(), {
            http: [],
            jobs: [
                ["m", "* * * * *"],
                ["h", "0 * * * *"],
                ["d", "0 0 * * *"],
                ["w", "0 0 * * 0"],
                ["c", "*/5 * * * *"],
                ["s", "0 30 9 * * 1-5"],
                ["at", "@hourly"],
            ],
        });
    });

    test("mistakes fail when the component loads", () => {
        const h = () => "";
        assert.throws(() => defineConfig({ httpHandlers: [HttpHandler.get("/a", h), HttpHandler.get("/a", h)] }), /duplicate route GET \/a/);
        assert.throws(() => defineConfig({ jobHandlers: [JobHandler.hourly("x", h), JobHandler.daily("x", h)] }), /duplicate job x/);
        assert.throws(() => HttpHandler.get("no-slash", h), /must start with "\/"/);
        assert.throws(() => HttpHandler.get("/a b", h), /route path/);
        assert.throws(() => HttpHandler.get("/a", "nope"), /not a function/);
        assert.throws(() => JobHandler.cron("x", "* * *", h), /invalid cron schedule/);
        assert.throws(() => JobHandler.cron("x", "@sometimes", h), /invalid cron schedule/);
        assert.throws(() => JobHandler.hourly("", h), /job name/);
        assert.throws(() => defineConfig({ httpHandlers: [() => "x"] }), /HttpHandler/);
        // an object of the reference's HttpHandlerInterface shape is checked as the constructor checks
        assert.throws(() => defineConfig({ httpHandlers: [{ method: "GET", path: "/", handler: "x" }] }), /not a function/);
        assert.throws(() => defineConfig({ httpHandlers: [{ method: "G T", path: "/", handler: h }] }), /method name/);
        assert.throws(() => defineConfig({ jobHandlers: [{ name: "j", spec: "* *", handler: h }] }), /invalid cron schedule/);
        assert.throws(() => defineConfig(), /defineConfig\(\) expects an object/);
    });
});

describe("dispatch", () => {
    test("the route index selects the handler; path parameters arrive decoded", () => {
        const c = defineConfig({
            httpHandlers: [
                HttpHandler.get("/hello", () => "Hello from WASM!"),
                HttpHandler.get("/greet/:name", (req) => `Hello, ${req.getPathParam("name")}!`),
            ],
        });
        // A string result goes to the host bare: it answers 200 text/plain; charset=utf-8.
        assert.equal(c.dispatch(0, request()), "Hello from WASM!");
        const r = c.dispatch(1, request({ params: { name: "Zoë Alice" } }));
        assert.equal(r, "Hello, Zoë Alice!");
        assert.throws(() => c.dispatch(2, request()), RangeError);
    });

    test("a synchronous handler gets a synchronous response (no promise)", () => {
        const c = defineConfig({ httpHandlers: [HttpHandler.get("/", () => HttpResponse.json({ a: 1 }))] });
        const r = c.dispatch(0, request());
        assert.ok(!(r instanceof Promise));
        assert.equal(r.body, '{"a":1}');
    });

    test("an async handler resolves to the response", async () => {
        const c = defineConfig({
            httpHandlers: [
                HttpHandler.get("/", async () => {
                    await new Promise((r) => setTimeout(r, 1));
                    return "later";
                }),
                HttpHandler.get("/b", async () => new Uint8Array([1, 2])),
            ],
        });
        const p = c.dispatch(0, request());
        assert.ok(p instanceof Promise);
        assert.equal(await p, "later");
        // bytes go bare too: the host answers 200 application/octet-stream
        assert.deepEqual(await c.dispatch(1, request()), new Uint8Array([1, 2]));
    });

    test("the Quick Start's POST /json", () => {
        const c = defineConfig({
            httpHandlers: [
                HttpHandler.post("/json", (req) => {
                    const data = req.json();
                    return HttpResponse.json({ received: data, timestamp: Date.now() });
                }),
            ],
        });
        const before = Date.now();
        const r = c.dispatch(0, request({ method: "POST", body: enc.encode('{"message":"test"}') }));
        assert.equal(r.status, 200);
        assert.deepEqual(r.headers, [["content-type", "application/json"]]);
        const got = JSON.parse(r.body);
        assert.deepEqual(got.received, { message: "test" });
        assert.ok(got.timestamp >= before && got.timestamp <= Date.now());
    });

    test("HttpError thrown (sync or async) answers with its status and {error}", async () => {
        const c = defineConfig({
            httpHandlers: [
                HttpHandler.get("/a", () => {
                    throw new HttpError(404, "no such todo");
                }),
                HttpHandler.get("/b", async () => {
                    throw new HttpError(429, undefined, { headers: { "Retry-After": "60" } });
                }),
                HttpHandler.get("/c", () => {
                    throw new HttpError(403);
                }),
            ],
        });
        assert.deepEqual(plain(c.dispatch(0, request())), {
            status: 404,
            headers: [["content-type", "application/json"]],
            body: '{"error":"no such todo"}',
        });
        // an async one: dispatch's promise rejects with it, and complete() makes its response
        await assert.rejects(c.dispatch(1, request()), HttpError);
        assert.deepEqual(plain(await host(c, 1, request())), {
            status: 429,
            headers: [
                ["content-type", "application/json"],
                ["Retry-After", "60"],
            ],
            body: '{"error":"Too Many Requests"}',
        });
        assert.equal(c.dispatch(2, request()).body, '{"error":"Forbidden"}');
        assert.throws(() => new HttpError(42), RangeError);
        const e = new HttpError(400, "bad");
        assert.ok(e instanceof Error);
        assert.equal(e.name, "HttpError");
    });

    test("other errors go to the host: a sync throw throws, an async one rejects", async () => {
        const c = defineConfig({
            httpHandlers: [
                HttpHandler.get("/a", () => {
                    throw new Error("boom");
                }),
                HttpHandler.get("/b", async () => {
                    throw new Error("async boom");
                }),
                HttpHandler.get("/c", () => 42),
                HttpHandler.get("/d", async () => undefined),
                HttpHandler.get("/e", () => ({ plain: "object" })),
            ],
        });
        assert.throws(() => c.dispatch(0, request()), /boom/);
        await assert.rejects(c.dispatch(1, request()), /async boom/);
        await assert.rejects(host(c, 1, request()), /async boom/);
        // a result that is not a response comes back as it is; complete() names it
        assert.equal(c.dispatch(2, request()), 42);
        await assert.rejects(host(c, 2, request()), /returned a number; return a string, a Uint8Array or an HttpResponse/);
        // no return value is an empty 200 (the reference SDK's `void`)
        const empty = await host(c, 3, request());
        assert.equal(empty.status, 200);
        assert.equal(empty.body, "");
        await assert.rejects(host(c, 4, request()), /returned an object/);
    });

    test("invalid JSON is a 400 unless the handler catches it", () => {
        const c = defineConfig({
            httpHandlers: [
                HttpHandler.post("/a", (req) => HttpResponse.json(req.json())),
                HttpHandler.post("/b", (req) => {
                    try {
                        return HttpResponse.json(req.json());
                    } catch (error) {
                        return HttpResponse.json({ error: String(error) }, { status: 422 });
                    }
                }),
            ],
        });
        // no body: json() is undefined, which HttpResponse.json writes as null
        assert.equal(c.dispatch(0, request({ method: "POST" })).body, "null");
        for (const body of ["{not json", " ", "[1,"]) {
            const r = c.dispatch(0, request({ method: "POST", body: enc.encode(body) }));
            assert.equal(r.status, 400);
            assert.match(JSON.parse(r.body).error, /^invalid JSON in request body: /);
        }
        const r = c.dispatch(1, request({ method: "POST", body: enc.encode("nope") }));
        assert.equal(r.status, 422);
        assert.match(JSON.parse(r.body).error, /HttpError: invalid JSON/);
    });
});

describe("HttpRequest", () => {
    test("fields mirror the host request", () => {
        const body = enc.encode("héllo");
        const req = new HttpRequest(
            request({ method: "PUT", url: "/a%20b?x=1", path: "/a%20b", query: "x=1", headers: [["host", "h"]], body }),
        );
        assert.equal(req.method, "PUT");
        assert.equal(req.url, "/a%20b?x=1");
        assert.equal(req.path, "/a%20b");
        assert.equal(req.query, "x=1");
        assert.deepEqual(req.headers, [["host", "h"]]);
        assert.equal(req.body(), body);
        assert.equal(req.text(), "héllo");
        assert.equal(new HttpRequest(request()).text(), "");
        assert.deepEqual(new HttpRequest(request({ body: enc.encode('{"a":[1,2]}') })).json(), { a: [1, 2] });
    });

    test("getPathParam: own parameters only, else null", () => {
        const req = new HttpRequest(request({ params: { id: "42", name: "a/b" } }));
        assert.equal(req.getPathParam("id"), "42");
        assert.equal(req.getPathParam("name"), "a/b");
        assert.equal(req.getPathParam("missing"), null);
        assert.equal(req.getPathParam("constructor"), null);
        assert.equal(req.getPathParam("toString"), null);
    });

    test("getQueryParam: decoded, first value, null when absent", () => {
        const req = withQuery("page=2&limit=10&q=caf%C3%A9+au%20lait&empty=&flag&page=3&a%20b=%26&euro=%E2%82%AC&plus=1%2B1");
        assert.equal(req.getQueryParam("page"), "2");
        assert.equal(req.getQueryParam("limit"), "10");
        assert.equal(req.getQueryParam("q"), "café au lait");
        assert.equal(req.getQueryParam("empty"), "");
        assert.equal(req.getQueryParam("flag"), "");
        assert.equal(req.getQueryParam("a b"), "&");
        assert.equal(req.getQueryParam("euro"), "€");
        assert.equal(req.getQueryParam("plus"), "1+1");
        assert.equal(req.getQueryParam("missing"), null);
        assert.equal(req.getQueryParam("pag"), null);
        assert.equal(req.getQueryParam("pagex"), null);
        assert.deepEqual(req.getQueryParams("page"), ["2", "3"]);
        assert.deepEqual(req.getQueryParams("missing"), []);
        assert.equal(withQuery("").getQueryParam("a"), null);
        assert.equal(withQuery("&&a=1&").getQueryParam("a"), "1");
        assert.equal(withQuery("a+b=1").getQueryParam("a b"), "1");
        assert.equal(withQuery("a%2Bb=1&a+b=2").getQueryParam("a+b"), "1");
        assert.equal(withQuery("a%2Bb=1&a+b=2").getQueryParam("a b"), "2");
        assert.equal(withQuery("a%20b=1").getQueryParam("a%20b"), null);
    });

    test("getQueryParam: malformed escapes never throw", () => {
        assert.equal(withQuery("a=%zz%41").getQueryParam("a"), "%zzA");
        assert.equal(withQuery("a=100%").getQueryParam("a"), "100%");
        assert.equal(withQuery("a=%FF").getQueryParam("a"), "\uFFFD");
        assert.equal(withQuery("a=%E2%82").getQueryParam("a"), "\uFFFD");
        assert.equal(withQuery("a=x%E2%82%ACy%").getQueryParam("a"), "x€y%");
    });

    test("getHeader: case-insensitive, repeated headers joined, null when absent", () => {
        const req = new HttpRequest(
            request({
                headers: [
                    ["x-forwarded-for", "10.0.0.1"],
                    ["accept", "text/html"],
                    ["accept", "application/json"],
                    ["content-type", "application/json"],
                    ["cookie", "a=1"],
                    ["cookie", "b=2"],
                ],
            }),
        );
        assert.equal(req.getHeader("Cookie"), "a=1; b=2");
        assert.equal(req.getHeader("X-Forwarded-For"), "10.0.0.1");
        assert.equal(req.getHeader("x-forwarded-for"), "10.0.0.1");
        assert.equal(req.getHeader("Content-Type"), "application/json");
        assert.equal(req.getHeader("Accept"), "text/html, application/json");
        assert.equal(req.getHeader("authorization"), null);
    });
});

describe("HttpResponse", () => {
    test("json with status and headers", () => {
        const r = HttpResponse.json({ data: "test" }, { status: 201, headers: { "X-Custom-Header": "value", "Cache-Control": "max-age=3600" } });
        assert.ok(r instanceof HttpResponse);
        assert.deepEqual({ ...r }, {
            status: 201,
            headers: [
                ["content-type", "application/json"],
                ["X-Custom-Header", "value"],
                ["Cache-Control", "max-age=3600"],
            ],
            body: '{"data":"test"}',
        });
        assert.equal(HttpResponse.json(undefined).body, "null");
        assert.equal(HttpResponse.json([1, "a", null]).body, '[1,"a",null]');
    });

    test("json and text without init: instances with their own status, headers and body", () => {
        for (const [r, type, body] of [
            [HttpResponse.json({ a: [1, "b"] }), "application/json", '{"a":[1,"b"]}'],
            [HttpResponse.text("hi"), "text/plain; charset=utf-8", "hi"],
        ]) {
            assert.ok(r instanceof HttpResponse);
            assert.deepEqual(Object.keys(r), ["status", "headers", "body"]);
            assert.deepEqual({ ...r }, { status: 200, headers: [["content-type", type]], body });
        }
        // each response has headers of its own, free to change
        const a = HttpResponse.json(1), b = HttpResponse.json(2);
        a.headers.push(["x-a", "1"]);
        a.headers[0][1] = "application/problem+json";
        assert.deepEqual(b.headers, [["content-type", "application/json"]]);
    });

    test("multi-valued headers, from an object or from pairs", () => {
        const a = HttpResponse.text("x", { headers: { "Set-Cookie": ["a=1", "b=2"], Vary: "Accept" } });
        assert.deepEqual(a.headers, [
            ["content-type", "text/plain; charset=utf-8"],
            ["Set-Cookie", "a=1"],
            ["Set-Cookie", "b=2"],
            ["Vary", "Accept"],
        ]);
        const b = HttpResponse.text("x", { headers: [["set-cookie", "a=1"], ["set-cookie", "b=2"]] });
        assert.deepEqual(b.headers.slice(1), [["set-cookie", "a=1"], ["set-cookie", "b=2"]]);
        const c = HttpResponse.text("x", { headers: new Map([["x-a", "1"]]) });
        assert.deepEqual(c.headers.slice(1), [["x-a", "1"]]);
        assert.throws(() => HttpResponse.text("x", { headers: { a: 1 } }), /must be strings/);
    });

    test("a content-type in init replaces the default", () => {
        const r = HttpResponse.json({}, { headers: { "Content-Type": "application/problem+json" } });
        assert.deepEqual(r.headers, [["Content-Type", "application/problem+json"]]);
        const b = HttpResponse.bytes(new Uint8Array([0x89]), { headers: [["content-type", "image/png"]] });
        assert.deepEqual(b.headers, [["content-type", "image/png"]]);
    });

    test("text, html, bytes, noContent, redirect, constructor", () => {
        assert.deepEqual({ ...HttpResponse.text("hi", { status: 202 }) }, {
            status: 202,
            headers: [["content-type", "text/plain; charset=utf-8"]],
            body: "hi",
        });
        assert.equal(HttpResponse.html("<p>").headers[0][1], "text/html; charset=utf-8");
        const bytes = HttpResponse.bytes(new Uint8Array([1, 2, 3]).buffer);
        assert.deepEqual(bytes.body, new Uint8Array([1, 2, 3]));
        assert.deepEqual(bytes.headers, [["content-type", "application/octet-stream"]]);
        assert.deepEqual({ ...HttpResponse.noContent() }, { status: 204, headers: [], body: "" });
        assert.equal(HttpResponse.noContent({ status: 205 }).status, 205);
        assert.deepEqual({ ...HttpResponse.redirect("/login") }, { status: 302, headers: [["location", "/login"]], body: "" });
        assert.equal(HttpResponse.redirect("/x", 308).status, 308);
        assert.deepEqual({ ...new HttpResponse("t") }, { status: 200, headers: [["content-type", "text/plain; charset=utf-8"]], body: "t" });
        assert.deepEqual({ ...new HttpResponse(null, { status: 404 }) }, { status: 404, headers: [], body: "" });
        assert.deepEqual(new HttpResponse(new Uint8Array(1)).headers, [["content-type", "application/octet-stream"]]);
        assert.ok(new HttpResponse() instanceof HttpResponse);
    });

    test("a status outside 100..599 is refused", () => {
        for (const status of [0, 99, 600, 200.5, NaN]) {
            assert.throws(() => HttpResponse.json({}, { status }), RangeError);
        }
    });

    test("bigints are written as numbers", () => {
        const body = HttpResponse.json({ big: 9007199254740993n, small: 1 }).body;
        // JSON.rawJSON (QuickJS-NG, Node >= 21) writes the exact number; older Node a string.
        assert.ok(body === '{"big":9007199254740993,"small":1}' || body === '{"big":"9007199254740993","small":1}', body);
    });
});

describe("jobs", () => {
    test("runJob runs the named job and settles when it finishes", async () => {
        const log = [];
        const c = defineConfig({
            jobHandlers: [
                JobHandler.hourly("sync", () => {
                    log.push("sync");
                }),
                JobHandler.daily("async", async () => {
                    await new Promise((r) => setTimeout(r, 5));
                    log.push("async");
                }),
                JobHandler.weekly("fails", async () => {
                    throw new Error("job failed");
                }),
                JobHandler.minutely("throws", () => {
                    throw new Error("sync job failed");
                }),
            ],
        });
        assert.equal(await c.runJob("sync"), undefined);
        await c.runJob("async");
        assert.deepEqual(log, ["sync", "async"]);
        await assert.rejects(c.runJob("fails"), /job failed/);
        await assert.rejects(c.runJob("throws"), /sync job failed/);
        await assert.rejects(c.runJob("nope"), /no job named "nope"/);
    });
});

describe("db", () => {
    test("query and execute pass SQL and parameters to the host", async () => {
        const params = [1, "a", null, 2n ** 60n, new Uint8Array([1])];
        const rows = await db.query("SELECT ?", params);
        assert.deepEqual(rows, [[1, "a"], [2, null]]);
        assert.equal(calls[0][1], "SELECT ?");
        assert.equal(calls[0][2], params, "parameters that need no conversion are passed as is");
        assert.equal(await db.execute("DELETE FROM t"), 3);
        assert.deepEqual(calls[1][2], []);
    });

    test("booleans, undefined and typed arrays are converted", async () => {
        const f = new Float32Array([1.5, -2]);
        await db.query("x", [true, false, undefined, f, 7]);
        const sent = calls[0][2];
        assert.deepEqual(sent.slice(0, 3), [1, 0, null]);
        assert.ok(sent[3] instanceof Uint8Array);
        assert.deepEqual(sent[3], new Uint8Array(f.buffer));
        assert.equal(sent[4], 7);
        await db.execute("x", [new ArrayBuffer(2)]);
        assert.deepEqual(calls[1][2], [new Uint8Array(2)]);
        await assert.rejects(db.query("x", [{}]), /SQL parameter 1: unsupported type/);
    });

    test("errors reject, including synchronous ones from the host", async () => {
        await assert.rejects(db.query("FAIL"), /syntax error/);
        await assert.rejects(db.query("THROW"), /unsupported parameter/);
        delete globalThis.__trailhost;
        await assert.rejects(db.query("x"), /no __trailhost/);
    });

    function txHost() {
        const log = [];
        globalThis.__trailhost = {
            ...fakeHost,
            txBegin: async () => (log.push("begin"), 7),
            txQuery: async (id, sql, params) => (log.push(`query ${id} ${sql} ${JSON.stringify(params)}`), [[1]]),
            txExecute: async (id, sql) => (log.push(`execute ${id} ${sql}`), 1),
            txCommit: async (id) => void log.push(`commit ${id}`),
            txRollback: async (id) => void log.push(`rollback ${id}`),
        };
        return log;
    }

    test("transaction() commits when the callback succeeds", async () => {
        const log = txHost();
        const result = await db.transaction(async (tx) => {
            await tx.execute("INSERT");
            return (await tx.query("SELECT", [true]))[0][0];
        });
        assert.equal(result, 1);
        assert.deepEqual(log, ["begin", "execute 7 INSERT", "query 7 SELECT [1]", "commit 7"]);
    });

    test("transaction() rolls back and rethrows when the callback throws", async () => {
        const log = txHost();
        await assert.rejects(
            db.transaction(async (tx) => {
                await tx.execute("INSERT");
                throw new Error("abort");
            }),
            /abort/,
        );
        assert.deepEqual(log, ["begin", "execute 7 INSERT", "rollback 7"]);
    });

    test("beginTransaction(): explicit commit, no use after the end", async () => {
        const log = txHost();
        const tx = await db.beginTransaction();
        assert.equal(tx.active, true);
        await tx.commit();
        assert.equal(tx.active, false);
        await tx.rollback();
        await assert.rejects(tx.query("SELECT"), /already ended/);
        assert.deepEqual(log, ["begin", "commit 7"]);
    });

    test("a host without transactions rejects with a clear message", async () => {
        await assert.rejects(db.transaction(async () => 1), /does not provide txBegin\(\)/);
    });
});

describe("fs", () => {
    test("reads through the host's file functions", async () => {
        globalThis.__trailhost = {
            ...fakeHost,
            fsReadFile: async (p) => enc.encode(`content of ${p}`),
            fsReadDir: async () => [["a.txt", 0], ["sub", 1], ["link", 2]],
            fsStat: async () => [0, 12, 1700000000000],
        };
        assert.deepEqual(await fs.readFile("/data/x"), enc.encode("content of /data/x"));
        assert.equal(await fs.readTextFile("/data/x"), "content of /data/x");
        assert.deepEqual(await fs.readDir("/data"), [
            { name: "a.txt", isFile: true, isDirectory: false, isSymlink: false },
            { name: "sub", isFile: false, isDirectory: true, isSymlink: false },
            { name: "link", isFile: false, isDirectory: false, isSymlink: true },
        ]);
        assert.deepEqual(await fs.stat("/data/x"), { size: 12, mtimeMs: 1700000000000, isFile: true, isDirectory: false });
    });

    test("a host without the filesystem rejects", async () => {
        await assert.rejects(fs.readFile("/x"), /does not provide fsReadFile\(\)/);
        await assert.rejects(fs.readDir("/x"), /does not provide fsReadDir\(\)/);
    });
});

describe("addPeriodicCallback", () => {
    test("runs until the callback cancels itself", async () => {
        let count = 0;
        await new Promise((done) => {
            addPeriodicCallback(2, (cancel) => {
                count++;
                if (count >= 3) {
                    cancel();
                    setTimeout(done, 20);
                }
            });
        });
        assert.equal(count, 3);
    });

    test("the returned function cancels too", async () => {
        let count = 0;
        const cancel = addPeriodicCallback(1, () => count++);
        cancel();
        await new Promise((r) => setTimeout(r, 10));
        assert.equal(count, 0);
    });
});
