// bench/ref/bun.mjs: the benchmark's endpoints on Bun with Bun.serve's router and bun:sqlite.
// Environment: PORT, DB (the SQLite file bench/app/migrations/0001_todos.sql was loaded into).
import { Database } from "bun:sqlite";
import { SPIN_ITERATIONS, spin, makeQueries, jsonBody, TEXT, JSON_TYPE } from "./common.mjs";

const db = new Database(process.env.DB, { readonly: true });
const q = makeQueries(db);
const text = (body) => new Response(body, { headers: { "Content-Type": TEXT } });
const json = (body, status = 200) => new Response(body, { status, headers: { "Content-Type": JSON_TYPE } });

Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT),
  routes: {
    "/hello": { GET: () => text("Hello from WASM!") },
    "/greet/:name": { GET: (req) => text(`Hello, ${req.params.name}!`) },
    "/json": {
      POST: async (req) => {
        try {
          return json(jsonBody(await req.text()));
        } catch {
          return json('{"error":"invalid JSON"}', 400);
        }
      },
    },
    "/stats/todos": { GET: () => json(q.stats()) },
    "/todos/:id": {
      GET: (req) => {
        const body = q.todo(req.params.id);
        return body ? json(body) : json('{"error":"not found"}', 404);
      },
    },
    "/cpu": { GET: () => json(JSON.stringify({ result: spin(SPIN_ITERATIONS) })) },
  },
  fetch: () => json('{"error":"not found"}', 404),
});
