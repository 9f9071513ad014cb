// Builds a trail component: bundles the project's entry (index.ts or src/index.ts) with esbuild
// into one ES module and appends it, its source map and the engine's name to the pinned engine
// module (quickjs-wasi's quickjs.wasm) as custom sections (docs/guest-abi.md, "The component file").
//
// DESIGN: the engine module is copied byte for byte and the sections are appended at its end,
// so the host can identify the engine by hashing the module without custom sections. The output
// is written to a temporary file in the same directory and renamed over dist/component.wasm, so
// a server watching the file never loads half of it; identical output is not rewritten, so a
// save without changes does not make the server reload.
//
// `trailbase-wasm` imports resolve to the SDK doing the build (this package), whichever copy the
// project has installed, so the runtime and the build always agree.

import * as esbuild from "esbuild";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const SDK_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SDK_PKG = JSON.parse(readFileSync(path.join(SDK_ROOT, "package.json"), "utf8"));

export const SECTION_JS = "trailbase.js";
export const SECTION_ENGINE = "trailbase.engine";
export const SECTION_MAP = "trailbase.map";

/** Entry files tried in order, relative to the project directory. */
export const ENTRY_CANDIDATES = ["index.ts", "src/index.ts", "index.js", "src/index.js"];

/** The pinned engine: its module bytes and its name, e.g. "quickjs-wasi 3.6.2". */
export function loadEngine() {
    const pkg = JSON.parse(readFileSync(require.resolve("quickjs-wasi/package.json"), "utf8"));
    const wasm = readFileSync(require.resolve("quickjs-wasi/quickjs.wasm"));
    if (wasm.length < 8 || wasm.readUInt32LE(0) !== 0x6d736100 || wasm.readUInt32LE(4) !== 1) {
        throw new Error(`${require.resolve("quickjs-wasi/quickjs.wasm")} is not a WebAssembly module`);
    }
    return { name: `${pkg.name} ${pkg.version}`, wasm };
}

/** The project's entry file (absolute), and a warning when the choice is ambiguous. */
export function findEntry(dir) {
    const found = ENTRY_CANDIDATES.filter((f) => existsSync(path.join(dir, f)));
    if (found.length === 0) return { entry: null, warning: null };
    const warning =
        found.includes("index.ts") && found.includes("src/index.ts")
            ? "both index.ts and src/index.ts exist; building index.ts"
            : null;
    return { entry: path.join(dir, found[0]), warning };
}

function uleb(n) {
    const out = [];
    do {
        let b = n & 0x7f;
        n >>>= 7;
        if (n !== 0) b |= 0x80;
        out.push(b);
    } while (n !== 0);
    return Buffer.from(out);
}

/** A custom section (id 0): size, name, payload. */
export function customSection(name, payload) {
    const nameBytes = Buffer.from(name, "utf8");
    const data = typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload);
    const body = Buffer.concat([uleb(nameBytes.length), nameBytes, data]);
    return Buffer.concat([Buffer.from([0]), uleb(body.length), body]);
}

/** The custom sections of a module, in order: [{ name, data }]. Throws on a malformed module. */
export function readCustomSections(bytes) {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.length < 8 || buf.readUInt32LE(0) !== 0x6d736100) throw new Error("not a WebAssembly module");
    const readU32 = (pos) => {
        let result = 0;
        let shift = 0;
        for (;;) {
            if (pos.at >= buf.length) throw new Error("truncated module");
            const b = buf[pos.at++];
            result += (b & 0x7f) * 2 ** shift;
            if ((b & 0x80) === 0) return result;
            shift += 7;
            if (shift > 28) throw new Error("bad LEB128");
        }
    };
    const sections = [];
    const pos = { at: 8 };
    while (pos.at < buf.length) {
        const id = buf[pos.at++];
        const size = readU32(pos);
        const end = pos.at + size;
        if (end > buf.length) throw new Error("section runs past the end of the module");
        if (id === 0) {
            const nameLen = readU32(pos);
            const name = buf.subarray(pos.at, pos.at + nameLen).toString("utf8");
            sections.push({ name, data: buf.subarray(pos.at + nameLen, end) });
        }
        pos.at = end;
    }
    return sections;
}

/** Resolves `trailbase-wasm` and its subpaths to this package's own files. */
function sdkPlugin() {
    return {
        name: "trailbase-wasm",
        setup(build) {
            build.onResolve({ filter: /^trailbase-wasm(\/[^/]+)?$/ }, (args) => {
                const sub = args.path === "trailbase-wasm" ? "." : "." + args.path.slice("trailbase-wasm".length);
                const exp = SDK_PKG.exports[sub];
                const target = exp && (typeof exp === "string" ? exp : exp.default);
                if (!target || target.endsWith(".json")) {
                    return { errors: [{ text: `"${args.path}" is not an entry point of trailbase-wasm (${Object.keys(SDK_PKG.exports).filter((k) => !k.endsWith(".json")).map((k) => "trailbase-wasm" + k.slice(1)).join(", ")})` }] };
                }
                return { path: path.join(SDK_ROOT, target) };
            });
        },
    };
}

function esbuildOptions(dir, entry, minify) {
    return {
        absWorkingDir: dir,
        entryPoints: [entry],
        bundle: true,
        format: "esm",
        platform: "neutral",
        mainFields: ["module", "main"],
        target: "es2023",
        // The output is never written by esbuild; its name sets the source map's relative paths,
        // so that stack traces name files relative to the project ("src/index.ts").
        outfile: path.join(dir, "component.js"),
        write: false,
        sourcemap: "external",
        sourcesContent: false,
        minify,
        charset: "utf8",
        legalComments: "none",
        metafile: true,
        logLevel: "silent",
        plugins: [sdkPlugin()],
    };
}

/** `file:line:col: message`, the source line and a caret, then notes. */
export function formatMessage(msg, kind = "error") {
    const lines = [];
    const loc = msg.location;
    const where = loc ? `${loc.file}:${loc.line}:${loc.column + 1}: ` : "";
    lines.push(`${where}${kind}: ${msg.text}`);
    if (loc && loc.lineText) {
        lines.push(`    ${loc.lineText}`);
        lines.push(`    ${" ".repeat(loc.column)}^${"~".repeat(Math.max(0, (loc.length || 1) - 1))}`);
    }
    for (const note of msg.notes || []) {
        const nloc = note.location;
        lines.push(`  ${nloc ? `${nloc.file}:${nloc.line}:${nloc.column + 1}: ` : ""}note: ${note.text}`);
    }
    return lines.join("\n");
}

function errorsOf(e) {
    if (e && Array.isArray(e.errors) && e.errors.length > 0) return e.errors;
    return [{ text: e instanceof Error ? e.message : String(e) }];
}

/** Assembles the component from an esbuild result; returns its bytes and the JS size. */
function assemble(result, engine) {
    let js = null;
    let map = null;
    for (const f of result.outputFiles) {
        if (f.path.endsWith(".map")) map = f.text;
        else if (f.path.endsWith(".js")) js = f.text;
    }
    if (js === null) throw new Error("esbuild produced no JavaScript");
    const parts = [engine.wasm, customSection(SECTION_JS, js), customSection(SECTION_ENGINE, engine.name)];
    if (map !== null) parts.push(customSection(SECTION_MAP, map));
    return { bytes: Buffer.concat(parts), jsBytes: Buffer.byteLength(js) };
}

/** Writes `bytes` to `out` atomically; false when `out` already holds exactly these bytes. */
export function writeAtomically(out, bytes) {
    mkdirSync(path.dirname(out), { recursive: true });
    try {
        if (readFileSync(out).equals(bytes)) return false;
    } catch {
        // Missing or unreadable: write it.
    }
    const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.tmp`);
    try {
        writeFileSync(tmp, bytes);
        renameSync(tmp, out);
    } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
    }
    return true;
}

function hasDefaultExport(result) {
    for (const out of Object.values(result.metafile?.outputs ?? {})) {
        if (out.entryPoint) return out.exports.includes("default") || out.exports.includes("incomingHandler");
    }
    return true;
}

/**
 * Resolves the options of a build: { dir, entry, out, minify } with defaults
 * entry = findEntry(dir), out = dir/dist/component.wasm.
 */
export function resolveOptions(opts = {}) {
    const dir = path.resolve(opts.dir ?? ".");
    let entry = opts.entry ? path.resolve(dir, opts.entry) : null;
    let warning = null;
    if (!entry) {
        ({ entry, warning } = findEntry(dir));
        if (!entry) throw new Error(`no entry file in ${dir}: expected one of ${ENTRY_CANDIDATES.join(", ")}`);
    } else if (!existsSync(entry)) {
        throw new Error(`entry file ${entry} does not exist`);
    }
    const out = path.resolve(dir, opts.out ?? "dist/component.wasm");
    return { dir, entry, out, minify: !!opts.minify, warning };
}

/**
 * Builds once. Resolves to { ok, errors: [text], warnings: [text], out, written, size, jsBytes,
 * ms }; never throws for errors in the user's code (they are in `errors`, formatted).
 */
export async function buildComponent(opts = {}) {
    const t0 = performance.now();
    let o;
    try {
        o = resolveOptions(opts);
    } catch (e) {
        return { ok: false, errors: [`error: ${e.message}`], warnings: [] };
    }
    const engine = opts.engine ?? loadEngine();
    let result;
    try {
        result = await esbuild.build(esbuildOptions(o.dir, o.entry, o.minify));
    } catch (e) {
        return { ok: false, errors: errorsOf(e).map((m) => formatMessage(m)), warnings: [] };
    }
    try {
        return finish(o, engine, result, t0);
    } catch (e) {
        return { ok: false, errors: [`error: ${e.message}`], warnings: [] };
    }
}

function finish(o, engine, result, t0) {
    const warnings = result.warnings.map((m) => formatMessage(m, "warning"));
    if (o.warning) warnings.push(`warning: ${o.warning}`);
    if (!hasDefaultExport(result)) {
        warnings.push(
            `warning: ${path.relative(o.dir, o.entry)} has no default export; trail loads the component's \`export default defineConfig({...})\` (or \`export const { initEndpoint, incomingHandler, sqliteFunctionEndpoint } = defineConfig({...})\`)`,
        );
    }
    const { bytes, jsBytes } = assemble(result, engine);
    const written = writeAtomically(o.out, bytes);
    return {
        ok: true,
        errors: [],
        warnings,
        entry: o.entry,
        out: o.out,
        written,
        size: bytes.length,
        jsBytes,
        ms: Math.round(performance.now() - t0),
    };
}

/**
 * Builds, then rebuilds whenever an input changes, until the returned `stop()` is called.
 * `onBuild(report)` gets the same report as buildComponent() after every build, failed or not.
 */
export async function watchComponent(opts, onBuild) {
    const o = resolveOptions(opts);
    const engine = opts.engine ?? loadEngine();
    let t0 = performance.now();
    const reporter = {
        name: "trailbase-component",
        setup(build) {
            build.onStart(() => {
                t0 = performance.now();
            });
            build.onEnd((result) => {
                if (result.errors.length > 0) {
                    onBuild({ ok: false, errors: result.errors.map((m) => formatMessage(m)), warnings: [] });
                    return;
                }
                try {
                    onBuild(finish(o, engine, result, t0));
                } catch (e) {
                    onBuild({ ok: false, errors: [`error: ${e.message}`], warnings: [] });
                }
            });
        },
    };
    const options = esbuildOptions(o.dir, o.entry, o.minify);
    options.plugins.push(reporter);
    const ctx = await esbuild.context(options);
    await ctx.watch();
    return { stop: () => ctx.dispose(), options: o };
}

export const SDK_VERSION = SDK_PKG.version;
