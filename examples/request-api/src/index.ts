// Request API: query, path and body access (the reference's "Request API" sample).
import { defineConfig } from "trailbase-wasm"; // added: a complete module
import { HttpHandler, HttpRequest, HttpResponse } from "trailbase-wasm/http"; // added

export default defineConfig({ // added
  httpHandlers: [ // added
HttpHandler.get("/api/example", (req: HttpRequest) => {
  // Query parameters
  const page = req.getQueryParam("page") ?? "1";
  const limit = req.getQueryParam("limit") ?? "10";

  // Path parameters
  const id = req.getPathParam("id");

  // Request body as JSON
  const body = req.json();

  // Raw request body
  const raw = req.body();

  return HttpResponse.json({
    page,
    limit,
    id,
    body,
  });
}),
  ], // added
}); // added
