// The reference SDK's API as its own code uses it, in its export form (`export const {
// initEndpoint, incomingHandler, sqliteFunctionEndpoint } = defineConfig(...)`): requests with
// the methods method()/path()/url()/headers(), the response statics and chainable setters,
// HttpError.from and StatusCode, the HttpHandler constructor with lower-case and WebDAV methods,
// escape(), the synchronous Transaction, readFileSync, base64 helpers, JobHandler's constructor
// with a 6-field (seconds first) and a 7-field (year last) spec, init and metadata.
import {
  defineConfig,
  base64Decode,
  base64Encode,
  urlSafeBase64Decode,
  urlSafeBase64Encode,
} from "trailbase-wasm";
import type { InitArgs } from "trailbase-wasm";
import {
  HttpError,
  HttpHandler,
  HttpResponse,
  StatusCode,
} from "trailbase-wasm/http";
import type { HttpRequest, Method, Scheme, User } from "trailbase-wasm/http";
import { escape, execute, query, Transaction } from "trailbase-wasm/db";
import type { Value } from "trailbase-wasm/db";
import { readFileSync } from "trailbase-wasm/fs";
import { JobHandler } from "trailbase-wasm/job";

let initArgs: InitArgs | null = null;

function describe(req: HttpRequest) {
  const method: Method = req.method();
  const scheme: Scheme | undefined = req.scheme();
  const user: User | null = req.user();
  const url: URL = req.url();
  return {
    method,
    path: req.path(),
    url: url.href,
    search: url.searchParams.get("q"),
    scheme,
    authority: req.authority(),
    headers: req
      .headers()
      .filter(([n]) => n.startsWith("x-"))
      .map(([n, v]) => [n, new TextDecoder().decode(v)]),
    pathParams: req.pathParams(),
    id: req.getPathParam("id"),
    q: req.getQueryParam("q"),
    user,
  };
}

function counted(): number {
  const tx = new Transaction();
  tx.execute("CREATE TABLE IF NOT EXISTS tx (id INTEGER PRIMARY KEY)", []);
  const rows = tx.query("SELECT COUNT(*) FROM tx", []);
  const count = Number(rows[0][0]);
  const changed = tx.execute("INSERT INTO tx (id) VALUES (?1)", [count + 1]);
  tx.commit();
  return changed === 1 ? count + 1 : -1;
}

export const { initEndpoint, incomingHandler, sqliteFunctionEndpoint } =
  defineConfig({
    init: (args: InitArgs) => {
      initArgs = args;
    },
    metadata: { display_name: "compat", description: "the reference's API" },
    httpHandlers: [
      HttpHandler.get("/method", (req: HttpRequest): string => req.method()),
      HttpHandler.post("/method", (req: HttpRequest): string => req.method()),
      HttpHandler.delete("/method", (req) => req.method()),
      new HttpHandler("/method", "put", (req) => `put via the constructor: ${req.method()}`),
      new HttpHandler("/method", "PROPFIND", (req) => `own route: ${req.method()}`),
      HttpHandler.all("/dav/*", (req) => `${req.method()} ${req.path()}`),
      HttpHandler.get("/req/{id}", (req) => HttpResponse.json(describe(req))),
      HttpHandler.get("/error", () => {
        throw HttpError.from(StatusCode.IM_A_TEAPOT, "I'm a teapot");
      }),
      HttpHandler.get("/error-new", () => {
        throw new HttpError(StatusCode.BAD_REQUEST, "Missing ?url param");
      }),
      HttpHandler.get("/json", jsonHandler),
      HttpHandler.post("/json", jsonHandler),
      HttpHandler.get("/void", () => {}),
      HttpHandler.get("/void-async", async () => {
        await new Promise((r) => setTimeout(r, 1));
      }),
      HttpHandler.get("/ok", () =>
        HttpResponse.ok("fine")
          .setHeader("x-a", "1")
          .setHeader("x-b", new TextEncoder().encode("2")),
      ),
      HttpHandler.get("/ok-empty", () => HttpResponse.ok()),
      HttpHandler.get("/status", () =>
        HttpResponse.status(StatusCode.CREATED, "made").setBody("remade"),
      ),
      HttpHandler.get("/status-bytes", () =>
        HttpResponse.status(202, new Uint8Array([104, 105])),
      ),
      HttpHandler.get("/text-bytes", () =>
        HttpResponse.text(new TextEncoder().encode("bytes as text")),
      ),
      HttpHandler.get("/json-chain", () =>
        HttpResponse.json({ a: 1 }).setHeader("x-json", "yes"),
      ),
      HttpHandler.get("/transaction", async () => `count ${counted()}`),
      HttpHandler.get("/transaction-rollback", () => {
        const tx = new Transaction();
        tx.execute("CREATE TABLE IF NOT EXISTS tx (id INTEGER PRIMARY KEY)", []);
        const before = tx.query("SELECT COUNT(*) FROM tx", [])[0][0];
        tx.execute("INSERT INTO tx (id) VALUES (?1)", [1000000]);
        tx.rollback();
        let reused = "no";
        try {
          tx.query("SELECT 1", []);
        } catch (e) {
          reused = (e as Error).message;
        }
        return HttpResponse.json({ before, active: tx.active, reused });
      }),
      HttpHandler.get("/transaction-error", () => {
        const tx = new Transaction();
        try {
          tx.query("SELECT * FROM no_such_table", []);
          return "no error";
        } catch (e) {
          return `caught: ${(e as Error).message}`;
        } finally {
          tx.rollback();
        }
      }),
      HttpHandler.get("/count/{table}/", async (req) => {
        const table = req.getPathParam("table");
        if (table) {
          const rows = await query(`SELECT COUNT(*) FROM ${escape(table)}`, []);
          return `Got ${rows[0][0]} rows\n`;
        }
      }),
      HttpHandler.get("/escape", (req) => escape(req.getQueryParam("s") ?? "")),
      HttpHandler.get("/escape-sql", async (req) => {
        const rows = await query(`SELECT ${escape(req.getQueryParam("s") ?? "")}`, []);
        return String(rows[0][0]);
      }),
      HttpHandler.get("/values", async () => {
        const v: Value[] = [null, true, 7n, 1.5, "s", new Uint8Array([1, 2])];
        const rows = await query("SELECT ?, ?, ?, ?, ?, ?", v);
        return HttpResponse.json(rows[0].map((x) => (x instanceof Uint8Array ? [...x] : typeof x === "bigint" ? String(x) : x)));
      }),
      HttpHandler.get("/base64", () => {
        const bytes = new Uint8Array([0, 251, 255, 62, 63, 104, 105]);
        const std = base64Encode(bytes);
        const safe = urlSafeBase64Encode(bytes);
        const big = new Uint8Array(100000).fill(7);
        return HttpResponse.json({
          std,
          safe,
          back: [...base64Decode(std)],
          safeBack: [...urlSafeBase64Decode(safe)],
          bigRoundTrip: base64Decode(base64Encode(big)).length,
        });
      }),
      HttpHandler.get("/file", () => readFileSync("/hello.txt")),
      HttpHandler.get("/file-missing", () => {
        try {
          readFileSync("/nope.txt");
          return "read";
        } catch (e) {
          return `${(e as { code?: string }).code}`;
        }
      }),
      HttpHandler.get("/init", () =>
        HttpResponse.json({ init: initArgs, manifest: JSON.parse(initEndpoint.getManifest("{}")) }),
      ),
    ],
    jobHandlers: [
      new JobHandler("every-second", "* * * * * *", async () => {
        await execute("CREATE TABLE IF NOT EXISTS ticks (at INTEGER)", []);
        await execute("INSERT INTO ticks VALUES (unixepoch())", []);
      }),
      new JobHandler("new-year-2030", "0 0 0 1 1 * 2030", () => {}),
      { name: "plain-object", spec: "@hourly", handler: () => {} },
    ],
  });

function jsonHandler(req: HttpRequest): HttpResponse {
  return HttpResponse.json(
    req.json() ?? { int: 5, real: 4.2, msg: "foo", obj: { nested: true } },
  );
}
