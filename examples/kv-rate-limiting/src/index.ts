// API Rate Limiting, exact across workers: the reference's "API Rate Limiting" sample with its
// counters in trailbase-wasm/kv, which every worker shares, instead of a module-level Map, which
// each worker's isolate has its own copy of (examples/rate-limiting). At most 10 requests a minute
// per client address, whichever worker serves them.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { open } from "trailbase-wasm/kv";

const kv = open();

// Fixed one-minute windows: the first request of a window creates the counter with a TTL, the
// rest add to it atomically; when the window ends the counter expires and counting starts again.
function rateLimit(ip: string, maxRequests: number, windowMs: number): boolean {
  const window = Math.floor(Date.now() / windowMs);
  const count = kv.increment(`ratelimit:${ip}:${window}`, 1, { ttlMs: windowMs });
  return count <= maxRequests;
}

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/api/expensive", (req) => {
      const ip = req.getHeader("x-forwarded-for") ?? "unknown";

      // Allow 10 requests per minute
      if (!rateLimit(ip, 10, 60000)) {
        return HttpResponse.json({ error: "Rate limit exceeded" }, { status: 429 });
      }

      // Handle request...
      return "OK";
    }),
  ],
});
