// A write endpoint for tests/e2e/test_cluster_failover.c: POST /w/KEY inserts one row with the
// client's key through the guest's execute(), which in cluster mode runs on the leader. 200 means
// the leader acknowledged the write (committed through Raft); any failure answers 503 with the
// error, and the client then does not know whether the row landed.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { execute } from "trailbase-wasm/db";

export default defineConfig({
  httpHandlers: [
    HttpHandler.post("/w/:key", async (req) => {
      const key = Number(req.getPathParam("key"));
      if (!Number.isSafeInteger(key)) return HttpResponse.json({ error: "bad key" }, { status: 400 });
      try {
        const n = await execute("INSERT INTO w (key) VALUES (?)", [key]);
        if (n !== 1) return HttpResponse.json({ error: `inserted ${n} rows` }, { status: 500 });
        return HttpResponse.text("ok");
      } catch (e) {
        return HttpResponse.json({ error: (e as Error).message }, { status: 503 });
      }
    }),
  ],
});
