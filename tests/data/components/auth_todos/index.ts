// Signed-in users in a guest: req.user(), requireUser/requireAdmin, and "my todos" (only the
// caller's rows). The test writes the migration that creates `todos`.
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { execute, query } from "trailbase-wasm/db";
import { requireAdmin, requireUser, userIdBytes } from "trailbase-wasm/auth";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/ok", () => "ok auth_todos"),
    HttpHandler.get("/me", (req) => HttpResponse.json({ user: req.user() })),
    HttpHandler.post("/me", (req) => HttpResponse.json({ user: req.user() })),
    HttpHandler.get("/todos", async (req) => {
      const user = requireUser(req);
      const rows = await query("SELECT text FROM todos WHERE owner = ? ORDER BY id", [userIdBytes(user)]);
      return HttpResponse.json(rows.map((r) => r[0]));
    }),
    HttpHandler.post("/todos", async (req) => {
      const user = requireUser(req);
      const body = req.json() as { text?: unknown } | undefined;
      if (typeof body?.text !== "string") return HttpResponse.status(400, "text missing");
      await execute("INSERT INTO todos (owner, text) VALUES (?, ?)", [userIdBytes(user), body.text]);
      return HttpResponse.status(201, "created");
    }),
    HttpHandler.get("/admin", async (req) => {
      const user = await requireAdmin(req);
      return `hello admin ${user.email}`;
    }),
    // What a guest may read of `_user`: the hash reads as NULL.
    HttpHandler.get("/hashes", async () => {
      const rows = await query("SELECT email, password_hash FROM _user ORDER BY email", []);
      const star = await query("SELECT * FROM _user", []);
      const sessions = await query("SELECT count(*) FROM _session", []).then(
        () => "readable",
        (e: Error) => e.message,
      );
      return HttpResponse.json({ rows, star: star.map((r) => r[2]), sessions });
    }),
    // Tries to shadow the auth API: trail serves its own endpoint first.
    HttpHandler.post("/api/auth/v1/login", () => "shadowed"),
    HttpHandler.get("/api/auth/v1/status", () => "shadowed"),
  ],
});
