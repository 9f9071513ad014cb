import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";

// Module state: survives between requests on the same isolate, and across reloads of other
// components.
let hits = 0;

export default defineConfig({
  httpHandlers: [HttpHandler.get("/hits", () => `${++hits}`)],
});
