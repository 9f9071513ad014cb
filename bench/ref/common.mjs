// bench/ref/common.mjs: what every reference server (node.mjs, bun.mjs, deno.mjs) shares with
// bench/app/index.ts: the SQL, the CPU-bound loop and the response bodies, so that each runtime
// does the same work and sends the same bytes. `db` is any SQLite binding with prepare(sql).get()
// (better-sqlite3, bun:sqlite, node:sqlite); statements are prepared once, at start-up.

export const SPIN_ITERATIONS = 20000; // as in bench/app/index.ts

export function spin(n) {
  let x = 2463534242;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x >>> 0;
}

export function makeQueries(db) {
  const stats = db.prepare("SELECT COUNT(*) as total, SUM(completed) as done FROM todos");
  const byId = db.prepare("SELECT id, user, text, completed FROM todos WHERE id = ?");
  return {
    // GET /stats/todos
    stats() {
      const r = stats.get();
      return JSON.stringify({ total: r.total, done: r.done, pending: r.total - r.done });
    },
    // GET /todos/:id -> a JSON body, or null when there is no such row
    todo(id) {
      const r = byId.get(Number(id));
      if (!r) return null;
      return JSON.stringify({ id: r.id, user: r.user, text: r.text, completed: r.completed });
    },
  };
}

// POST /json
export function jsonBody(text) {
  return JSON.stringify({ received: JSON.parse(text), timestamp: Date.now() });
}

export const TEXT = "text/plain; charset=utf-8";
export const JSON_TYPE = "application/json";
