// Response API: text, JSON, custom status and headers (the reference's "Response API" sample).
import { defineConfig } from "trailbase-wasm"; // added: a complete module
import { HttpHandler } from "trailbase-wasm/http"; // added
import { HttpResponse } from "trailbase-wasm/http";

export default defineConfig({ // added
  httpHandlers: [ // added
// Return plain text (default)
HttpHandler.get("/text", () => {
  return "Hello, World!";
}),

// Return JSON
HttpHandler.get("/json", () => {
  return HttpResponse.json({ status: "ok" });
}),

// Custom status code
HttpHandler.get("/not-found", () => {
  return HttpResponse.json(
    { error: "Not found" },
    { status: 404 }
  );
}),

// Custom headers
HttpHandler.get("/custom", () => {
  return HttpResponse.json(
    { data: "test" },
    {
      headers: {
        "X-Custom-Header": "value",
        "Cache-Control": "max-age=3600",
      }
    }
  );
}),
  ], // added
}); // added
