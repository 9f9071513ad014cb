// Database Access: counting, searching and joining the seeded todos (the reference's "Database
// Access", "Complex Queries" and "Best Practices" query samples; the table comes from
// migrations/0001_todos.sql).
import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";
import { query } from "trailbase-wasm/db";
import { HttpResponse } from "trailbase-wasm/http"; // added: the sample uses HttpResponse without importing it

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/stats/todos", async () => {
      // Execute SQL query
      const rows = await query(
        "SELECT COUNT(*) as total, SUM(completed) as done FROM todos",
        []
      );

      return HttpResponse.json({
        total: rows[0][0],
        done: rows[0][1],
        pending: rows[0][0] - rows[0][1],
      });
    }),

    HttpHandler.get("/todos/search", async (req) => {
      const q = req.getQueryParam("q") ?? "";

      // Parameterized queries prevent SQL injection
      const rows = await query(
        "SELECT * FROM todos WHERE text LIKE ? LIMIT 10",
        [`%${q}%`]
      );

      return HttpResponse.json({ results: rows });
    }),

    // added: the "Complex Queries" sample, as one more route of this component
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
    }),

    // added: the "Best Practices" samples (a parameterized query with LIMIT, served by the
    // _todos__user_index of the migration), for the user named in the path
    HttpHandler.get("/todos/user/:email", async (req) => {
      const users = await query("SELECT id FROM _user WHERE email = ?", [req.getPathParam("email")]);
      if (users.length === 0) {
        return HttpResponse.json({ error: "No such user" }, { status: 404 });
      }
      const userId = users[0][0]; // the _user id: a 16-byte BLOB, a Uint8Array here

      // Good
      const rows = await query(
        "SELECT * FROM todos WHERE user = ? ORDER BY created_at DESC LIMIT 100",
        [userId]
      );
      return HttpResponse.json({ todos: rows.map((row) => row[2]) });
    }),
  ],
});
