// The hostile battery's component (tests/hostile/): handlers that misbehave on purpose — loops,
// unbounded allocation and recursion, promises that never settle, timer floods, huge bodies, a
// WebAssembly trap, filesystem traversal, SQL injection and SQL without end — beside a healthy
// /ok route.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { execute, query } from "trailbase-wasm/db";
import { readDir, readFile, readTextFile, stat } from "trailbase-wasm/fs";
import { open as openKv } from "trailbase-wasm/kv";

let served = 0;
// Differs between isolates: tells workers apart, and an isolate from its replacement.
const isolateId = `${Math.random()}`.slice(2);
let timerErrors = 0;
const COUNT_FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

// Work that QuickJS cannot optimise away: n rounds of an xorshift.
function crunch(n: number): number {
  let x = 2463534242;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x >>> 0;
}

function json(status: number, v: unknown): HttpResponse {
  return new HttpResponse(JSON.stringify(v), {
    status,
    headers: [["content-type", "application/json"]],
  });
}

type FsOp = "read" | "text" | "dir" | "stat";

async function fsCall(op: FsOp, path: string): Promise<HttpResponse> {
  try {
    switch (op) {
      case "read":
        return json(200, { ok: Array.from(await readFile(path)).length });
      case "text":
        return json(200, { ok: await readTextFile(path) });
      case "dir":
        return json(200, { ok: (await readDir(path)).map((e) => e.name) });
      case "stat": {
        const s = await stat(path);
        return json(200, { ok: { size: s.size, isFile: s.isFile, isDirectory: s.isDirectory } });
      }
    }
  } catch (e) {
    return json(403, { error: (e as Error).message, code: (e as { code?: string }).code });
  }
}

declare const __trailTestTrap: (() => never) | undefined;

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/ok", () => `ok ${++served}`),
    HttpHandler.get("/whoami", () => isolateId),
    HttpHandler.get("/spin", () => {
      for (;;) {}
    }),
    HttpHandler.get("/work/:n", (req) => `${crunch(Number(req.getPathParam("n")))}`),
    // the same work, with when it started and ended on the host's clock (ms since the epoch)
    HttpHandler.get("/work-span/:n", (req) => {
      const start = Date.now();
      const result = crunch(Number(req.getPathParam("n")));
      return `${result} ${start} ${Date.now()}`;
    }),
    HttpHandler.get("/alloc/string", () => {
      // each a new 8 KiB string (concatenation copies); the engine's padEnd and repeat build
      // strings a character at a time, slow enough to meet the 200 ms CPU budget first
      const base = "x".repeat(8192);
      const parts: string[] = [];
      for (let i = 0; ; i++) parts.push(base + i);
    }),
    HttpHandler.get("/alloc/double", () => {
      let s = "ab";
      for (;;) s = s + s + "c";
    }),
    HttpHandler.get("/alloc/array", () => {
      // 16 numbers each: few enough objects that the collector does not take the CPU budget
      const a: number[][] = [];
      for (let n = 0; ; n++) a.push([n, n, n, n, n, n, n, n, n, n, n, n, n, n, n, n]);
    }),
    HttpHandler.get("/alloc/buffer", () => {
      const a: ArrayBuffer[] = [];
      for (;;) a.push(new ArrayBuffer(1 << 20));
    }),
    HttpHandler.get("/alloc/async", async () => {
      await null;
      const a: Uint8Array[] = [];
      for (;;) a.push(new Uint8Array(1 << 16));
    }),
    HttpHandler.get("/alloc/later", async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      const a: Uint8Array[] = [];
      for (;;) a.push(new Uint8Array(1 << 16));
    }),
    HttpHandler.get("/spin/later", async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      for (;;) {}
    }),
    HttpHandler.get("/spin/after-fetch/:port", async (req) => {
      await fetch(`http://127.0.0.1:${req.getPathParam("port")}/`);
      for (;;) {}
    }),
    HttpHandler.get("/alloc/after-fetch/:port", async (req) => {
      await fetch(`http://127.0.0.1:${req.getPathParam("port")}/`);
      const a: Uint8Array[] = [];
      for (;;) a.push(new Uint8Array(1 << 16));
    }),
    HttpHandler.get("/recurse", () => {
      const f = (n: number): number => f(n + 1) + 1;
      return `${f(0)}`;
    }),
    HttpHandler.get("/never", () => new Promise<string>(() => {})),
    HttpHandler.get("/microtasks", async () => {
      for (;;) await null;
    }),
    HttpHandler.get("/ticking", () =>
      new Promise<string>(() => {
        const tick = () => setTimeout(tick, 5);
        tick();
      })),
    HttpHandler.get("/timers/:n", async (req) => {
      const n = Number(req.getPathParam("n"));
      let fired = 0;
      const all: Promise<void>[] = [];
      for (let i = 0; i < n; i++)
        all.push(new Promise<void>((resolve) => setTimeout(() => { fired++; resolve(); }, i % 50)));
      await Promise.all(all);
      return `${fired}`;
    }),
    HttpHandler.get("/timer-flood", () => {
      let made = 0;
      try {
        for (;;) {
          setTimeout(() => {}, 60000);
          made++;
        }
      } catch (e) {
        return json(429, { made, error: (e as Error).message });
      }
    }),
    HttpHandler.get("/timer-throws", () => {
      setTimeout(() => {
        timerErrors++;
        throw new Error("thrown from a timer");
      }, 0);
      return "scheduled";
    }),
    HttpHandler.get("/timer-spins", () => {
      setTimeout(() => {
        for (;;) {}
      }, 0);
      return "scheduled";
    }),
    HttpHandler.get("/timer-storm/:n", (req) => {
      const n = Number(req.getPathParam("n"));
      for (let i = 0; i < n; i++) {
        const tick = () => setTimeout(tick, 0);
        tick();
      }
      return `${n} timers rescheduling themselves`;
    }),
    HttpHandler.get("/timer-errors", () => `${timerErrors}`),
    HttpHandler.get("/huge/:kib", (req) => "x".repeat(Number(req.getPathParam("kib")) * 1024)),
    HttpHandler.get("/huge-bytes/:kib", (req) => new Uint8Array(Number(req.getPathParam("kib")) * 1024)),
    // JSON far larger than the isolate (one 1 MiB string, referenced n times)
    HttpHandler.get("/huge-json/:n", (req) =>
      HttpResponse.json(new Array(Number(req.getPathParam("n"))).fill("x".repeat(1 << 20))),
    ),
    HttpHandler.get("/trap", () => {
      if (typeof __trailTestTrap !== "function") return json(501, { error: "no test hooks" });
      __trailTestTrap();
    }),
    HttpHandler.get("/trap/later", async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (typeof __trailTestTrap !== "function") return json(501, { error: "no test hooks" });
      __trailTestTrap();
    }),
    HttpHandler.post("/body-size", (req) => `${req.body().length}`),
    HttpHandler.post("/json-length", (req) => `${(req.json() as unknown[]).length}`),
    HttpHandler.get("/deep", () => {
      let v: unknown = "bottom";
      for (let i = 0; i < 10000; i++) v = { v };
      return v as string;
    }),
    HttpHandler.post("/fs/:op", (req) => fsCall(req.getPathParam("op") as FsOp, req.text())),
    HttpHandler.post("/sql/note", async (req) => {
      await execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
      const body = req.text();
      await execute("INSERT INTO notes (body) VALUES (?1)", [body]);
      const rows = await query("SELECT count(*) FROM notes WHERE body = ?1", [body]);
      return json(200, { matches: Number(rows[0][0]) });
    }),
    HttpHandler.post("/sql/find", async (req) => {
      const rows = await query("SELECT id FROM notes WHERE body = ?1", [req.text()]);
      return json(200, { rows: rows.length });
    }),
    // SQL without end: stopped at the call's deadline like a JS loop, even when caught
    HttpHandler.get("/sql/forever", async () => {
      const rows = await query(COUNT_FOREVER);
      return json(200, { n: Number(rows[0][0]) });
    }),
    HttpHandler.get("/sql/forever/caught", async () => {
      try {
        await query(COUNT_FOREVER);
      } catch (e) {
        return json(200, { caught: String(e) });
      }
      return json(200, {});
    }),
    // rows without end: more than the isolate could hold, refused before the host holds them
    HttpHandler.get("/sql/rows-without-end", async () => {
      const rows = await query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x, zeroblob(1000) FROM c");
      return json(200, { n: rows.length });
    }),
    // one value of 900 MB, made by SQLite itself
    HttpHandler.get("/sql/huge-blob", async () => {
      const rows = await query("SELECT zeroblob(900000000)");
      return json(200, { n: rows.length });
    }),
    HttpHandler.get("/sql/long/:n", async (req) => {
      const rows = await query(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) SELECT count(*) FROM c",
        [Number(req.getPathParam("n"))],
      );
      return json(200, { n: Number(rows[0][0]) });
    }),
    HttpHandler.get("/sql/count", async () => {
      const tables = await query("SELECT count(*) FROM sqlite_master WHERE name = 'notes'");
      const rows = await query("SELECT count(*) FROM notes");
      return json(200, { tables: Number(tables[0][0]), notes: Number(rows[0][0]) });
    }),
    // the shared key-value store: filled with 1 MiB values, or with small entries, without end;
    // listed whole; emptied again
    HttpHandler.get("/kv/flood/:size", (req) => {
      const kv = openKv();
      const value = new Uint8Array(Number(req.getPathParam("size"))).fill(1);
      let n = 0;
      for (;;) kv.set(`flood-${req.getPathParam("size")}-${n++}`, value);
    }),
    HttpHandler.get("/kv/list", () => `${openKv().listKeys().length}`),
    HttpHandler.get("/kv/clear/:size", (req) => {
      const kv = openKv();
      let n = 0;
      while (kv.delete(`flood-${req.getPathParam("size")}-${n}`)) n++;
      return `${n}`;
    }),
  ],
});
