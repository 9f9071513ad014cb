// bench/cluster: the component of `make bench`'s cluster line (bench/cluster.py). The same
// component runs on one trail and on three nodes of a cluster, so the two are measured alike:
// POST /items inserts one row and answers its id; GET /items/:id reads one row by id.
//
// The id is chosen here (random below 2^53, so no two nodes pick the same one in practice) and
// the row written with execute(): in cluster mode a write sent through query() (INSERT ...
// RETURNING) is not committed through Raft by dqlite 1.11 (docs/scaling.md), and reading
// last_insert_rowid() afterwards would depend on no other statement running in between.
import { defineConfig } from "trailbase-wasm";
import { HttpError, HttpHandler, HttpRequest, HttpResponse, StatusCode } from "trailbase-wasm/http";
import { execute, query } from "trailbase-wasm/db";

export default defineConfig({
  httpHandlers: [
    HttpHandler.post("/items", async (req: HttpRequest) => {
      const id = 1 + Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 1));
      await execute("INSERT INTO items (id, body) VALUES (?, ?)", [id, req.text()]);
      return HttpResponse.json({ id });
    }),
    HttpHandler.get("/items/:id", async (req: HttpRequest) => {
      const rows = await query("SELECT id, body FROM items WHERE id = ?", [
        Number(req.getPathParam("id")),
      ]);
      if (rows.length === 0) throw new HttpError(StatusCode.NOT_FOUND, "no such item");
      return HttpResponse.json({ id: rows[0][0], body: rows[0][1] });
    }),
  ],
});
