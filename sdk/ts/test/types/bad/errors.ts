// Each line marked `// error` must fail to type-check (test/types.test.mjs counts them).
import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpResponse } from "trailbase-wasm/http";
import { query, Transaction } from "trailbase-wasm/db";
import { JobHandler } from "trailbase-wasm/job";

HttpHandler.get("/number", () => 42); // error
HttpHandler.get("/object", () => ({ a: 1 })); // error
HttpHandler.get("/nullable", (req) => req.getQueryParam("a").toUpperCase()); // error
HttpHandler.get("/status", () => HttpResponse.json({}, { status: "200" })); // error
HttpHandler.get("/headers", () => HttpResponse.json({}, { headers: { a: 1 } })); // error
query("SELECT ?", [{ a: 1 }]); // error
query("SELECT ?", [new Date()]); // error
JobHandler.hourly("x"); // error
defineConfig({ httpHandlers: [() => "x"] }); // error
defineConfig({ routes: [] }); // error
const n: number = HttpResponse.text("x"); // error
new HttpHandler("/ctor", "get", () => 42); // error
HttpResponse.status("200"); // error
new Transaction().query(1, []); // error
HttpHandler.get("/ref", (req) => req.method().toFixed()); // error
__trailhost.query("SELECT 1", []); // error
