// A cached aggregate: the todo statistics are computed by SQL at most once every 10 seconds for
// the whole process, whichever worker asks; the other requests read the JSON from the shared
// store. A write through this app drops the cached value, so the next read is fresh.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { execute, query } from "trailbase-wasm/db";
import { open } from "trailbase-wasm/kv";

const kv = open();
const KEY = "stats:todos";

async function stats(): Promise<{ source: string; stats: unknown }> {
  const cached = kv.getText(KEY);
  if (cached !== undefined) return { source: "cache", stats: JSON.parse(cached) };
  const rows = await query(
    "SELECT COUNT(*), COALESCE(SUM(completed), 0) FROM todos",
    [],
  );
  const value = { total: rows[0][0], completed: rows[0][1] };
  kv.set(KEY, JSON.stringify(value), { ttlMs: 10_000 });
  return { source: "database", stats: value };
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/stats/todos", async () => HttpResponse.json(await stats())),
    HttpHandler.post("/todos", async (req) => {
      const { title } = req.json() as { title: string };
      await execute("INSERT INTO todos (title, completed) VALUES (?, 0)", [title]);
      kv.delete(KEY);
      return HttpResponse.json({ added: title }, { status: 201 });
    }),
  ],
});
