import { addPeriodicCallback } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http"; // added:

HttpHandler.get("/delayed-response", async () => {
  // Sleep
  await new Promise(resolve => setTimeout(resolve, 1000));
  return "Delayed by 1 second";
});

HttpHandler.get("/periodic", () => {
  let count = 0;

  // Schedule periodic callback
  addPeriodicCallback(250, (cancel) => {
    console.log(`Callback #${count}`);
    count++;

    if (count >= 10) {
      cancel(); // Stop after 10 iterations
    }
  });

  return "Started periodic task";
});
