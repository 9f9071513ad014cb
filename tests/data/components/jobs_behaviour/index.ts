import { defineConfig } from "trailbase-wasm";
import { JobHandler } from "trailbase-wasm/job";
import { query } from "trailbase-wasm/db";

function explode(): never {
  throw new Error("job exploded");
}

export default defineConfig({
  jobHandlers: [
    JobHandler.cron("tick", "* * * * * *", async () => {
      const rows = await query("SELECT 40 + 2", []);
      if (rows[0][0] !== 42) throw new Error("bad query result");
    }),
    JobHandler.cron("boom", "* * * * * *", () => explode()),
    JobHandler.cron("slow", "* * * * * *", async () => {
      await new Promise((resolve) => setTimeout(resolve, 2500));
    }),
  ],
});
