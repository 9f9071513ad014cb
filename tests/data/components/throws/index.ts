import { defineConfig } from "trailbase-wasm";
import { HttpError, HttpHandler, HttpRequest, HttpResponse } from "trailbase-wasm/http";

function explode(): never {
  throw new TypeError("the widget is broken");
}

const later = () => new Promise((resolve) => setTimeout(resolve, 5));

class Created extends HttpResponse {}

// trail reuses the request objects it passes (docs/guest-abi.md) only when nothing kept them.
let kept: HttpRequest | null = null;
let keptInner: unknown = null;
const describe = (req: HttpRequest) =>
  `${req.url} ${req.getPathParam("id")} ${req.getPathParam("other")} ${Object.keys(req.params).join()}`;

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/throws", () => explode()),
    HttpHandler.get("/rejects", async () => {
      await null;
      throw new Error("async failure");
    }),
    HttpHandler.get("/ok", () => "still serving"),
    HttpHandler.get("/bad-response", () => 42 as unknown as string),
    // The host reads an async handler's outcome itself: an HttpError, or a result that is not a
    // response, whether the promise settled during the call or later.
    HttpHandler.get("/async-http-error", async () => {
      throw new HttpError(404, "no such widget", { headers: { "X-Why": "gone" } });
    }),
    HttpHandler.get("/later-http-error", async () => {
      await later();
      throw new HttpError(409, "changed meanwhile");
    }),
    HttpHandler.get("/async-bad-response", async () => {
      await null;
      return { status: 200, headers: [], body: "looks like a response" } as unknown as string;
    }),
    HttpHandler.get("/later-bad-response", async () => {
      await later();
      return null as unknown as string;
    }),
    HttpHandler.get("/later-rejects", async () => {
      await later();
      throw new RangeError("late failure");
    }),
    HttpHandler.get("/subclass", async () => new Created("made", { status: 201 })),
    HttpHandler.get("/id/:id", (req) => describe(req)),
    HttpHandler.get("/other/:other", (req) => describe(req)),
    HttpHandler.get("/keep/:id", (req) => {
      kept = req;
      return describe(req);
    }),
    HttpHandler.get("/keep-inner/:id", (req) => {
      keptInner = (req as unknown as { _r: unknown })._r;
      kept = new HttpRequest(keptInner as never);
      return describe(req);
    }),
    HttpHandler.get("/kept", () => (kept === null ? "none" : describe(kept))),
    // what a handler adds to its request (a middleware-style `req.session`) is its own
    HttpHandler.get("/mark/:id", (req) => {
      const r = req as unknown as { session?: string };
      const before = r.session ?? "none";
      r.session = `user ${req.getPathParam("id")}`;
      return before;
    }),
    HttpHandler.get("/later-bytes", async () => {
      await later();
      return new Uint8Array([104, 105]);
    }),
  ],
});
