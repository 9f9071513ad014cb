// The reference SDK's API in trail's SDK (dist/*.js) under Node, with a fake __trailhost: both
// export forms of defineConfig(), the request methods of the named form, the response statics
// and setters, HttpError.from, StatusCode, the HttpHandler and JobHandler constructors, escape(),
// the synchronous Transaction, readFileSync and base64.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

const enc = new TextEncoder();
const dec = new TextDecoder();
const calls = [];
globalThis.__trailhost = {
    log: () => {},
    query: () => Promise.resolve([]),
    execute: () => Promise.resolve(0),
    encodeUtf8: (s) => enc.encode(s),
    decodeUtf8: (b) => dec.decode(b),
    txBeginSync: () => (calls.push(["begin"]), 9),
    txQuerySync: (id, sql, params) => (calls.push(["query", id, sql, params]), [[1n]]),
    txExecuteSync: (id, sql, params) => (calls.push(["execute", id, sql, params]), 1),
    txCommitSync: (id) => void calls.push(["commit", id]),
    txRollbackSync: (id) => void calls.push(["rollback", id]),
    fsReadFileSync: (path) => {
        if (path === "/a.txt") return enc.encode("A");
        throw new Error(`${path}: no such file or directory`);
    },
};

const root = await import("../dist/index.js");
const { defineConfig, base64Encode, base64Decode, urlSafeBase64Encode, urlSafeBase64Decode } = root;
const { HttpHandler, HttpRequest, HttpResponse, HttpError, StatusCode, OutgoingResponse } = await import("../dist/http.js");
const { JobHandler } = await import("../dist/job.js");
const { escape, Transaction } = await import("../dist/db.js");
const { readFileSync } = await import("../dist/fs.js");

function request(over = {}) {
    return {
        method: "GET", url: "/p/1?q=a%20b", path: "/p/1", query: "q=a%20b", params: { id: "1" },
        headers: [["host", "h.test:81"], ["x-a", "é"]], body: new Uint8Array(0), ...over,
    };
}

describe("defineConfig in both export forms", () => {
    const seen = [];
    const cfg = defineConfig({
        init: (args) => seen.push(args),
        metadata: { display_name: "t" },
        httpHandlers: [
            HttpHandler.get("/p/{id}", (req) => req),
            new HttpHandler("/dav/*", "propfind", () => "dav"),
            { path: "/plain", method: "post", handler: () => "plain" },
        ],
        jobHandlers: [new JobHandler("j", "0 0 0 1 1 * 2030", () => {}), { name: "k", spec: "@daily", handler: () => {} }],
    });

    test("init runs once, when defineConfig() is called", () => {
        assert.deepEqual(seen, [{ version: undefined }]);
    });

    test("the default export and incomingHandler declare the same routes and jobs", () => {
        const want = {
            http: [["GET", "/p/{id}"], ["PROPFIND", "/dav/*"], ["POST", "/plain"]],
            jobs: [["j", "0 0 0 1 1 * 2030"], ["k", "@daily"]],
        };
        assert.deepEqual(cfg.manifest(), want);
        assert.deepEqual(cfg.incomingHandler.manifest(), want);
        for (const f of ["dispatch", "complete", "runJob", "manifest"]) assert.equal(typeof cfg.incomingHandler[f], "function");
        assert.equal(cfg.incomingHandler.responseClass, HttpResponse);
        assert.throws(() => cfg.sqliteFunctionEndpoint.dispatchScalarFunction({}), /no SQLite functions/);
    });

    test("getManifest() reports as the reference does", () => {
        const m = JSON.parse(cfg.initEndpoint.getManifest(JSON.stringify({ version: null, subsystems: ["http"] })));
        assert.deepEqual(m.metadata, { display_name: "t", guest_runtime: "ecma_script" });
        assert.deepEqual(m.http_handlers[1], { method: "propfind", path: "/dav/*" });
        assert.equal(m.job_handlers, null);
    });

    test("the default form's request has trail's properties", () => {
        const req = cfg.dispatch(0, request());
        assert.ok(req instanceof HttpRequest);
        assert.equal(req.method, "GET");
        assert.equal(req.path, "/p/1");
        assert.equal(req.url, "/p/1?q=a%20b");
        assert.deepEqual(req.headers[1], ["x-a", "é"]);
        assert.equal(req.scheme(), "HTTP");
        assert.equal(req.authority(), "h.test:81");
        assert.deepEqual(req.pathParams(), [["id", "1"]]);
        assert.equal(req.user(), null);
    });

    test("the named form's request has the reference's methods", () => {
        const req = cfg.incomingHandler.dispatch(0, request({ method: "PROPFIND" }));
        assert.ok(req instanceof HttpRequest);
        assert.equal(req.method(), "propfind");
        assert.equal(req.path(), "/p/1?q=a%20b");
        assert.equal(req.url().href, "http://h.test:81/p/1?q=a%20b");
        assert.equal(req.url().searchParams.get("q"), "a b");
        assert.deepEqual(req.headers()[1], ["x-a", enc.encode("é")]);
        assert.equal(req.getQueryParam("q"), "a b");
        assert.equal(req.getPathParam("id"), "1");
        assert.equal(req.json(), undefined);
        // a Host header that is not an authority: the URL still parses
        const odd = cfg.incomingHandler.dispatch(0, request({ headers: [["host", "a b"]] }));
        assert.equal(odd.url().href, "http://localhost/p/1?q=a%20b");
        for (const h of ["evil@x.test", "x.test/y?", "x.test#", ""]) {
            const r = cfg.incomingHandler.dispatch(0, request({ headers: [["host", h]] }));
            assert.equal(r.url().href, "http://localhost/p/1?q=a%20b", h);
        }
        const v6 = cfg.incomingHandler.dispatch(0, request({ headers: [["host", "[::1]:4000"]] }));
        assert.equal(v6.url().host, "[::1]:4000");
    });

    test("a handler that returns nothing answers 200 without a body", () => {
        const r = cfg.complete(undefined, false);
        assert.equal(r.status, 200);
        assert.equal(r.body, "");
        assert.deepEqual(r.headers, []);
    });
});

describe("routes and jobs", () => {
    test("the HttpHandler constructor takes either case and any method token", () => {
        assert.equal(new HttpHandler("/a", "get", () => "").method, "GET");
        assert.equal(new HttpHandler("/a", "MKCOL", () => "").method, "MKCOL");
        assert.equal(HttpHandler.all("/a", () => "").method, "*");
        assert.throws(() => new HttpHandler("/a", "GE T", () => ""), /method name/);
        assert.throws(() => new HttpHandler("/a", "", () => ""), /method name/);
        assert.throws(() => new HttpHandler("a", "get", () => ""), /must start with/);
        assert.throws(() => new HttpHandler("/a", "get", null), /not a function/);
    });

    test("the JobHandler constructor takes 5, 6 and 7 fields; spec is the schedule", () => {
        for (const s of ["* * * * *", "5 * * * * *", "0 0 0 1 1 * 2030", "@hourly"]) {
            const j = new JobHandler("j", s, () => {});
            assert.equal(j.spec, s);
            assert.equal(j.schedule, s);
        }
        assert.throws(() => new JobHandler("j", "* * * *", () => {}), /5, 6 or 7 fields/);
        assert.throws(() => new JobHandler("j", "* * * * * * * *", () => {}), /5, 6 or 7 fields/);
    });
});

describe("responses and errors", () => {
    test("ok(), status(), text() of bytes; setBody and setHeader chain", () => {
        const ok = HttpResponse.ok("x").setHeader("a", "1").setHeader("b", enc.encode("2"));
        assert.equal(ok.status, 200);
        assert.deepEqual(ok.headers, [["content-type", "text/plain; charset=utf-8"], ["a", "1"], ["b", "2"]]);
        assert.deepEqual(HttpResponse.ok().headers, []);
        const st = HttpResponse.status(StatusCode.CREATED, enc.encode("y")).setBody("z");
        assert.equal(st.status, 201);
        assert.equal(st.body, "z");
        assert.deepEqual(st.headers, [["content-type", "application/octet-stream"]]);
        assert.equal(HttpResponse.text(enc.encode("t")).headers[0][1], "text/plain; charset=utf-8");
        assert.throws(() => HttpResponse.status(1000), /100 to 599/);
        assert.throws(() => HttpResponse.ok().setHeader("a", 5), /must be strings/);
        // a frozen headers array is copied, never changed
        const frozen = Object.freeze([["x", "1"]]);
        const r = new HttpResponse("b");
        r.headers = frozen;
        r.setHeader("y", "2");
        assert.deepEqual(frozen, [["x", "1"]]);
        assert.deepEqual(r.headers, [["x", "1"], ["y", "2"]]);
    });

    test("HttpError.from and StatusCode", () => {
        const e = HttpError.from(StatusCode.IM_A_TEAPOT, "tea");
        assert.ok(e instanceof HttpError);
        assert.equal(e.status, 418);
        assert.equal(e.toResponse().body, '{"error":"tea"}');
        assert.equal(StatusCode.NETWORK_AUTHENTICATION_REQUIRED, 511);
        assert.equal(StatusCode[404], "NOT_FOUND");
        assert.throws(() => new OutgoingResponse(), /not available in trail/);
    });
});

describe("db, fs and base64", () => {
    test("escape() doubles quotes and refuses NUL", () => {
        assert.equal(escape("it's"), "'it''s'");
        assert.equal(escape(""), "''");
        assert.throws(() => escape("a\0b"), /NUL/);
    });

    test("the synchronous Transaction calls the host's synchronous functions", () => {
        calls.length = 0;
        const tx = new Transaction();
        assert.deepEqual(tx.query("SELECT ?", [true, undefined]), [[1n]]);
        assert.equal(tx.execute("INSERT", [new Float32Array([1])]), 1);
        tx.commit();
        assert.equal(tx.active, false);
        assert.throws(() => tx.query("SELECT 1"), /already ended/);
        tx.rollback(); // a no-op once ended
        assert.deepEqual(calls.map((c) => c[0]), ["begin", "query", "execute", "commit"]);
        assert.deepEqual(calls[1][3], [1, null]);
        assert.ok(calls[2][3][0] instanceof Uint8Array);
    });

    test("readFileSync returns bytes or throws with a code", () => {
        assert.equal(dec.decode(readFileSync("/a.txt")), "A");
        assert.throws(() => readFileSync("/b.txt"), (e) => e.code === "ENOENT");
    });

    test("base64, standard and URL-safe, round-trips any bytes", () => {
        const all = new Uint8Array(256).map((_, i) => i);
        assert.equal(base64Encode(all), Buffer.from(all).toString("base64"));
        assert.deepEqual(base64Decode(base64Encode(all)), all);
        assert.equal(urlSafeBase64Encode(new Uint8Array([251, 255])), "-_8=");
        assert.deepEqual(urlSafeBase64Decode("-_8"), new Uint8Array([251, 255]));
        assert.equal(base64Decode(base64Encode(new Uint8Array(300000))).length, 300000);
    });
});
