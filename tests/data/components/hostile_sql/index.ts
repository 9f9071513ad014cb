// The hostile battery's SQL component (tests/hostile/test_sqlguard.c): runs whatever SQL the test
// sends on the worker's connection, holds a transaction open for a while, and spins to get its
// isolate replaced; beside the healthy /ok and /whoami routes of every hostile component.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { execute, query, transaction } from "trailbase-wasm/db";

let served = 0;
// Differs between isolates: tells workers apart, and an isolate from its replacement.
const isolateId = `${Math.random()}`.slice(2);

function json(status: number, v: unknown): HttpResponse {
  return new HttpResponse(
    JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x)),
    { status, headers: [["content-type", "application/json"]] },
  );
}

async function run(sql: string, rows: boolean): Promise<HttpResponse> {
  const t0 = Date.now();
  try {
    const got = rows ? await query(sql, []) : await execute(sql, []);
    return json(200, { ok: got, ms: Date.now() - t0 });
  } catch (e) {
    return json(400, { error: (e as Error).message, ms: Date.now() - t0 });
  }
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/ok", () => `ok ${++served}`),
    HttpHandler.get("/whoami", () => isolateId),
    HttpHandler.get("/spin", () => {
      for (;;) {}
    }),
    // one statement, its rows or its count of changed rows; 400 with the message when it fails
    HttpHandler.post("/sql/query", (req) => run(req.text(), true)),
    HttpHandler.post("/sql/exec", (req) => run(req.text(), false)),
    // a transaction that writes, then holds the write lock for :ms before it commits
    HttpHandler.post("/sql/hold/:ms", async (req) => {
      const ms = Number(req.getPathParam("ms"));
      const t0 = Date.now();
      try {
        await transaction(async (tx) => {
          await tx.execute("INSERT INTO held (at) VALUES (?)", [t0]);
          await new Promise((resolve) => setTimeout(resolve, ms));
        });
        return json(200, { ok: true, ms: Date.now() - t0 });
      } catch (e) {
        return json(400, { error: (e as Error).message, ms: Date.now() - t0 });
      }
    }),
  ],
});
