import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";

function explode(): never {
  throw new TypeError("the widget is broken");
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/throws", () => explode()),
    HttpHandler.get("/rejects", async () => {
      await null;
      throw new Error("async failure");
    }),
    HttpHandler.get("/ok", () => "still serving"),
    HttpHandler.get("/bad-response", () => 42 as unknown as string),
  ],
});
