// The hostile battery's jobs (tests/hostile/test_jobs.c): every second one job loops forever and
// another allocates without bound; a third, healthy one counts its runs.
import { defineConfig } from "trailbase-wasm";
import { JobHandler } from "trailbase-wasm/job";

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
  ],
});
