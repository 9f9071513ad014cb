// Outgoing fetch() from handlers, against origin servers on loopback (tests/e2e/test_fetch.c).
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse, type HttpRequest } from "trailbase-wasm/http";
import { JobHandler } from "trailbase-wasm/job";

let counter = 0;

function target(req: HttpRequest): string {
  const url = req.getQueryParam("url");
  if (url === null) throw new Error("missing ?url=");
  return url;
}

function init(req: HttpRequest): RequestInit {
  const t = req.getQueryParam("timeout");
  return (t === null ? {} : { timeout: Number(t) }) as RequestInit;
}

export default defineConfig({
  httpHandlers: [
    // status, headers, text, and where it ended up
    HttpHandler.get("/text", async (req) => {
      const r = await fetch(target(req), init(req));
      return HttpResponse.json({
        status: r.status,
        statusText: r.statusText,
        ok: r.ok,
        contentType: r.headers.get("content-type"),
        custom: r.headers.get("x-custom"),
        url: r.url,
        redirected: r.redirected,
        text: await r.text(),
      });
    }),
    HttpHandler.get("/json", async (req) => {
      const r = await fetch(target(req));
      const data = (await r.json()) as { greeting: string; n: number };
      return HttpResponse.json({ greeting: data.greeting, doubled: data.n * 2 });
    }),
    HttpHandler.get("/bytes", async (req) => {
      const r = await fetch(target(req));
      const b = new Uint8Array(await r.arrayBuffer());
      let sum = 0;
      for (const x of b) sum += x;
      return `${b.byteLength} bytes, sum ${sum}`;
    }),
    HttpHandler.post("/post", async (req) => {
      const r = await fetch(target(req), {
        method: "POST",
        headers: { "content-type": "application/json", "x-token": "abc" },
        body: JSON.stringify(req.json()),
      });
      return `${r.status} ${await r.text()}`;
    }),
    // a rejection as text, with how long it took
    HttpHandler.get("/catch", async (req) => {
      const t0 = Date.now();
      try {
        const r = await fetch(target(req), init(req));
        return `resolved ${r.status}`;
      } catch (e) {
        const err = e as Error;
        return `rejected after ${Date.now() - t0} ms: ${err.name}: ${err.message}`;
      }
    }),
    // n fetches at once from this isolate
    HttpHandler.get("/many", async (req) => {
      const n = Number(req.getQueryParam("n") ?? "10");
      const url = target(req);
      const all = await Promise.all(
        Array.from({ length: n }, () => fetch(url).then((r) => r.text())),
      );
      return `${all.length} responses, ${all.filter((t) => t === all[0]).length} equal, first ${all[0]}`;
    }),
    // an uncaught rejection becomes the handler's 500
    HttpHandler.get("/uncaught", async (req) => {
      const r = await fetch(target(req), init(req));
      return `${r.status}`;
    }),
    HttpHandler.get("/count", () => `count ${++counter}`),
  ],
  jobHandlers: [
    // run by hand (`trail jobs run fetch-closed-port`): nothing listens on port 1
    JobHandler.cron("fetch-closed-port", "0 0 1 1 *", async () => {
      await fetch("http://127.0.0.1:1/");
    }),
  ],
});
