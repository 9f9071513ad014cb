// bench/ref/deno.mjs: the benchmark's endpoints on Deno with Deno.serve and node:sqlite.
// Environment: PORT, DB (the SQLite file bench/app/migrations/0001_todos.sql was loaded into).
import { DatabaseSync } from "node:sqlite";
import { SPIN_ITERATIONS, spin, makeQueries, jsonBody, TEXT, JSON_TYPE } from "./common.mjs";

const db = new DatabaseSync(Deno.env.get("DB"), { readOnly: true });
const q = makeQueries(db);
const text = (body) => new Response(body, { headers: { "Content-Type": TEXT } });
const json = (body, status = 200) => new Response(body, { status, headers: { "Content-Type": JSON_TYPE } });
const notFound = () => json('{"error":"not found"}', 404);

Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")), onListen() {} }, async (req) => {
  // The path starts after "http://host:port"; no URL object on the hot path.
  const url = req.url;
  const path = url.slice(url.indexOf("/", 8));
  if (req.method === "GET") {
    if (path === "/hello") return text("Hello from WASM!");
    if (path.startsWith("/greet/")) return text(`Hello, ${decodeURIComponent(path.slice(7))}!`);
    if (path === "/stats/todos") return json(q.stats());
    if (path.startsWith("/todos/")) {
      const body = q.todo(path.slice(7));
      return body ? json(body) : notFound();
    }
    if (path === "/cpu") return json(JSON.stringify({ result: spin(SPIN_ITERATIONS) }));
  } else if (req.method === "POST" && path === "/json") {
    try {
      return json(jsonBody(await req.text()));
    } catch {
      return json('{"error":"invalid JSON"}', 400);
    }
  }
  return notFound();
});
