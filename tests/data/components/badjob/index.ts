import { defineConfig } from "trailbase-wasm";
import { JobHandler } from "trailbase-wasm/job";

export default defineConfig({
  jobHandlers: [JobHandler.cron("broken-schedule", "61 * * * *", async () => {})],
});
