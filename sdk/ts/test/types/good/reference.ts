// Every name of the reference SDK (trailbase-wasm 0.6.0), used as its own code uses it, in its
// export form; and the same request read through trail's properties, in one type.
import {
  defineConfig,
  addPeriodicCallback,
  base64Decode,
  base64Encode,
  urlSafeBase64Decode,
  urlSafeBase64Encode,
  type InitArgs,
  type Metadata,
} from "trailbase-wasm";
import {
  HttpError,
  HttpHandler,
  HttpResponse,
  OutgoingResponse,
  StatusCode,
  type HttpHandlerCallback,
  type HttpHandlerInterface,
  type HttpRequest,
  type Method,
  type ResponseType,
  type Scheme,
  type User,
} from "trailbase-wasm/http";
import { escape, execute, query, Transaction, type Value } from "trailbase-wasm/db";
import { readFileSync } from "trailbase-wasm/fs";
import { JobHandler, type JobHandlerInterface, type JobHandlerType } from "trailbase-wasm/job";

const metadata: Metadata = { display_name: "x", description: "y", admin_ui_path: "/dash" };

const echo: HttpHandlerCallback = (req: HttpRequest): ResponseType => {
  const m: Method = req.method();
  const s: Scheme | undefined = req.scheme();
  const u: User | null = req.user();
  const url: URL = req.url();
  const path: string = req.path();
  const authority: string = req.authority();
  const headers: [string, Uint8Array][] = req.headers();
  const params: [string, string][] = req.pathParams();
  const body: Uint8Array | undefined = req.body();
  const json: object | undefined = req.json();
  const q: string | null = req.getQueryParam("q");
  const p: string | null = req.getPathParam("id");
  return `${m} ${s} ${u?.email} ${url.href} ${path} ${authority} ${headers.length} ${params.length} ${body?.length} ${json} ${q} ${p}`;
};

const route: HttpHandlerInterface = { path: "/plain", method: "get", handler: echo };
const job: JobHandlerInterface = { name: "plain", spec: "@daily", handler: () => {} };
const jobFn: JobHandlerType = async () => {
  await execute("DELETE FROM t WHERE id = ?", [1n]);
};

export const { initEndpoint, incomingHandler, sqliteFunctionEndpoint } = defineConfig({
  init: (args: InitArgs) => console.log(args.version ?? "no version"),
  metadata,
  httpHandlers: [
    HttpHandler.get("/echo/{id}", echo),
    HttpHandler.post("/echo/{id}", echo),
    HttpHandler.put("/p", () => HttpResponse.ok()),
    HttpHandler.patch("/p", () => HttpResponse.ok("x")),
    HttpHandler.delete("/p", () => HttpResponse.status(StatusCode.NO_CONTENT)),
    HttpHandler.head("/p", () => HttpResponse.status(200, new Uint8Array(0))),
    HttpHandler.options("/p", () => HttpResponse.text("x").setHeader("allow", "GET")),
    new HttpHandler("/c", "get", () => HttpResponse.json({ a: 1 }).setBody("b")),
    new HttpHandler("/c", "PROPFIND", () => HttpResponse.text(new Uint8Array(1))),
    HttpHandler.all("/dav/*", (req) => req.method()),
    route,
    HttpHandler.get("/error", () => {
      throw HttpError.from(StatusCode.IM_A_TEAPOT, "tea");
    }),
    HttpHandler.get("/error2", () => {
      throw new HttpError(StatusCode.BAD_REQUEST, "bad");
    }),
    HttpHandler.get("/void", () => {}),
    HttpHandler.get("/async-void", async () => {}),
    HttpHandler.get("/tx", async () => {
      const tx = new Transaction();
      const rows: Value[][] = tx.query("SELECT COUNT(*) FROM t", []);
      const n: number = tx.execute("INSERT INTO t VALUES (?1)", [Number(rows[0][0]) + 1]);
      if (n === 1) tx.commit();
      else tx.rollback();
      const r = await query(`SELECT COUNT(*) FROM ${escape("t")}`, []);
      return `${r[0][0]}`;
    }),
    HttpHandler.get("/file", () => readFileSync("/x")),
    HttpHandler.get("/b64", () => {
      const b: Uint8Array = base64Decode(base64Encode(new Uint8Array(1)));
      const u: Uint8Array = urlSafeBase64Decode(urlSafeBase64Encode(b));
      return u;
    }),
    HttpHandler.get("/interval", () => {
      addPeriodicCallback(250, (cancel) => cancel());
    }),
    HttpHandler.get("/outgoing", () => {
      const unused: typeof OutgoingResponse = OutgoingResponse;
      return String(unused.name);
    }),
    // trail's properties on the same HttpRequest type
    HttpHandler.get("/trail", (req) => {
      const upper: boolean = req.method === "GET";
      const path: string = req.path.toLowerCase();
      const pairs: readonly (readonly [string, string])[] = req.headers.filter(([n]) => n !== "");
      return `${upper} ${path} ${req.url.length} ${pairs.length} ${req.query}`;
    }),
  ],
  jobHandlers: [
    JobHandler.minutely("m", () => {}),
    JobHandler.hourly("h", jobFn),
    new JobHandler("seconds", "5 * * * * *", jobFn),
    new JobHandler("year", "0 0 0 1 1 * 2030", jobFn),
    job,
  ],
});

const manifest: string = initEndpoint.getManifest("{}");
void incomingHandler.handle(null, null).catch(() => manifest);
void sqliteFunctionEndpoint;
