import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";

export default defineConfig({
  httpHandlers: [HttpHandler.get("/users/:id", () => "a")],
});
