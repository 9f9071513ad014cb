// SQL values both ways, SQL errors, JSON body errors, transactions that write, and blobs over
// HTTP: the component of tests/e2e/test_examples.c's type and error tests.
import { defineConfig } from "trailbase-wasm";
import { HttpError, HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { execute, query, transaction } from "trailbase-wasm/db";

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "bigint") return `bigint ${v}`;
  if (typeof v === "number") return `number ${Object.is(v, -0) ? "-0" : v}`;
  if (typeof v === "string") return `string ${JSON.stringify(v)} ${v.length}`;
  if (v instanceof Uint8Array) return `bytes [${Array.from(v).join(",")}]`;
  return `other ${typeof v}`;
}

const INPUTS: unknown[] = [
  null,
  0,
  -1,
  2 ** 53 - 1,
  -(2 ** 53 - 1),
  2n ** 53n,
  -(2n ** 53n),
  9223372036854775807n,
  -9223372036854775808n,
  1.5,
  -0.25,
  1e300,
  "",
  "héllo 🌍",
  "a\u0000b",
  new Uint8Array([0, 1, 2, 255]),
  new Uint8Array(0),
  true,
  undefined,
  new Float32Array([1.5]),
];

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/types", async () => {
      await execute("CREATE TABLE IF NOT EXISTS vals (id INTEGER PRIMARY KEY, v ANY) STRICT", []);
      await execute("DELETE FROM vals", []);
      for (const v of INPUTS) await execute("INSERT INTO vals (v) VALUES (?)", [v as any]);
      const rows = await query("SELECT v, typeof(v) FROM vals ORDER BY id", []);
      // a bigint parameter compares equal to the INTEGER it round-tripped from
      const big = await query("SELECT count(*) FROM vals WHERE v = ?", [9223372036854775807n]);
      return HttpResponse.json({ rows: rows.map(([v, t]) => `${describe(v)} (${t})`), big: big[0][0] });
    }),
    HttpHandler.get("/bad-param", async () => {
      try {
        await query("SELECT ?", [{ a: 1 } as any]);
        return "bound";
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    }),
    HttpHandler.get("/sql-error", async () => {
      try {
        await query("SELECT * FROM nope", []);
        return "no error";
      } catch (e) {
        return `caught ${(e as Error).name}: ${(e as Error).message}`;
      }
    }),
    HttpHandler.get("/sql-error-uncaught", async () => {
      await execute("INSERT INTO nope VALUES (1)", []);
      return "unreachable";
    }),
    HttpHandler.post("/json", (req) => HttpResponse.json({ got: req.json() })),
    HttpHandler.post("/json-caught", (req) => {
      try {
        return HttpResponse.json({ got: req.json() });
      } catch (e) {
        return HttpResponse.json({ mine: (e as HttpError).status }, { status: 422 });
      }
    }),
    HttpHandler.get("/throw", () => {
      throw new Error("boom");
    }),
    HttpHandler.get("/reject", () => Promise.reject(new RangeError("async boom"))),
    HttpHandler.get("/http-error", () => {
      throw new HttpError(409, "already there");
    }),
    HttpHandler.post("/blob", async (req) => {
      await execute("CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)", []);
      await execute("INSERT INTO blobs (b) VALUES (?)", [req.body()]);
      const rows = await query("SELECT b FROM blobs ORDER BY id DESC LIMIT 1", []);
      return rows[0][0] as Uint8Array;
    }),
    // A transfer between accounts: commits when it succeeds, rolls back when the balance is short.
    HttpHandler.post("/transfer", async (req) => {
      const { from, to, amount, delay } = req.json();
      await execute(
        "CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)",
        [],
      );
      await execute("INSERT OR IGNORE INTO accounts VALUES (1, 100), (2, 0)", []);
      try {
        const balance = await transaction(async (tx) => {
          await tx.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", [amount, to]);
          // with a delay the transaction stays open across a timer, so concurrent requests wait
          if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
          await tx.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", [amount, from]);
          const rows = await tx.query("SELECT balance FROM accounts WHERE id = ?", [from]);
          if (rows[0][0] < 0) throw new HttpError(409, "insufficient funds");
          return rows[0][0];
        });
        return HttpResponse.json({ balance });
      } finally {
        // runs after the transaction ended either way: a plain query is not held up
        await query("SELECT 1", []);
      }
    }),
  ],
});
