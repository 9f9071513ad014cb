// Vector Search: coffees ranked by cosine distance between their embeddings and the query's (the
// reference's "Vector Search Endpoint" sample; coffees and their 384-dimensional embeddings come
// from migrations/0001_coffees.sql). The sample's embed() is a mock that returns a zero vector,
// which has no direction: every distance is then NULL (NaN), as with sqlite-vec. Replace it with a
// call to an embedding model to get a ranking.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpRequest, HttpResponse } from "trailbase-wasm/http";
import { query } from "trailbase-wasm/db";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/api/search", async (req: HttpRequest) => {
      const q = req.getQueryParam("q");
      const limit = parseInt(req.getQueryParam("limit") ?? "10");

      if (!q) {
        return HttpResponse.json({ error: "Missing query" }, { status: 400 });
      }

      // Perform vector similarity search
      const results = await query(`
        SELECT
          c.name,
          c.description,
          c.flavor_notes,
          vec_distance_cosine(c.embedding, vec_f32(?)) as distance
        FROM coffees c
        ORDER BY distance ASC
        LIMIT ?
      `, [await embed(q), limit]);

      return HttpResponse.json({ results });
    }),
  ],
});

// Mock embedding function
async function embed(text: string): Promise<Float32Array> {
  // In production, call an embedding API
  return new Float32Array(384); // Example: 384-dimensional embedding
}
