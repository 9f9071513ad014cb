// The SDK's per-request cost inside the pinned engine: dispatch() called in a loop in the guest
// (QuickJS-NG in WebAssembly, here run by Node's WebAssembly engine through quickjs-wasi, not by
// trail's wasm2c build), for the reference's Quick Start routes. A figure, never a pass/fail.
//   node bench/dispatch.mjs
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { EvalFlags, QuickJS } from "quickjs-wasi";
import { createRequire } from "node:module";
import { buildComponent, readCustomSections } from "../lib/build.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const tmp = mkdtempSync(path.join(tmpdir(), "trail-sdk-bench-"));
const out = path.join(tmp, "c.wasm");
const r = await buildComponent({ dir: path.join(ROOT, "test/reference"), entry: "quick-start.ts", out });
if (!r.ok) throw new Error(r.errors.join("\n"));
const js = readCustomSections(readFileSync(out)).find((s) => s.name === "trailbase.js").data.toString();
rmSync(tmp, { recursive: true });

const vm = await QuickJS.create({ wasm: readFileSync(require.resolve("quickjs-wasi/quickjs.wasm")) });
const enc = new TextEncoder();
const dec = new TextDecoder();
const host = vm.newObject();
for (const [name, f] of [
    ["encodeUtf8", (s) => vm.newUint8Array(enc.encode(s.toString()))],
    ["decodeUtf8", (b) => vm.newString(dec.decode(b.toUint8Array()))],
]) {
    const h = vm.newFunction(name, f);
    vm.setProp(host, name, h);
    h.dispose();
}
vm.setProp(vm.global, "__trailhost", host);
host.dispose();
const p = vm.evalCode(js, "component.js", EvalFlags.TYPE_MODULE);
vm.executePendingJobs();
const ns = (await vm.resolvePromise(p)).value;
vm.setProp(vm.global, "__c", ns.getProp("default"));

const N = 20000;
const cases = [
    ["GET /hello", 0, `{ method: "GET", url: "/hello", path: "/hello", query: "", params: {}, headers: [["host", "x"]], body: new Uint8Array(0) }`],
    ["GET /greet/Alice", 1, `{ method: "GET", url: "/greet/Alice", path: "/greet/Alice", query: "", params: { name: "Alice" }, headers: [["host", "x"]], body: new Uint8Array(0) }`],
    ["POST /json", 2, `{ method: "POST", url: "/json", path: "/json", query: "", params: {}, headers: [["host", "x"]], body: __body }`],
];
vm.evalCode(`globalThis.__body = new Uint8Array(${JSON.stringify([...enc.encode('{"message":"test"}')])})`).dispose();
for (const [name, index, req] of cases) {
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const us = vm.evalCode(`(() => {
        const mk = () => (${req});
        for (let i = 0; i < 5000; i++) __c.dispatch(${index}, mk());
        const t0 = performance.now();
        for (let i = 0; i < ${N}; i++) __c.dispatch(${index}, mk());
        const t1 = performance.now();
        for (let i = 0; i < ${N}; i++) mk();
        const t2 = performance.now();
        return ((t1 - t0) - (t2 - t1)) * 1000 / ${N};
    })()`).consume((h) => h.toNumber());
    best = Math.min(best, us);
  }
  console.log(`${name.padEnd(18)} ${best.toFixed(2)} µs per dispatch (SDK + handler, request object excluded; best of 3)`);
}
