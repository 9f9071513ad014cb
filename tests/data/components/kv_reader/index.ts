// A second component of the same process: it sees the store the kv component writes.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";
import { open } from "trailbase-wasm/kv";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/reader/:key", (req) => `${open().getText(req.getPathParam("key")!) ?? "none"}`),
  ],
});
