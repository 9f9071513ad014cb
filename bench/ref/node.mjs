// bench/ref/node.mjs: the benchmark's endpoints on Node.js with node:http and better-sqlite3.
// Environment: PORT, DB (the SQLite file bench/app/migrations/0001_todos.sql was loaded into).
import http from "node:http";
import Database from "better-sqlite3";
import { SPIN_ITERATIONS, spin, makeQueries, jsonBody, TEXT, JSON_TYPE } from "./common.mjs";

const db = new Database(process.env.DB, { readonly: true });
const q = makeQueries(db);

function send(res, status, type, body) {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = req.url;
  if (req.method === "GET") {
    if (url === "/hello") return send(res, 200, TEXT, "Hello from WASM!");
    if (url.startsWith("/greet/"))
      return send(res, 200, TEXT, `Hello, ${decodeURIComponent(url.slice(7))}!`);
    if (url === "/stats/todos") return send(res, 200, JSON_TYPE, q.stats());
    if (url.startsWith("/todos/")) {
      const body = q.todo(url.slice(7));
      return body ? send(res, 200, JSON_TYPE, body) : send(res, 404, JSON_TYPE, '{"error":"not found"}');
    }
    if (url === "/cpu") return send(res, 200, JSON_TYPE, JSON.stringify({ result: spin(SPIN_ITERATIONS) }));
  } else if (req.method === "POST" && url === "/json") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body;
      try {
        body = jsonBody(Buffer.concat(chunks).toString());
      } catch {
        return send(res, 400, JSON_TYPE, '{"error":"invalid JSON"}');
      }
      send(res, 200, JSON_TYPE, body);
    });
    return;
  }
  send(res, 404, JSON_TYPE, '{"error":"not found"}');
});
server.keepAliveTimeout = 60000;
server.listen(Number(process.env.PORT), "127.0.0.1");
