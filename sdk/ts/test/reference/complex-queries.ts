import { HttpHandler, HttpResponse } from "trailbase-wasm/http"; // added:
import { query } from "trailbase-wasm/db"; // added:

HttpHandler.get("/reports/user-activity", async () => {
  const rows = await query(`
    SELECT
      u.email,
      COUNT(t.id) as todo_count,
      SUM(t.completed) as completed_count
    FROM _user u
    LEFT JOIN todos t ON t.user = u.id
    GROUP BY u.id
    ORDER BY todo_count DESC
    LIMIT 10
  `, []);

  return HttpResponse.json({ topUsers: rows });
});
