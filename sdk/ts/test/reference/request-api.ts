import { HttpHandler, HttpRequest, HttpResponse } from "trailbase-wasm/http"; // added:

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
});
