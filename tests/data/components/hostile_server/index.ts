// The hostile battery's server cases (tests/hostile/test_server.c): a large response that must
// not stay with an idle connection, console output that tries to forge log records, response
// headers without bound, and fetch() aimed at this machine and its network. Routes live under
// /srv so that they sit beside the hostile_limits component.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/srv/big/:mib", (req) => new Uint8Array(Number(req.getPathParam("mib")) << 20)),
    HttpHandler.get("/srv/log", () => {
      console.log("first\n2031-01-01T00:00:00.000Z ERROR FORGED-RECORD\r\x1b[31mred\x1b[0m\x07\x9b2J\\end");
      console.error(new Error("with a stack"));
      return "logged";
    }),
    HttpHandler.get("/srv/header/:kib", (req) => {
      const v = "v".repeat(Number(req.getPathParam("kib")) * 1024);
      return new HttpResponse("big header", { headers: [["x-big", v]] });
    }),
    HttpHandler.get("/srv/headers/:n", (req) => {
      const headers: [string, string][] = [];
      for (let i = 0; i < Number(req.getPathParam("n")); i++) headers.push([`x-h${i}`, "1"]);
      return new HttpResponse("many headers", { headers });
    }),
    // what a fetch of ?url=... gives: "status N" or "error: message"
    HttpHandler.get("/srv/fetch", async (req) => {
      const url = req.getQueryParam("url") ?? "";
      const method = req.getQueryParam("method") ?? "GET";
      try {
        const r = await fetch(url, method === "POST" ? { method, body: "POST-BYTES" } : {});
        return `status ${r.status}`;
      } catch (e) {
        return `error: ${(e as Error).message}`;
      }
    }),
  ],
});
