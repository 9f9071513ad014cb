// The shared key-value store (trailbase-wasm/kv) over HTTP, for tests/e2e/test_kv.c: every
// operation, a counter loop for concurrency, and the isolate's id to tell workers apart.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { open, Store } from "trailbase-wasm/kv";

const isolateId = `${Math.random()}`.slice(2);
const kv = open();

function ttl(req: { getQueryParam(name: string): string | null }): { ttlMs?: number } {
  const t = req.getQueryParam("ttl");
  return t === null ? {} : { ttlMs: Number(t) };
}

function fail(e: unknown): HttpResponse {
  return HttpResponse.json({ error: (e as Error).message }, { status: 400 });
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/whoami", () => isolateId),
    HttpHandler.get("/get/:key", (req) => {
      const v = kv.get(req.getPathParam("key")!);
      return v === undefined ? HttpResponse.json({ missing: true }, { status: 404 }) : v;
    }),
    HttpHandler.get("/text/:key", (req) => `${kv.getText(req.getPathParam("key")!)}`),
    HttpHandler.put("/set/:key", (req) => {
      try {
        kv.set(req.getPathParam("key")!, req.body(), ttl(req));
        return "ok";
      } catch (e) {
        return fail(e);
      }
    }),
    HttpHandler.get("/set-text/:key/:value", (req) => {
      Store.open().set(req.getPathParam("key")!, req.getPathParam("value")!, ttl(req));
      return "ok";
    }),
    HttpHandler.get("/delete/:key", (req) => `${kv.delete(req.getPathParam("key")!)}`),
    HttpHandler.get("/exists/:key", (req) => `${kv.exists(req.getPathParam("key")!)}`),
    HttpHandler.get("/incr/:key", (req) => {
      try {
        const by = req.getQueryParam("by");
        return `${kv.increment(req.getPathParam("key")!, by === null ? 1 : Number(by), ttl(req))}`;
      } catch (e) {
        return fail(e);
      }
    }),
    // n increments of one key in a row: four of these at once on four workers must add up
    HttpHandler.get("/incr-loop/:key/:n", (req) => {
      const key = req.getPathParam("key")!;
      const n = Number(req.getPathParam("n"));
      let last = 0;
      for (let i = 0; i < n; i++) last = kv.increment(key, 1);
      return `${isolateId} ${last}`;
    }),
    HttpHandler.get("/keys", (req) => {
      try {
        return HttpResponse.json(kv.listKeys(req.getQueryParam("prefix") ?? undefined).sort());
      } catch (e) {
        return fail(e);
      }
    }),
    // fills the store with 64 KiB values until it refuses one: how many fit, and the error
    HttpHandler.get("/fill/:prefix", (req) => {
      const value = new Uint8Array(65536).fill(7);
      let n = 0;
      try {
        for (;;) kv.set(`${req.getPathParam("prefix")}-${n++}`, value);
      } catch (e) {
        return HttpResponse.json({ stored: n - 1, error: (e as Error).message });
      }
    }),
    HttpHandler.get("/bad-key", () => {
      const errors: string[] = [];
      for (const k of ["", "k".repeat(4097)]) {
        try {
          kv.set(k, "v");
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
      try {
        kv.set("text", "not a number");
        kv.increment("text", 1);
      } catch (e) {
        errors.push((e as Error).message);
      }
      try {
        kv.increment("n", 0.5);
      } catch (e) {
        errors.push((e as Error).message);
      }
      return HttpResponse.json(errors);
    }),
  ],
});
