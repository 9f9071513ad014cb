// A guest's query() and execute() in cluster mode: the component of tests/e2e/test_cluster.c's
// application-database test. The same component runs on one node for the allow-list's message.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { execute, query } from "trailbase-wasm/db";

async function attempt(f: () => Promise<unknown>): Promise<string> {
  try {
    return `ran: ${String(await f())}`;
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.post("/notes", async (req) =>
      attempt(() => execute("INSERT INTO notes (body) VALUES (?)", [req.text()])),
    ),
    HttpHandler.get("/notes", async () =>
      HttpResponse.json(await query("SELECT id, body FROM notes ORDER BY id", [])),
    ),
    HttpHandler.get("/note/:id", async (req) => {
      const rows = await query("SELECT body FROM notes WHERE id = ?", [Number(req.getPathParam("id"))]);
      return rows.length ? String(rows[0][0]) : "none";
    }),
    // statements the allow-list refuses: a write to trail's own tables, a pragma that sets
    HttpHandler.get("/refused", async () => {
      const a = await attempt(() => execute("DELETE FROM _user", []));
      const b = await attempt(() => execute("PRAGMA journal_mode=DELETE", []));
      return `${a}\n${b}`;
    }),
    HttpHandler.get("/tx", async () => attempt(() => execute("BEGIN", []))),
    HttpHandler.get("/ddl", async () =>
      attempt(() => execute("CREATE TABLE IF NOT EXISTS guest_made (x INTEGER)", [])),
    ),
    // a text dqlite's protocol cannot carry (it ends texts at a NUL)
    HttpHandler.get("/nul", async () =>
      attempt(() => execute("INSERT INTO notes (body) VALUES (?)", ["a\u0000b"])),
    ),
  ],
});
