import { HttpHandler, HttpResponse } from "trailbase-wasm/http"; // added:
import { query } from "trailbase-wasm/db"; // added:
declare const userId: string; // added:

// Use Parameterized Queries

// Good
await query("SELECT * FROM todos WHERE user = ?", [userId]);

// Bad
await query(`SELECT * FROM todos WHERE user = ${userId}`);

// Handle Errors Gracefully

HttpHandler.post("/api/resource", async (req) => {
  try {
    const data = req.json();
    // Process...
    return HttpResponse.json({ success: true });
  } catch (error) {
    console.error("Error:", error);
    return HttpResponse.json(
      { error: String(error) },
      { status: 400 }
    );
  }
});

// Optimize Database Queries

// Create index in migration
// CREATE INDEX _todos__user_index ON todos(user);

// Use LIMIT in queries
await query(
  "SELECT * FROM todos WHERE user = ? ORDER BY created_at DESC LIMIT 100",
  [userId]
);
