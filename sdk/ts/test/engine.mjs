// Loads a component's bundled code into the pinned engine (QuickJS-NG in WebAssembly, through
// quickjs-wasi's JavaScript API) with a __trailhost written in JavaScript, and calls it the way
// trail does (docs/guest-abi.md). For tests: the real engine, a scripted database.
import { EvalFlags, QuickJS } from "quickjs-wasi";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { readCustomSections } from "../lib/build.mjs";

const require = createRequire(import.meta.url);
const ENGINE = readFileSync(require.resolve("quickjs-wasi/quickjs.wasm"));
const enc = new TextEncoder();
const dec = new TextDecoder();

// Runs in the guest after the module: wraps calls so that the host sees plain results.
const HARNESS = `
globalThis.__call = async (what, ...args) => {
  const c = globalThis.__component;
  try {
    if (what === "manifest") return { ok: c.manifest() };
    if (what === "runJob") { await c.runJob(args[0]); return { ok: null }; }
    const r = c.dispatch(args[0], args[1]);
    const sync = !(r instanceof Promise);
    return { ok: await r, sync };
  } catch (e) {
    return { error: String(e && e.message), name: e && e.name, stack: String(e && e.stack) };
  }
};`;

/**
 * db(kind, sql, params) answers __trailhost.query/execute: returns rows / a count, or throws
 * (the guest's promise rejects with that message).
 */
export async function loadComponent(componentBytes, db = () => []) {
    const sections = Object.fromEntries(readCustomSections(componentBytes).map((s) => [s.name, s.data]));
    const code = dec.decode(sections["trailbase.js"]);
    const vm = await QuickJS.create({ wasm: ENGINE });
    const logs = [];
    const dbCalls = [];
    const hostObj = vm.newObject();
    const fn = (name, impl) => {
        const f = vm.newFunction(name, impl);
        vm.setProp(hostObj, name, f);
        f.dispose();
    };
    fn("log", (level, msg) => {
        logs.push([level.toNumber(), msg.toString()]);
        return vm.undefined;
    });
    for (const kind of ["query", "execute"]) {
        fn(kind, (sql, params) => {
            const s = sql.toString();
            const p = vm.dump(params);
            dbCalls.push([kind, s, p]);
            const d = vm.newPromise();
            setImmediate(() => {
                try {
                    const result = db(kind, s, p);
                    d.resolve(vm.hostToHandle(result));
                } catch (e) {
                    d.reject(vm.newError(e.message));
                }
                vm.executePendingJobs();
            });
            return d.handle;
        });
    }
    fn("encodeUtf8", (s) => vm.newUint8Array(enc.encode(s.toString())));
    fn("decodeUtf8", (b) => vm.newString(dec.decode(b.toUint8Array())));
    vm.setProp(vm.global, "__trailhost", hostObj);
    hostObj.dispose();

    const promise = vm.evalCode(code, "component.js", EvalFlags.TYPE_MODULE);
    vm.executePendingJobs();
    const loaded = await vm.resolvePromise(promise);
    promise.dispose();
    if ("error" in loaded) {
        const err = vm.dump(loaded.error);
        loaded.error.dispose();
        vm.dispose();
        throw new Error(`component failed to load: ${err && err.message}`);
    }
    const def = loaded.value.getProp("default");
    loaded.value.dispose();
    vm.setProp(vm.global, "__component", def);
    def.dispose();
    vm.evalCode(HARNESS).dispose();

    async function call(what, ...args) {
        const callFn = vm.global.getProp("__call");
        const handles = [vm.newString(what), ...args.map((a) => vm.hostToHandle(a))];
        const p = vm.callFunction(callFn, vm.undefined, ...handles);
        handles.forEach((h) => h.dispose());
        callFn.dispose();
        vm.executePendingJobs();
        const r = await vm.resolvePromise(p);
        p.dispose();
        const v = vm.dump(r.value);
        r.value.dispose();
        return v;
    }

    return {
        sections,
        logs,
        dbCalls,
        manifest: () => call("manifest"),
        dispatch: (index, request) => call("dispatch", index, request),
        runJob: (name) => call("runJob", name),
        dispose: () => vm.dispose(),
    };
}

export function request(over = {}) {
    return { method: "GET", url: "/", path: "/", query: "", params: {}, headers: [], body: new Uint8Array(0), ...over };
}
