// The hostile battery's jobs (tests/hostile/test_jobs.c): every second one job loops forever and
// another allocates without bound; a third, healthy one counts its runs; a fourth tries to forge
// and erase trail's record of runs.
import { defineConfig } from "trailbase-wasm";
import { JobHandler } from "trailbase-wasm/job";
import { execute } from "trailbase-wasm/db";

export default defineConfig({
  jobHandlers: [
    JobHandler.cron("spin", "* * * * * *", () => {
      for (;;) {}
    }),
    JobHandler.cron("hog", "* * * * * *", async () => {
      await null;
      const a: Uint8Array[] = [];
      for (;;) a.push(new Uint8Array(1 << 16));
    }),
    JobHandler.cron("fine", "* * * * * *", async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }),
    JobHandler.cron("forge", "* * * * * *", async () => {
      const tries = [
        "INSERT INTO _job_runs (job, component, trigger, started_at, ok) VALUES ('forged', 'x', 'schedule', 0, 1)",
        "UPDATE _job_runs SET ok = 1, error = NULL",
        "DELETE FROM _job_runs",
      ];
      for (const sql of tries) {
        try {
          await execute(sql, []);
          console.log(`forge: wrote: ${sql}`);
        } catch (e) {
          console.log(`forge: refused: ${(e as Error).message}`);
        }
      }
    }),
  ],
});
