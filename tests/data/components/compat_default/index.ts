// The reference SDK's names in a component with trail's export form (`export default`): trail's
// request properties (method, path, url, headers) beside the reference's methods that do not
// collide with them (scheme(), authority(), pathParams(), user()), the reference document's
// Request API example as written, HttpResponse.json with status and headers, the response
// statics, HttpError.from, the constructor forms of HttpHandler and JobHandler (5 fields), the
// synchronous Transaction, escape(), readFileSync and base64.
import { defineConfig, base64Encode, urlSafeBase64Decode } from "trailbase-wasm";
import { HttpError, HttpHandler, HttpRequest, HttpResponse, StatusCode } from "trailbase-wasm/http";
import { escape, Transaction, transaction } from "trailbase-wasm/db";
import { readFileSync } from "trailbase-wasm/fs";
import { JobHandler } from "trailbase-wasm/job";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/api/example", (req: HttpRequest) => {
      // Query parameters
      const page = req.getQueryParam("page") ?? "1";
      const limit = req.getQueryParam("limit") ?? "10";
      // Path parameters
      const id = req.getPathParam("id");
      // Request body as JSON
      const body = req.json();
      // Raw request body
      const raw = req.body();
      return HttpResponse.json({
        page,
        limit,
        id,
        body,
      });
    }),
    HttpHandler.get("/trail/:id", (req) =>
      HttpResponse.json(
        {
          method: req.method,
          path: req.path,
          url: req.url,
          query: req.query,
          headers: req.headers.filter(([n]) => n.startsWith("x-")),
          scheme: req.scheme(),
          authority: req.authority(),
          pathParams: req.pathParams(),
          user: req.user(),
          isGet: req.method === "GET",
        },
        { status: 203, headers: { "X-Custom-Header": "value", "Cache-Control": "max-age=3600" } },
      ),
    ),
    HttpHandler.all("/dav/*", (req) => `${req.method} ${req.path}`),
    new HttpHandler("/mkcol", "MKCOL", (req) => HttpResponse.status(StatusCode.CREATED, `made by ${req.method}`)),
    HttpHandler.post("/json", (req) => HttpResponse.json({ got: req.json() ?? "nothing" })),
    HttpHandler.get("/teapot", () => {
      throw HttpError.from(418, "short and stout");
    }),
    HttpHandler.get("/void", () => undefined),
    HttpHandler.get("/both-tx", async () => {
      const tx = new Transaction();
      tx.execute("CREATE TABLE IF NOT EXISTS t (v TEXT)", []);
      tx.execute(`INSERT INTO t VALUES (${escape("it's")})`, []);
      tx.commit();
      const n = await transaction(async (atx) => (await atx.query("SELECT COUNT(*) FROM t"))[0][0]);
      return `rows ${n}`;
    }),
    HttpHandler.get("/tx-busy", async () => {
      // an asynchronous transaction is open: a synchronous one cannot wait for it
      return await transaction(async () => {
        try {
          new Transaction();
          return "began";
        } catch (e) {
          return (e as Error).message;
        }
      });
    }),
    HttpHandler.get("/file", () => HttpResponse.text(readFileSync("/hello.txt"))),
    HttpHandler.get("/b64", () => base64Encode(urlSafeBase64Decode("aGk_-w"))),
  ],
  jobHandlers: [new JobHandler("five-fields", "*/5 * * * *", () => {})],
});
