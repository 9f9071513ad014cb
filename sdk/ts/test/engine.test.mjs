// Components built by trailbase-wasm, run in the pinned engine (QuickJS-NG compiled to WASM)
// the way trail calls them: manifest(), dispatch(index, request), runJob(name).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { buildComponent } from "../lib/build.mjs";
import { HAVE_PRELUDE, loadComponent, request } from "./engine.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = mkdtempSync(path.join(tmpdir(), "trail-sdk-engine-"));
after(() => rmSync(OUT, { recursive: true, force: true }));

const enc = new TextEncoder();
const dec = new TextDecoder();

async function build(entry) {
    const out = path.join(OUT, path.basename(entry, ".ts") + ".wasm");
    const r = await buildComponent({ dir: path.dirname(entry), entry, out });
    assert.ok(r.ok, r.errors.join("\n"));
    return readFileSync(out);
}

describe("the reference's Quick Start in the engine", () => {
    let c;
    before(async () => {
        c = await loadComponent(await build(path.join(ROOT, "test/reference/quick-start.ts")));
    });
    after(() => c.dispose());

    test("manifest", async () => {
        assert.deepEqual(await c.manifest(), {
            ok: { http: [["GET", "/hello"], ["GET", "/greet/:name"], ["POST", "/json"]], jobs: [] },
        });
    });

    test("GET /hello, GET /greet/Alice, POST /json", async () => {
        assert.deepEqual(await c.dispatch(0, request({ url: "/hello", path: "/hello" })), {
            ok: { status: 200, headers: [["content-type", "text/plain; charset=utf-8"]], body: "Hello from WASM!" },
            sync: true,
        });
        const greet = await c.dispatch(1, request({ url: "/greet/Alice", path: "/greet/Alice", params: { name: "Alice" } }));
        assert.equal(greet.ok.body, "Hello, Alice!");
        const before = Date.now();
        const r = await c.dispatch(2, request({ method: "POST", url: "/json", path: "/json", body: enc.encode('{"message":"test"}') }));
        assert.equal(r.ok.status, 200);
        assert.deepEqual(r.ok.headers, [["content-type", "application/json"]]);
        assert.match(r.ok.body, /^\{"received":\{"message":"test"\},"timestamp":\d+\}$/);
        const ts = JSON.parse(r.ok.body).timestamp;
        assert.ok(ts >= before - 1000 && ts <= Date.now() + 1000, `timestamp ${ts}`);
    });
});

describe("the SDK in the engine", () => {
    let c;
    before(async () => {
        c = await loadComponent(await build(path.join(ROOT, "test/fixtures/app/index.ts")), (kind, sql) => {
            if (sql.includes("nonexistent_table")) throw new Error("no such table: nonexistent_table");
            if (kind === "execute") return 2;
            return [[9007199254740993n, 1.5, "text", null, new Uint8Array([7, 8])]];
        });
    });
    after(() => c.dispose());

    test("the component's sections", () => {
        assert.equal(dec.decode(c.sections["trailbase.engine"]), "quickjs-wasi 3.6.2");
        const map = JSON.parse(dec.decode(c.sections["trailbase.map"]));
        assert.equal(map.version, 3);
        assert.ok(map.sources.includes("index.ts"), map.sources.join());
        assert.ok(map.sources.includes("lib/greeting.ts"), map.sources.join());
    });

    test("request accessors", async () => {
        const r = await c.dispatch(
            0,
            request({
                method: "PUT",
                url: "/echo/7?q=caf%C3%A9+au+lait&tag=a&tag=b%2Fc",
                path: "/echo/7",
                query: "q=caf%C3%A9+au+lait&tag=a&tag=b%2Fc",
                params: { id: "7" },
                headers: [["user-agent", "curl/8"], ["accept", "a"], ["accept", "b"]],
                body: enc.encode("héllo \u{1F600}"),
            }),
        );
        assert.equal(r.sync, true);
        assert.deepEqual(JSON.parse(r.ok.body), {
            method: "PUT",
            url: "/echo/7?q=caf%C3%A9+au+lait&tag=a&tag=b%2Fc",
            path: "/echo/7",
            id: "7",
            missing: null,
            q: "café au lait",
            tags: ["a", "b/c"],
            absent: null,
            agent: "curl/8",
            accept: "a, b",
            text: "héllo \u{1F600}",
            size: 11,
        });
    });

    test("responses: JSON with status and repeated headers, text, bytes, 204", async () => {
        const j = await c.dispatch(1, request({ method: "POST", body: enc.encode('{"a":[1,{"b":null}]}') }));
        assert.deepEqual(j.ok, {
            status: 201,
            headers: [["content-type", "application/json"], ["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]],
            body: '{"received":{"a":[1,{"b":null}]}}',
        });
        assert.equal((await c.dispatch(2, request())).ok.body, "Hello, engine!");
        const b = await c.dispatch(3, request());
        assert.deepEqual(b.ok.headers, [["content-type", "application/octet-stream"]]);
        assert.deepEqual(b.ok.body, new Uint8Array([0, 1, 254, 255]));
        assert.deepEqual((await c.dispatch(4, request())).ok, { status: 204, headers: [], body: "" });
    });

    test("errors: HttpError, invalid JSON, thrown and rejected errors", async () => {
        assert.deepEqual((await c.dispatch(5, request())).ok, {
            status: 418,
            headers: [["content-type", "application/json"]],
            body: '{"error":"short and stout"}',
        });
        const bad = await c.dispatch(1, request({ method: "POST", body: enc.encode("{oops") }));
        assert.equal(bad.ok.status, 400);
        assert.match(JSON.parse(bad.ok.body).error, /^invalid JSON in request body: /);
        const boom = await c.dispatch(6, request());
        assert.equal(boom.error, "boom from the guest");
        assert.match(boom.stack, /component\.js/);
        assert.equal((await c.dispatch(7, request())).error, "async boom");
    });

    test("database: parameters converted, bigint rows, parallel statements, SQL errors", async () => {
        c.dbCalls.length = 0;
        const r = await c.dispatch(8, request());
        assert.equal(r.sync, false);
        assert.equal(r.ok.body, '{"rows":[[9007199254740993,1.5,"text",null,{"0":7,"1":8}]],"changed":2}');
        const [q, e] = c.dbCalls;
        assert.deepEqual(q.slice(0, 2), ["query", "SELECT big"]);
        assert.equal(q[2][0], 9007199254740993n);
        assert.equal(q[2][1], 1);
        assert.deepEqual(q[2][2], new Uint8Array(new Float32Array([1, 2]).buffer));
        assert.deepEqual(e, ["execute", "UPDATE t", []]);
        const err = await c.dispatch(9, request());
        assert.deepEqual(JSON.parse(err.ok.body), { caught: "no such table: nonexistent_table" });
    });

    test("catch-all route", async () => {
        assert.equal((await c.dispatch(10, request({ method: "PATCH" }))).ok.body, "any PATCH");
    });

    test("jobs", async () => {
        assert.deepEqual((await c.manifest()).ok.jobs, [["count", "* * * * *"], ["fail", "@daily"]]);
        c.dbCalls.length = 0;
        assert.deepEqual(await c.runJob("count"), { ok: null });
        assert.deepEqual(await c.runJob("count"), { ok: null });
        assert.deepEqual(c.dbCalls.map((x) => x[2]), [[1], [2]]);
        assert.equal((await c.runJob("fail")).error, "job failed");
        assert.match((await c.runJob("nope")).error, /no job named/);
    });
});

test("modern syntax runs in the engine (top-level await, using, private members, enums)", async () => {
    const c = await loadComponent(await build(path.join(ROOT, "test/fixtures/modern/index.ts")));
    try {
        const r = await c.dispatch(0, request());
        assert.deepEqual(JSON.parse(r.ok.body), {
            greeting: "hi",
            log: ["inside", "disposed"],
            count: 2,
            instances: 1,
            grouped: { odd: [1, 3], even: [2, 4] },
            last: 2,
            sorted: [1, 2, 3],
            big: "18446744073709551616",
            re: "2024",
            color: "blue",
            optional: "default",
        });
    } finally {
        c.dispose();
    }
});

describe("with trail's prelude (src/guest/prelude.js)", { skip: !HAVE_PRELUDE && "not inside trail's tree" }, () => {
    let c;
    before(async () => {
        c = await loadComponent(await build(path.join(ROOT, "test/fixtures/timers/index.ts")), () => [], { prelude: true });
    });
    after(() => c?.dispose());

    test("every global the SDK declares exists in the guest", () => {
        const decls = readFileSync(path.join(ROOT, "types/globals.d.ts"), "utf8");
        const names = [...decls.matchAll(/^declare (?:var|function) (\w+)/gm)].map((m) => m[1]);
        assert.ok(names.length >= 20, names.join());
        const missing = names.filter((n) => c.typeOf(n) === "undefined");
        assert.deepEqual(missing, []);
        assert.equal(c.typeOf("__trailhost"), "object");
    });

    test("a handler awaiting a timer; a periodic callback that cancels itself after the response", async () => {
        const t0 = Date.now();
        assert.equal((await c.dispatch(0, request())).ok.body, "Delayed");
        assert.ok(Date.now() - t0 >= 25);
        c.logs.length = 0;
        const r = await c.dispatch(1, request());
        assert.equal(r.ok.body, "Started periodic task");
        assert.equal(r.sync, true);
        await new Promise((res) => setTimeout(res, 150));
        assert.deepEqual(c.logs, [
            [1, "Callback #0"],
            [1, "Callback #1"],
            [1, "Callback #2"],
        ]);
    });
});
