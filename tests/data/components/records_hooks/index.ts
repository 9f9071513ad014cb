// Record hooks for tests/e2e/test_records_hooks.c: before hooks that change or reject a write
// (and write to the database inside its transaction), after hooks that see the committed
// record, and hooks that fail after writing (a throw, the CPU budget, waiting for a timer,
// a COMMIT of the write's transaction).
import { defineConfig } from "trailbase-wasm";
import { HttpError, HttpHandler } from "trailbase-wasm/http";
import { execute, query } from "trailbase-wasm/db";
import { RecordHook } from "trailbase-wasm/records";

const audit = (what: string) => execute("INSERT INTO audit (what) VALUES (?)", [what]);

export default defineConfig({
  httpHandlers: [HttpHandler.get("/ok", () => "ok")],
  recordHooks: [
    RecordHook.beforeCreate("notes", async (ctx) => {
      const text = String(ctx.record.text ?? "");
      if (text.includes("forbidden")) throw new HttpError(422, "no forbidden words");
      await audit(`before create ${text} by ${ctx.user?.email ?? "anonymous"}`);
      return { ...ctx.record, text: text.trim().toUpperCase(), stamped: 1 };
    }),
    RecordHook.afterCreate("notes", async (ctx) => {
      await audit(`after create ${ctx.id} ${String(ctx.record.text)}`);
    }),
    RecordHook.beforeUpdate("notes", (ctx) => {
      if (ctx.record.keep === 1) throw new HttpError(403, "notes cannot be kept by an update");
      return { ...ctx.record, stamped: 2 };
    }),
    RecordHook.afterUpdate("notes", async (ctx) => {
      await audit(`after update ${ctx.id}`);
    }),
    RecordHook.beforeDelete("notes", async (ctx) => {
      const rows = await query("SELECT keep FROM notes WHERE id = ?", [Number(ctx.id)]);
      if (rows[0]?.[0] === 1) throw new HttpError(409, "this note is kept");
    }),
    RecordHook.afterDelete("notes", async (ctx) => {
      await audit(`after delete ${ctx.id}`);
    }),
    RecordHook.beforeCreate("crashy", async (ctx) => {
      await audit(`crashy ${String(ctx.record.mode)} was here`);
      if (ctx.record.mode === "throw") throw new Error("boom");
      if (ctx.record.mode === "loop") for (;;);
      if (ctx.record.mode === "wait") await new Promise((r) => setTimeout(r, 10));
      if (ctx.record.mode === "commit") await execute("COMMIT");
      if (ctx.record.mode === "runaway")
        await query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c");
      return undefined;
    }),
  ],
});
