// The hostile battery's scheduler case (tests/hostile/test_server.c): a job due every second
// whose runs take 1.5 s, so it is always still running when it is next due.
import { defineConfig } from "trailbase-wasm";
import { JobHandler } from "trailbase-wasm/job";

export default defineConfig({
  jobHandlers: [
    JobHandler.cron("slow", "* * * * * *", async () => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }),
  ],
});
