import { defineConfig } from "trailbase-wasm";
import { JobHandler } from "trailbase-wasm/job";

export default defineConfig({
  jobHandlers: [
    JobHandler.minutely("every-minute", () => console.log("ran every-minute")),
    JobHandler.hourly("every-hour", () => console.log("ran every-hour")),
    JobHandler.daily("every-day", () => console.log("ran every-day")),
    JobHandler.weekly("every-week", () => console.log("ran every-week")),
    JobHandler.cron("mondays", "0 0 * * 1", () => console.log("ran mondays")),
  ],
});
