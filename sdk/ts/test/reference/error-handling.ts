import { HttpHandler, HttpResponse } from "trailbase-wasm/http"; // added:
import { query } from "trailbase-wasm/db"; // added:

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
});

HttpHandler.get("/api/slow", async () => {
  const start = Date.now();
  const result = await query("SELECT * FROM large_table", []);
  const duration = Date.now() - start;

  console.log(`Query took ${duration}ms`);

  return HttpResponse.json({ duration, rows: result.length });
});
