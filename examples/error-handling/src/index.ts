// Error Handling: a failing query caught and answered 500, a timed query, and a request body
// that is not JSON answered 400 by the handler itself (the reference's "Debugging / Error
// Handling" and "Best Practices / Handle Errors Gracefully" samples; large_table comes from
// migrations/0001_large_table.sql, and nonexistent_table does not exist on purpose).
import { defineConfig } from "trailbase-wasm"; // added: a complete module
import { HttpHandler, HttpResponse } from "trailbase-wasm/http"; // added
import { query } from "trailbase-wasm/db"; // added

export default defineConfig({ // added
  httpHandlers: [ // added
HttpHandler.get("/api/risky", async (req) => {
  try {
    const data = await query("SELECT * FROM nonexistent_table", []);
    return HttpResponse.json(data);
  } catch (error) {
    console.error("Query failed:", error);
    return HttpResponse.json(
      { error: "Internal server error" },
      { status: 500 }
    );
  }
}),

HttpHandler.get("/api/slow", async () => {
  const start = Date.now();
  const result = await query("SELECT * FROM large_table", []);
  const duration = Date.now() - start;

  console.log(`Query took ${duration}ms`);
  return HttpResponse.json({ duration, rows: result.length });
}),

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
}),
  ], // added
}); // added
