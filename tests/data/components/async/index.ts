import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";

let counter = 0;

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/sleep/:ms", async (req) => {
      const ms = Number(req.getPathParam("ms"));
      await new Promise((resolve) => setTimeout(resolve, ms));
      return `slept ${ms}`;
    }),
    HttpHandler.get("/count", () => `count ${++counter}`),
    HttpHandler.get("/never", () => new Promise<string>(() => {})),
  ],
});
