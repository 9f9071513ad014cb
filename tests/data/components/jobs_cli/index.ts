import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";
import { JobHandler } from "trailbase-wasm/job";

// Module state of the isolate: a job run by `trail jobs run` in the server changes what the
// server's route then answers.
let bumps = 0;

function explode(): never {
  throw new Error("manual job exploded");
}

export default defineConfig({
  httpHandlers: [HttpHandler.get("/bumps", () => `${bumps}`)],
  jobHandlers: [
    // Never due on its own within a test: only `trail jobs run` starts them.
    JobHandler.cron("bump", "0 0 0 1 1 *", () => {
      bumps++;
      console.log(`bump ran, bumps=${bumps}`);
    }),
    JobHandler.cron("explode", "0 0 0 1 1 *", () => explode()),
    JobHandler.cron("slow", "0 0 0 1 1 *", async () => {
      await new Promise((resolve) => setTimeout(resolve, 10000));
    }),
  ],
});
