import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/version", () => "v1"),
    HttpHandler.get("/slow", async () => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return "slow v1";
    }),
  ],
});
