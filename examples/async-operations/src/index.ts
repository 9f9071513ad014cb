// Async Operations: sleeping with setTimeout, a periodic callback that stops itself, and queries
// run in parallel (the reference's "Timers" and "Parallel Queries" samples).
import { defineConfig } from "trailbase-wasm"; // added: a complete module
import { HttpHandler, HttpResponse } from "trailbase-wasm/http"; // added
import { query } from "trailbase-wasm/db"; // added
import { addPeriodicCallback } from "trailbase-wasm";

export default defineConfig({ // added
  httpHandlers: [ // added
HttpHandler.get("/delayed-response", async () => {
  // Sleep
  await new Promise(resolve => setTimeout(resolve, 1000));
  return "Delayed by 1 second";
}),

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
}),

HttpHandler.get("/dashboard", async () => {
  // Execute queries in parallel
  const [users, todos, articles] = await Promise.all([
    query("SELECT COUNT(*) FROM _user", []),
    query("SELECT COUNT(*) FROM todos", []),
    query("SELECT COUNT(*) FROM articles", []),
  ]);

  return HttpResponse.json({
    users: users[0][0],
    todos: todos[0][0],
    articles: articles[0][0],
  });
}),
  ], // added
}); // added
