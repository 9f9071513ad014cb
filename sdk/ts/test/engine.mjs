// Loads a component's bundled code into the pinned engine (QuickJS-NG in WebAssembly, through
// quickjs-wasi's JavaScript API) with a __trailhost written in JavaScript, and calls it the way
// trail does (docs/guest-abi.md). For tests: the real engine, a scripted database.
import { EvalFlags, QuickJS } from "quickjs-wasi";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { readCustomSections } from "../lib/build.mjs";

const require = createRequire(import.meta.url);
/** trail's prelude of standard globals (console, timers, fetch, ...), when this SDK is in trail's tree. */
export const PRELUDE = new URL("../../../src/guest/prelude.js", import.meta.url);
export const HAVE_PRELUDE = existsSync(PRELUDE);
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
    // as trail does: a string, a Uint8Array or an HttpResponse is the response; anything else,
    // or a rejection, goes through complete()
    let ok, rejected = false;
    try {
      ok = await r;
    } catch (e) {
      ok = e;
      rejected = true;
    }
    if (rejected || !(typeof ok === "string" || ok instanceof Uint8Array || ok instanceof c.responseClass))
      ok = c.complete(ok, rejected);
    // a bare string or Uint8Array is a 200 with the default content type
    if (typeof ok === "string") ok = { status: 200, headers: [["content-type", "text/plain; charset=utf-8"]], body: ok };
    else if (ok instanceof Uint8Array) ok = { status: 200, headers: [["content-type", "application/octet-stream"]], body: ok };
    return { ok, sync };
  } catch (e) {
    return { error: String(e && e.message), name: e && e.name, stack: String(e && e.stack) };
  }
};`;

/**
 * db(kind, sql, params) answers __trailhost.query/execute: returns rows / a count, or throws
 * (the guest's promise rejects with that message). With `prelude`, trail's prelude runs first
 * (as the host does), its timers driven by Node's and `console` recorded in `logs`.
 */
export async function loadComponent(componentBytes, db = () => [], { prelude = false } = {}) {
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
    fn("decodeUtf8", (b, fatal) => {
        try {
            return vm.newString(new TextDecoder("utf-8", { fatal: fatal !== undefined && fatal.toBoolean() }).decode(b.toUint8Array()));
        } catch {
            return vm.null;
        }
    });
    const timers = new Map();
    let hooks = null;
    fn("randomBytes", (n) => vm.newUint8Array(randomBytes(n.toNumber())));
    fn("timerStart", (id, ms, repeat) => {
        const key = id.toNumber();
        // the argument handles are only valid during this call
        const rep = repeat.toBoolean();
        const fire = () => {
            if (!rep) timers.delete(key);
            const fireTimer = hooks.getProp("fireTimer");
            const arg = vm.newNumber(key);
            vm.callFunction(fireTimer, hooks, arg).dispose();
            arg.dispose();
            fireTimer.dispose();
            vm.executePendingJobs();
        };
        const t = rep ? setInterval(fire, ms.toNumber()) : setTimeout(fire, ms.toNumber());
        timers.set(key, t);
        return vm.undefined;
    });
    fn("timerCancel", (id) => {
        clearTimeout(timers.get(id.toNumber()));
        timers.delete(id.toNumber());
        return vm.undefined;
    });
    fn("fetch", () => {
        const d = vm.newPromise();
        d.reject(vm.newError("no network in this test"));
        return d.handle;
    });
    vm.setProp(vm.global, "__trailhost", hostObj);
    hostObj.dispose();
    if (prelude) hooks = vm.evalCode(readFileSync(PRELUDE, "utf8"), "prelude.js");

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
        /** typeof globalThis[name] in the guest. */
        typeOf: (name) => vm.evalCode(`typeof globalThis[${JSON.stringify(name)}]`).consume((h) => h.toString()),
        dispose: () => {
            for (const t of timers.values()) clearTimeout(t);
            hooks?.dispose();
            vm.dispose();
        },
    };
}

export function request(over = {}) {
    return { method: "GET", url: "/", path: "/", query: "", params: {}, headers: [], body: new Uint8Array(0), ...over };
}
