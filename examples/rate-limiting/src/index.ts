// API Rate Limiting: at most 10 requests a minute per client address, counted in the isolate's
// memory (the reference's "API Rate Limiting" sample). Each trail worker has its own isolate, so
// the limit applies per worker: run with --runtime-threads 1 for one global count.
import { defineConfig } from "trailbase-wasm"; // added: a complete module
import { HttpHandler, HttpResponse } from "trailbase-wasm/http"; // added

const rateLimits = new Map<string, number[]>();

function rateLimit(ip: string, maxRequests: number, windowMs: number): boolean {
  const now = Date.now();
  const requests = rateLimits.get(ip) ?? [];

  // Remove old requests outside the window
  const recentRequests = requests.filter(time => now - time < windowMs);

  if (recentRequests.length >= maxRequests) {
    return false; // Rate limit exceeded
  }

  recentRequests.push(now);
  rateLimits.set(ip, recentRequests);
  return true;
}

export default defineConfig({ // added
  httpHandlers: [ // added
HttpHandler.get("/api/expensive", (req) => {
  const ip = req.getHeader("x-forwarded-for") ?? "unknown";

  // Allow 10 requests per minute
  if (!rateLimit(ip, 10, 60000)) {
    return HttpResponse.json(
      { error: "Rate limit exceeded" },
      { status: 429 }
    );
  }

  // Handle request...
  return "OK";
}),
  ], // added
}); // added
