// Writes to the `items` table that Record APIs serve, for the realtime tests of cluster mode: a
// guest's statements run on the cluster's leader, and every node's subscribers must hear of them.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { execute, query } from "trailbase-wasm/db";

async function attempt(f: () => Promise<unknown>): Promise<string> {
  try {
    return `ran: ${JSON.stringify(await f())}`;
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/ok", () => "ok"),
    HttpHandler.post("/items/:text/:public", async (req) => {
      const text = req.getPathParam("text") ?? "";
      const pub = req.getPathParam("public") === "1" ? 1 : 0;
      const n = await execute("INSERT INTO items (text, public) VALUES (?, ?)", [text, pub]);
      return HttpResponse.status(201, `inserted ${n}`);
    }),
    HttpHandler.post("/items/:id/update/:text", async (req) => {
      const n = await execute("UPDATE items SET text = ? WHERE id = ?", [
        req.getPathParam("text") ?? "",
        Number(req.getPathParam("id")),
      ]);
      return `updated ${n}`;
    }),
    HttpHandler.post("/items/:id/delete", async (req) => {
      const n = await execute("DELETE FROM items WHERE id = ?", [Number(req.getPathParam("id"))]);
      return `deleted ${n}`;
    }),
    // a REAL that JSON's 15 digits would round, a BLOB, a text with quotes and a NUL-free escape
    HttpHandler.post("/typed", async () => {
      const n = await execute(
        "INSERT INTO items (text, public, score, data) VALUES (?, 1, 0.1 + 0.2, x'00ff10')",
        ['say "hi"\n\\ ok'],
      );
      return `inserted ${n}`;
    }),
    // n rows in one statement (one transaction on the leader)
    HttpHandler.post("/burst/:n", async (req) => {
      const n = await execute(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?) " +
          "INSERT INTO items (text, public) SELECT 'burst ' || i, 1 FROM k",
        [Number(req.getPathParam("n"))],
      );
      return `inserted ${n}`;
    }),
    // a row of n bytes of text
    HttpHandler.post("/big/:n", async (req) => {
      const n = await execute(
        "INSERT INTO items (text, public) VALUES (printf('%.*c', ?, 'x'), 1)",
        [Number(req.getPathParam("n"))],
      );
      return `inserted ${n}`;
    }),
    // the change log is trail's: a guest can neither read nor write it, nor its triggers
    HttpHandler.get("/log", async () => {
      const a = await attempt(() => query("SELECT count(*) FROM _realtime_changes", []));
      const b = await attempt(() =>
        execute("INSERT INTO _realtime_changes (tbl, op, at_ms, row) VALUES ('items', 0, 0, '{}')", []),
      );
      const c = await attempt(() =>
        query("SELECT name FROM sqlite_master WHERE type = 'trigger'", []),
      );
      const d = await attempt(() => execute("DROP TABLE IF EXISTS _realtime_changes", []));
      const names = await query(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_trail%' ESCAPE '\\'",
        [],
      ).catch(() => [] as unknown[][]);
      let e = `${names.length} triggers`;
      for (const [name] of names) {
        e += `\n${await attempt(() => execute(`DROP TRIGGER IF EXISTS "${String(name)}"`, []))}`;
      }
      return `${a}\n${b}\n${c}\n${d}\n${e}`;
    }),
  ],
});
