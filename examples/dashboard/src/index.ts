// Dashboard: three counts fetched in parallel with Promise.all (the reference's "Parallel
// Queries" sample).
import { defineConfig } from "trailbase-wasm"; // added: a complete module
import { HttpHandler, HttpResponse } from "trailbase-wasm/http"; // added
import { query } from "trailbase-wasm/db"; // added

export default defineConfig({ // added
  httpHandlers: [ // added
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
