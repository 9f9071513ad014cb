// Jobs in a cluster (tests/e2e/test_cluster_jobs.c): every node schedules "tick" every second, and
// the node that claims a slot runs it; each run adds a row through execute(), which goes to the
// leader, so the rows count the runs made anywhere in the cluster. "poke" is never due on its own:
// only `trail jobs run` starts it.
import { defineConfig } from "trailbase-wasm";
import { JobHandler } from "trailbase-wasm/job";
import { execute } from "trailbase-wasm/db";

export default defineConfig({
  jobHandlers: [
    JobHandler.cron("tick", "* * * * * *", async () => {
      await execute("INSERT INTO ticks (at) VALUES (?)", [Date.now()]);
    }),
    // Also a guest that tries to erase the cluster's record of runs: refused like any `_` table.
    JobHandler.cron("poke", "0 0 0 1 1 *", async () => {
      try {
        await execute("DELETE FROM _job_runs", []);
        console.log("poke: _job_runs deleted");
      } catch (e) {
        console.log(`poke: refused: ${(e as Error).message}`);
      }
    }),
  ],
});
