// Requests and responses through the real server: every method helper, both parameter syntaxes,
// query/header/body accessors, multi-valued and custom headers, 204, bytes both ways, redirects,
// invalid header names and values, and a 10 MiB body.
import { defineConfig } from "trailbase-wasm";
import { HttpError, HttpHandler, HttpResponse } from "trailbase-wasm/http";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/r/{a}/x/:b", (req) =>
      HttpResponse.json({
        a: req.getPathParam("a"),
        b: req.getPathParam("b"),
        none: req.getPathParam("c"),
        method: req.method,
        path: req.path,
        url: req.url,
        q: req.getQueryParam("q"),
        qs: req.getQueryParams("q"),
        empty: req.getQueryParam("e"),
        missing: req.getQueryParam("m"),
        multi: req.getHeader("X-MULTI"),
        lower: req.getHeader("x-case"),
        absent: req.getHeader("x-absent"),
        headers: req.headers.filter(([n]) => n.startsWith("x-")),
      }),
    ),
    HttpHandler.head("/h", () => HttpResponse.text("a body HEAD must not send", { headers: { "X-Head": "1" } })),
    HttpHandler.get("/h", () => "get body"),
    HttpHandler.options("/h", () => HttpResponse.noContent({ headers: { Allow: "GET, HEAD, OPTIONS" } })),
    HttpHandler.all("/any", (req) => `any ${req.method}`),
    HttpHandler.post("/any", () => "post has its own route"),
    HttpHandler.post("/text", (req) => `${req.text().length}:${req.text()}`),
    HttpHandler.put("/bytes", (req) => {
      const b = req.body();
      const out = new Uint8Array(b.length);
      for (let i = 0; i < b.length; i++) out[i] = b[b.length - 1 - i];
      return out;
    }),
    HttpHandler.get("/multi", () =>
      HttpResponse.text("multi", {
        status: 201,
        headers: { "Set-Cookie": ["a=1", "b=2"], "X-One": "1", "Content-Type": "text/x-custom" },
      }),
    ),
    HttpHandler.get("/pairs", () =>
      new HttpResponse("pairs", { headers: [["X-P", "1"], ["x-p", "2"]] }),
    ),
    HttpHandler.delete("/gone", () => HttpResponse.noContent()),
    HttpHandler.get("/teapot", () => {
      throw new HttpError(418, "short and stout", { headers: { "Retry-After": "5" } });
    }),
    HttpHandler.get("/redirect", () => HttpResponse.redirect("/h", 307)),
    // responses that would break HTTP framing, made past the SDK's own checks: the host
    // refuses them (500) instead of writing them
    HttpHandler.get("/bad/:what", (req) => {
      const header: Record<string, [string, string]> = {
        name: ["bad name", "v"],
        colon: ["x-a:b", "v"],
        crlf: ["x-a", "v\r\nSet-Cookie: evil=1"],
      };
      const h = header[req.getPathParam("what")!]!;
      const raw = { __proto__: HttpResponse.prototype, status: 200, headers: [h], body: "x" };
      return raw as unknown as HttpResponse;
    }),
    HttpHandler.get("/big", () => "x".repeat(10 << 20)),
    HttpHandler.get("/big-bytes", () => {
      const b = new Uint8Array(10 << 20);
      for (let i = 0; i < b.length; i += 4096) b[i] = (i >> 12) & 0xff;
      return b;
    }),
  ],
});
