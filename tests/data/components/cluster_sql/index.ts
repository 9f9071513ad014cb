// A guest's query() and execute() in cluster mode: the component of tests/e2e/test_cluster.c's
// application-database test. The same component runs on one node for the allow-list's message.
// Its /tx/... endpoints are guest transactions in the cluster (tests/e2e/test_cluster_guest.c).
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { beginTransaction, execute, query, transaction, Transaction } from "trailbase-wasm/db";

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
    // statements of one worker keep their call order, though none is awaited before the next
    HttpHandler.post("/order", async () => {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          execute("INSERT INTO notes (body) VALUES (?)", [`order ${i}`]),
        ),
      );
      const rows = await query("SELECT body FROM notes WHERE body LIKE 'order %' ORDER BY id", []);
      return rows.map((r) => String(r[0]).slice(6)).join(",");
    }),
    // an isolate that dies (out of memory) while its statement is out on the leader
    HttpHandler.get("/die", async () => {
      void query("SELECT count(*) FROM notes", []);
      const hog: number[][] = [];
      for (;;) hog.push(new Array(1 << 20).fill(1));
    }),
    // a write through query() (its RETURNING rows): committed through Raft like execute()'s
    HttpHandler.post("/returning", async (req) =>
      attempt(async () =>
        JSON.stringify(
          await query("INSERT INTO notes (body) VALUES (?) RETURNING id, body", [req.text()]),
        ),
      ),
    ),
    // writes through query() that fail inside their BEGIN IMMEDIATE ... COMMIT on the leader
    // (tests/hostile/test_cluster_guest.c): a runaway before its insert, a duplicate key
    HttpHandler.get("/runaway-write", async () =>
      attempt(() =>
        query(
          "INSERT INTO notes (body) SELECT 'runaway' WHERE (WITH RECURSIVE c(x) AS (SELECT 1 " +
            "UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) SELECT count(*) FROM c) > 0 " +
            "RETURNING id",
          [],
        ),
      ),
    ),
    HttpHandler.get("/dup-write", async () =>
      attempt(() => query("INSERT INTO notes (id, body) VALUES (1, 'dup') RETURNING id", [])),
    ),
    // guest transactions: N rows (the body names them) in one transaction, committed
    HttpHandler.post("/tx/insert/:n", async (req) => {
      const n = Number(req.getPathParam("n"));
      const name = req.text();
      return attempt(() =>
        transaction(async (tx) => {
          let done = 0;
          for (let i = 0; i < n; i++)
            done += await tx.execute("INSERT INTO notes (body) VALUES (?)", [`${name} ${i}`]);
          const rows = await tx.query("SELECT count(*) FROM notes WHERE body LIKE ?", [`${name} %`]);
          return `${done} inserted, ${String(rows[0][0])} seen inside`;
        }),
      );
    }),
    // statements that fail inside a transaction (a duplicate key, through execute() and query())
    // leave it open, as on one node: the rows around them are committed
    HttpHandler.post("/tx/dup", async (req) => {
      const name = req.text();
      const errors: string[] = [];
      await transaction(async (tx) => {
        await tx.execute("INSERT INTO notes (body) VALUES (?)", [`${name} 0`]);
        errors.push(await attempt(() => tx.execute("INSERT INTO notes (id, body) VALUES (1, 'x')", [])));
        errors.push(
          await attempt(() => tx.query("INSERT INTO notes (id, body) VALUES (1, 'x') RETURNING id", [])),
        );
        await tx.execute("INSERT INTO notes (body) VALUES (?)", [`${name} 1`]);
      });
      return errors.join("\n");
    }),
    // a transaction that waits (a timer) between two inserts: the leader may change meanwhile
    HttpHandler.post("/tx/pause/:ms", async (req) => {
      const ms = Number(req.getPathParam("ms"));
      const name = req.text();
      return attempt(() =>
        transaction(async (tx) => {
          await tx.execute("INSERT INTO notes (body) VALUES (?)", [`${name} 0`]);
          await new Promise((resolve) => setTimeout(resolve, ms));
          await tx.execute("INSERT INTO notes (body) VALUES (?)", [`${name} 1`]);
          return "committed";
        }),
      );
    }),
    // rows inserted, then the transaction throws: rolled back
    HttpHandler.post("/tx/throw", async (req) => {
      const name = req.text();
      return attempt(() =>
        transaction(async (tx) => {
          for (let i = 0; i < 3; i++)
            await tx.execute("INSERT INTO notes (body) VALUES (?)", [`${name} ${i}`]);
          throw new Error("changed my mind");
        }),
      );
    }),
    // rows inserted, then rolled back explicitly; and a statement that may not end it
    HttpHandler.post("/tx/rollback", async (req) => {
      const name = req.text();
      const tx = await beginTransaction();
      await tx.execute("INSERT INTO notes (body) VALUES (?)", [`${name} 0`]);
      const inner = await attempt(() => tx.execute("COMMIT", []));
      await tx.rollback();
      return inner;
    }),
    // a transaction left open: rolled back at its timeout (or when its isolate goes away)
    HttpHandler.post("/tx/open", async (req) => {
      const tx = await beginTransaction();
      await tx.execute("INSERT INTO notes (body) VALUES (?)", [req.text()]);
      return "left open";
    }),
    // an isolate that dies (out of memory) with its transaction open
    HttpHandler.post("/tx/die", async (req) => {
      const tx = await beginTransaction();
      await tx.execute("INSERT INTO notes (body) VALUES (?)", [req.text()]);
      const hog: number[][] = [];
      for (;;) hog.push(new Array(1 << 20).fill(1));
    }),
    // a statement without end inside a transaction (tests/hostile/test_cluster_guest.c)
    HttpHandler.post("/tx/runaway", async (req) => {
      const name = req.text();
      return attempt(() =>
        transaction(async (tx) => {
          await tx.execute("INSERT INTO notes (body) VALUES (?)", [`${name} 0`]);
          return tx.query(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) " +
              "SELECT count(*) FROM c",
            [],
          );
        }),
      );
    }),
    // the synchronous transaction, which would block the worker in cluster mode
    HttpHandler.get("/tx/sync", async () =>
      attempt(async () => {
        const tx = new Transaction();
        tx.rollback();
        return "began";
      }),
    ),
    HttpHandler.get("/count/:name", async (req) => {
      const rows = await query("SELECT count(*) FROM notes WHERE body LIKE ?", [
        `${req.getPathParam("name")} %`,
      ]);
      return String(rows[0][0]);
    }),
    // no SQL: what must answer at once while another request's statement is out on the leader
    HttpHandler.get("/ping", async () => "pong"),
    // a statement without end: bounded on the leader (tests/hostile/test_cluster_guest.c)
    HttpHandler.get("/runaway", async () =>
      attempt(() =>
        query(
          "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) " +
            "SELECT count(*) FROM c",
          [],
        ),
      ),
    ),
    // trail's own functions (names beginning with _) are not a guest's
    HttpHandler.get("/limit", async () =>
      attempt(() => query("SELECT _trail_statement_limit(100000)", [])),
    ),
    // a text dqlite's protocol cannot carry (it ends texts at a NUL)
    HttpHandler.get("/nul", async () =>
      attempt(() => execute("INSERT INTO notes (body) VALUES (?)", ["a\u0000b"])),
    ),
  ],
});
