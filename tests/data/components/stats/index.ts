// An aggregate that trail remembers (a scan of 20,000 rows, unchanged between requests) and the
// writes that must make it forget: the component of tests/e2e/test_examples.c's remembered
// results test.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpRequest, HttpResponse } from "trailbase-wasm/http";
import { execute, query, transaction } from "trailbase-wasm/db";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/stats", async () => {
      const rows = await query("SELECT COUNT(*), SUM(v) FROM items", []);
      return HttpResponse.json({ count: rows[0][0], sum: rows[0][1] });
    }),
    HttpHandler.get("/stats/:grp", async (req: HttpRequest) => {
      const rows = await query("SELECT COUNT(*), SUM(v) FROM items WHERE grp = ?", [
        Number(req.getPathParam("grp")),
      ]);
      return HttpResponse.json({ count: rows[0][0], sum: rows[0][1] });
    }),
    HttpHandler.post("/items/:v", async (req: HttpRequest) => {
      const n = await execute("INSERT INTO items (grp, v) VALUES (1, ?)", [Number(req.getPathParam("v"))]);
      return HttpResponse.json({ inserted: n });
    }),
    HttpHandler.post("/tx-items/:v", async (req: HttpRequest) => {
      // inside a transaction the aggregate sees the uncommitted row; after it, everyone does
      const inside = await transaction(async (tx) => {
        await tx.execute("INSERT INTO items (grp, v) VALUES (2, ?)", [Number(req.getPathParam("v"))]);
        const rows = await tx.query("SELECT COUNT(*), SUM(v) FROM items", []);
        return { count: rows[0][0], sum: rows[0][1] };
      });
      return HttpResponse.json(inside);
    }),
  ],
});
