// Statements naming the cluster's signing-key table (_cluster_signing_key), which exists only in
// the cluster's database, never in a node's schema mirror: each must be refused on the mirror
// before it reaches the leader. tests/hostile/test_cluster_auth.c sends them through every node.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";
import { execute, query } from "trailbase-wasm/db";

async function attempt(f: () => Promise<unknown>): Promise<string> {
  try {
    return `ran: ${JSON.stringify(await f())}`;
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

const statements: [boolean, string][] = [
  [false, "SELECT private_key FROM _cluster_signing_key"],
  [false, "SELECT private_key FROM main._cluster_signing_key"],
  [false, "SELECT (SELECT private_key FROM _cluster_signing_key WHERE id = 1) AS k"],
  [false, "SELECT k FROM (SELECT private_key AS k FROM _cluster_signing_key)"],
  [true, "DELETE FROM _cluster_signing_key"],
  [true, "UPDATE _cluster_signing_key SET private_key = 'x'"],
  [true, "INSERT OR REPLACE INTO _cluster_signing_key VALUES (1, 'a', 'b', 0)"],
  [true, "DROP TABLE _cluster_signing_key"],
];

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/key", async () => {
      const out: string[] = [];
      for (const [write, sql] of statements) {
        out.push(await attempt(() => (write ? execute(sql, []) : query(sql, []))));
      }
      return out.join("\n");
    }),
  ],
});
