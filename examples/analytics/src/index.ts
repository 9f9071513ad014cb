// Data Aggregation: an analytics overview of users and todos from four parallel queries (the
// reference's "Data Aggregation" sample; tables and data from migrations/0001_analytics.sql).
import { defineConfig } from "trailbase-wasm"; // added: a complete module
import { HttpHandler, HttpResponse } from "trailbase-wasm/http"; // added
import { query } from "trailbase-wasm/db"; // added

export default defineConfig({ // added
  httpHandlers: [ // added
HttpHandler.get("/api/analytics/overview", async () => {
  const [totalUsers, activeUsers, totalTodos, completionRate] = await Promise.all([
    query("SELECT COUNT(*) FROM _user", []),
    query("SELECT COUNT(DISTINCT user) FROM todos WHERE updated_at > ?", [
      Math.floor(Date.now() / 1000) - (7 * 24 * 60 * 60),
    ]),
    query("SELECT COUNT(*) FROM todos", []),
    query("SELECT AVG(completed) FROM todos", []),
  ]);

  return HttpResponse.json({
    users: {
      total: totalUsers[0][0],
      active: activeUsers[0][0],
    },
    todos: {
      total: totalTodos[0][0],
      completionRate: (completionRate[0][0] * 100).toFixed(1) + "%",
    },
  });
}),
  ], // added
}); // added
