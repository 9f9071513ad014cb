// Writes to the `items` table that a Record API serves, for the realtime tests: a guest's
// execute() must reach the API's subscribers on every worker.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { execute } from "trailbase-wasm/db";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/ok", () => "ok"),
    HttpHandler.post("/items/:text/:public", async (req) => {
      const text = req.getPathParam("text") ?? "";
      const pub = req.getPathParam("public") === "1" ? 1 : 0;
      const n = await execute("INSERT INTO items (text, public) VALUES (?, ?)", [text, pub]);
      return HttpResponse.status(201, `inserted ${n}`);
    }),
    HttpHandler.post("/items/:id/delete", async (req) => {
      await execute("DELETE FROM items WHERE id = ?", [Number(req.getPathParam("id"))]);
      return "deleted";
    }),
  ],
});
