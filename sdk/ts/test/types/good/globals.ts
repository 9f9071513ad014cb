// Every global trail provides, used the way a handler would.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse, HttpError, type HttpRequest } from "trailbase-wasm/http";
import { execute, query, transaction, beginTransaction, type SqlValue } from "trailbase-wasm/db";
import { JobHandler } from "trailbase-wasm/job";
import { readDir, readFile, readTextFile, stat } from "trailbase-wasm/fs";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/globals", async (req: HttpRequest) => {
      console.debug("d", 1, { a: 2 });
      console.info("i");
      const t = setTimeout(() => {}, 10);
      clearTimeout(t);
      const i = setInterval(() => {}, 10);
      clearInterval(i);
      queueMicrotask(() => {});
      clearImmediate(setImmediate(() => {}));
      const t0: number = performance.now();
      console.time("t");
      console.timeEnd("t");
      console.trace("here");
      const into = new TextEncoder().encodeInto("abc", new Uint8Array(8));
      const r0 = new Request("http://127.0.0.1:9/", { method: "PUT", body: new Uint8Array(1), timeout: 5 });
      const r1: Response = Response.json({ a: 1 }, { status: 201 });
      const r2 = new Response("x", { headers: [["a", "b"]] });
      const got = await fetch(r0);
      const setCookies: string[] = got.headers.getSetCookie();
      const bytes: Uint8Array = new TextEncoder().encode("x");
      const s: string = new TextDecoder().decode(bytes);
      const u = new URL(req.url, "http://localhost");
      const p: string | null = u.searchParams.get("q");
      const sp = new URLSearchParams({ a: "1" });
      const b64: string = btoa(atob("eA=="));
      const uuid: string = crypto.randomUUID();
      crypto.getRandomValues(new Uint8Array(16));
      const copy = structuredClone({ a: [1, 2] });
      const res = await fetch("http://127.0.0.1:9/x", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ a: 1 }),
        timeout: 1000,
      });
      const status: number = res.status;
      const ok: boolean = res.ok;
      const h: string | null = res.headers.get("content-type");
      const data: unknown = await res.json();
      const buf: ArrayBuffer = await res.arrayBuffer();
      const txt: string = await res.text();
      return HttpResponse.json({ t0, into: into.written, r0: r0.timeout, r1: r1.status, r2: await r2.text(), setCookies, s, p, sp: sp.toString(), b64, uuid, copy, status, ok, h, data, n: buf.byteLength, txt });
    }),
    HttpHandler.get("/sdk", async (req) => {
      const all: string[] = req.getQueryParams("tag");
      const hdrs: readonly (readonly [string, string])[] = req.headers;
      const params: Readonly<Record<string, string>> = req.params;
      const n: number = await execute("UPDATE t SET a = ?", [true, null, 1n, 2.5, "s", new Uint8Array(1), undefined]);
      const rows = await query<[number, string]>("SELECT 1, 'a'");
      const first: number = rows[0]![0];
      const v: SqlValue = null;
      const r = await transaction(async (tx) => {
        await tx.execute("INSERT INTO t VALUES (?)", [1]);
        return (await tx.query("SELECT 1"))[0][0] as number;
      });
      const tx = await beginTransaction();
      await tx.rollback();
      const file: Uint8Array = await readFile("/a");
      const text: string = await readTextFile("/a");
      const entries = await readDir("/");
      const info = await stat("/a");
      if (req.method === "HEAD") throw new HttpError(405, "no", { headers: { Allow: "GET" } });
      return HttpResponse.json({ all, hdrs, params, n, first, v, r, file: file.length, text, e: entries[0]?.isDirectory, size: info.size });
    }),
    HttpHandler.head("/h", () => HttpResponse.noContent()),
    HttpHandler.options("/o", () => HttpResponse.noContent({ headers: [["allow", "GET"]] })),
    HttpHandler.all("/any/*", (req) => new HttpResponse(req.body(), { status: 200 })),
    HttpHandler.get("/bytes", () => new Uint8Array([1, 2, 3])),
    HttpHandler.get("/html", () => HttpResponse.html("<p>hi</p>")),
    HttpHandler.get("/redirect", () => HttpResponse.redirect("/html", 301)),
    HttpHandler.get("/cookies", () => HttpResponse.text("ok", { headers: { "Set-Cookie": ["a=1", "b=2"] } })),
  ],
  jobHandlers: [
    JobHandler.cron("every-5-min", "*/5 * * * *", () => {}),
    JobHandler.hourly("async", async () => {
      await execute("DELETE FROM t");
    }),
  ],
});
