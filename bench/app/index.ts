// bench/app: the component bench/run.sh measures. The reference's Quick Start (/hello,
// /greet/:name, POST /json), its /stats/todos aggregate over the 10,000-row `todos` table that
// migrations/0001_todos.sql seeds, a point lookup by id, and a CPU-bound handler. bench/ref/*.mjs
// implement the same endpoints, byte for byte the same bodies, for Node.js, Bun and Deno. Only
// trail has the last two, an increment in the shared key-value store (trailbase-wasm/kv) and
// req.user() of a request with a bearer token.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpRequest, HttpResponse } from "trailbase-wasm/http";
import { query } from "trailbase-wasm/db";
import { open } from "trailbase-wasm/kv";

// For GET /kv/incr: each isolate counts under a key of its own, so that two workers measure the
// store's scaling rather than two writers of one key (which share its lock by design).
const kv = open();
const counterKey = `bench-${Math.random()}`;

// The CPU-bound handler: a fixed amount of integer work (xorshift32), the same in every runtime.
// Sized to take about 1 ms in trail's interpreter; a JIT runs it far faster, which is the point.
const SPIN_ITERATIONS = 20000;

function spin(n: number): number {
  let x = 2463534242;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x >>> 0;
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/hello", (req: HttpRequest) => {
      return "Hello from WASM!";
    }),
    HttpHandler.get("/greet/:name", (req: HttpRequest) => {
      const name = req.getPathParam("name");
      return `Hello, ${name}!`;
    }),
    HttpHandler.post("/json", (req: HttpRequest) => {
      const data = req.json();
      return HttpResponse.json({
        received: data,
        timestamp: Date.now(),
      });
    }),
    HttpHandler.get("/stats/todos", async () => {
      const rows = await query("SELECT COUNT(*) as total, SUM(completed) as done FROM todos", []);
      return HttpResponse.json({
        total: rows[0][0],
        done: rows[0][1],
        pending: rows[0][0] - rows[0][1],
      });
    }),
    // the Record API's list and create as handlers (bench/run.py puts them side by side)
    HttpHandler.get("/todos", async (req: HttpRequest) => {
      const limit = Math.min(Number(req.getQueryParam("limit") || "50"), 1024);
      const rows = await query(
        "SELECT id, user, text, completed, created_at, updated_at FROM todos ORDER BY id DESC LIMIT ?",
        [limit],
      );
      const records = rows.map(([id, user, text, completed, created_at, updated_at]) => ({
        id, user, text, completed, created_at, updated_at,
      }));
      return HttpResponse.json({ records });
    }),
    HttpHandler.post("/todos", async (req: HttpRequest) => {
      const t = req.json() as { user: number; text: string; completed?: number; created_at: number; updated_at: number };
      const rows = await query(
        "INSERT INTO todos (user, text, completed, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        [t.user, t.text, t.completed ?? 0, t.created_at, t.updated_at],
      );
      return HttpResponse.json({ id: rows[0][0] });
    }),
    HttpHandler.get("/todos/:id", async (req: HttpRequest) => {
      const rows = await query("SELECT id, user, text, completed FROM todos WHERE id = ?", [
        Number(req.getPathParam("id")),
      ]);
      if (rows.length === 0) return HttpResponse.json({ error: "not found" }, { status: 404 });
      const [id, user, text, completed] = rows[0];
      return HttpResponse.json({ id, user, text, completed });
    }),
    HttpHandler.get("/kv/incr", () => `${kv.increment(counterKey)}`),
    // The signed-in caller (trail verifies the bearer token's Ed25519 signature per request).
    HttpHandler.get("/me", (req: HttpRequest) => req.user()?.email ?? "anonymous"),
    HttpHandler.get("/cpu", () => {
      return HttpResponse.json({ result: spin(SPIN_ITERATIONS) });
    }),
  ],
});
