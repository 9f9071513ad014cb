import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/log", () => {
      console.log("Info message");
      console.warn("Warning message");
      console.error("Error message");
      console.log("object", { a: [1, 2] }, 3);
      return "logged";
    }),
  ],
});
