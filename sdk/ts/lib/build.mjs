// Builds a trail component: checks the project's types with the pinned TypeScript compiler,
// bundles its entry (index.ts or src/index.ts) with esbuild into one ES module and appends it, its
// source map and the engine's name to the pinned engine module (quickjs-wasi's quickjs.wasm) as
// custom sections (docs/guest-abi.md, "The component file").
//
// DESIGN: the engine module is copied byte for byte and the sections are appended at its end,
// so the host can identify the engine by hashing the module without custom sections. The output
// is written to a temporary file in the same directory and renamed over dist/component.wasm, so
// a server watching the file never loads half of it; identical output is not rewritten, so a
// save without changes does not make the server reload. A type error fails the build before
// anything is written, so the last component that built keeps serving.
//
// The type check runs beside the bundling, as `tsc --noEmit` over the project's tsconfig.json
// would (a project without one is bundled unchecked), with the native compiler of the pinned
// `typescript` package started directly. It is incremental (its build info lives in
// node_modules/.cache/trailbase-wasm), and is not run at all when, since the last check that
// passed, no file of its program changed, no source file came to or left a directory holding
// one, and tsconfig.json, package.json and package-lock.json stayed as they were.
//
// `trailbase-wasm` imports resolve to the SDK doing the build (this package), whichever copy the
// project has installed, so the runtime and the build always agree; a project without
// node_modules/trailbase-wasm is type-checked against this package's declarations too.
//
// Types are JSDoc, checked by the SDK's `npm run check` (tsconfig.lib.json).

// @ts-check

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, watch, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);

// esbuild is loaded when a build needs it, after the type check has started: the compiler runs
// while Node reads esbuild's JavaScript.
/** @type {typeof import("esbuild") | null} */
let esbuildModule = null;
const loadEsbuild = async () => (esbuildModule ??= await import("esbuild"));
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

/**
 * The project's entry file (absolute), and a warning when the choice is ambiguous.
 * @param {string} dir
 * @returns {{ entry: string | null, warning: string | null }}
 */
export function findEntry(dir) {
    const found = ENTRY_CANDIDATES.filter((f) => existsSync(path.join(dir, f)));
    if (found.length === 0) return { entry: null, warning: null };
    const warning =
        found.includes("index.ts") && found.includes("src/index.ts")
            ? "both index.ts and src/index.ts exist; building index.ts"
            : null;
    return { entry: path.join(dir, /** @type {string} */ (found[0])), warning };
}

/** @param {number} n */
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

/**
 * A custom section (id 0): size, name, payload.
 * @param {string} name
 * @param {string | Uint8Array} payload
 */
export function customSection(name, payload) {
    const nameBytes = Buffer.from(name, "utf8");
    const data = typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload);
    const body = Buffer.concat([uleb(nameBytes.length), nameBytes, data]);
    return Buffer.concat([Buffer.from([0]), uleb(body.length), body]);
}

/**
 * The custom sections of a module, in order: [{ name, data }]. Throws on a malformed module.
 * @param {Uint8Array} bytes
 * @returns {{ name: string, data: Buffer }[]}
 */
export function readCustomSections(bytes) {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.length < 8 || buf.readUInt32LE(0) !== 0x6d736100) throw new Error("not a WebAssembly module");
    const readU32 = (/** @type {{ at: number }} */ pos) => {
        let result = 0;
        let shift = 0;
        for (;;) {
            if (pos.at >= buf.length) throw new Error("truncated module");
            const b = /** @type {number} */ (buf[pos.at++]);
            result += (b & 0x7f) * 2 ** shift;
            if ((b & 0x80) === 0) return result;
            shift += 7;
            if (shift > 28) throw new Error("bad LEB128");
        }
    };
    /** @type {{ name: string, data: Buffer }[]} */
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

/**
 * Resolves `trailbase-wasm` and its subpaths to this package's own files.
 * @returns {import("esbuild").Plugin}
 */
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

/**
 * @param {string} dir
 * @param {string} entry
 * @param {boolean} minify
 * @returns {import("esbuild").BuildOptions & { write: false, metafile: true, plugins: import("esbuild").Plugin[] }}
 */
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

/**
 * `file:line:col: message`, the source line and a caret, then notes.
 * @param {Pick<import("esbuild").Message, "text"> & Partial<import("esbuild").Message>} msg
 */
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

/**
 * @param {unknown} e
 * @returns {Pick<import("esbuild").Message, "text">[]}
 */
function errorsOf(e) {
    if (e && typeof e === "object" && "errors" in e && Array.isArray(e.errors) && e.errors.length > 0) return e.errors;
    return [{ text: e instanceof Error ? e.message : String(e) }];
}

/** @param {unknown} e */
function messageOf(e) {
    return e instanceof Error ? e.message : String(e);
}

// ---- the type check ----

/** Entries in these languages are type-checked; JavaScript ones are bundled as they are. */
const TS_ENTRY = /\.(ts|mts|cts|tsx)$/;

/** @typedef {{ cmd: string, args: string[], id: string }} TscCommand */
/** @type {TscCommand | null} */
let tscMemo = null;

/**
 * How to run the pinned TypeScript compiler: { cmd, args, id }. The native executable of the
 * `typescript` package (its platform package) when present, else its Node launcher.
 * @returns {TscCommand}
 */
export function tscCommand() {
    if (tscMemo) return tscMemo;
    const tsPkg = require.resolve("typescript/package.json");
    const version = JSON.parse(readFileSync(tsPkg, "utf8")).version;
    try {
        const native = createRequire(tsPkg).resolve(`@typescript/typescript-${process.platform}-${process.arch}/package.json`);
        const exe = path.join(path.dirname(native), "lib", process.platform === "win32" ? "tsc.exe" : "tsc");
        if (existsSync(exe)) tscMemo = { cmd: exe, args: [], id: `typescript ${version} ${exe}` };
    } catch {
        // No platform package: the launcher finds the compiler or says why it cannot.
    }
    tscMemo ??= { cmd: process.execPath, args: [path.join(path.dirname(tsPkg), "bin/tsc")], id: `typescript ${version}` };
    return tscMemo;
}

/**
 * Where the check of the project in dir keeps its build info and its record of the last check
 * that passed: node_modules/.cache/trailbase-wasm, or for a project without node_modules (built
 * by a copy of the SDK elsewhere) a directory of its own under the system's temporary one.
 */
export function checkCacheDir(/** @type {string} */ dir) {
    if (existsSync(path.join(dir, "node_modules"))) return path.join(dir, "node_modules/.cache/trailbase-wasm");
    const id = createHash("sha256").update(path.resolve(dir)).digest("hex").slice(0, 16);
    return path.join(tmpdir(), "trailbase-wasm-check", id);
}

/**
 * The tsconfig the check runs: the project's, extended with the entry (so that it is checked
 * whatever `include` says) and, when the project has not installed trailbase-wasm, with paths
 * to this package's declarations (as the bundler resolves its imports to this package).
 */
/**
 * @param {BuildOptions} o
 * @param {string} cache
 */
function checkConfig(o, cache) {
    /** @type {{ extends: string, files: string[], compilerOptions?: { paths: Record<string, string[]> } }} */
    const config = { extends: path.join(o.dir, "tsconfig.json"), files: [o.entry] };
    if (!existsSync(path.join(o.dir, "node_modules/trailbase-wasm/package.json"))) {
        /** @type {Record<string, string[]>} */
        const paths = {};
        for (const [sub, exp] of /** @type {[string, any][]} */ (Object.entries(SDK_PKG.exports))) {
            if (typeof exp !== "object" || !exp.types) continue;
            paths[sub === "." ? "trailbase-wasm" : "trailbase-wasm" + sub.slice(1)] = [path.join(SDK_ROOT, exp.types)];
        }
        config.compilerOptions = { paths };
    }
    const file = path.join(cache, "tsconfig.json");
    const text = JSON.stringify(config, null, 2) + "\n";
    let old = null;
    try {
        old = readFileSync(file, "utf8");
    } catch {
        // First check of this project.
    }
    if (old !== text) writeFileSync(file, text);
    return { file, text };
}

/** @param {string} p */
function statKey(p) {
    try {
        const st = statSync(p);
        return `${st.mtimeMs}:${st.size}`;
    } catch {
        return "missing";
    }
}

/** The source files a directory holds (a new one may join the program), not its other files. */
function dirKey(/** @type {string} */ p) {
    try {
        return readdirSync(p).filter((n) => /\.([cm]?[jt]sx?|json)$/.test(n)).sort().join("/");
    } catch {
        return "missing";
    }
}

/**
 * The record of a check: every file of the program and every project directory holding one.
 * @param {BuildOptions} o
 * @param {string[]} files
 * @param {string} id
 */
function stampOf(o, files, id) {
    const own = files.filter((f) => !f.split(path.sep).includes("node_modules"));
    const dirs = [...new Set([o.dir, ...own.map((f) => path.dirname(f))])];
    const extra = ["tsconfig.json", "package.json", "package-lock.json"].map((f) => path.join(o.dir, f));
    const entries = [...files, ...extra].map((p) => [p, statKey(p)]);
    return { id, entry: o.entry, entries, dirs: dirs.map((d) => [d, dirKey(d)]) };
}

/**
 * @param {string} file
 * @param {BuildOptions} o
 * @param {string} id
 */
function stampFresh(file, o, id) {
    let stamp;
    try {
        stamp = JSON.parse(readFileSync(file, "utf8"));
    } catch {
        return false;
    }
    if (stamp.id !== id || stamp.entry !== o.entry || !Array.isArray(stamp.entries) || !Array.isArray(stamp.dirs)) return false;
    /** @type {[string, string][]} */
    const entries = stamp.entries;
    /** @type {[string, string][]} */
    const dirs = stamp.dirs;
    return entries.every(([p, key]) => statKey(p) === key) && dirs.every(([d, key]) => dirKey(d) === key);
}

const TS_DIAG = /^(.+?)\((\d+),(\d+)\): (error|warning|message) (TS\d+): (.*)$/;
const TS_GLOBAL_DIAG = /^(error|warning|message) (TS\d+): (.*)$/;

/**
 * @typedef {{ file: string | null, line?: number, column?: number, kind: string, code: string,
 *     text: string, more: string[] }} TsDiagnostic
 */

/**
 * tsc's `--pretty false` output as diagnostics and the files it listed (absolute paths).
 * @param {string} text
 */
export function parseTscOutput(text) {
    /** @type {TsDiagnostic[]} */
    const diags = [];
    /** @type {string[]} */
    const files = [];
    for (const line of text.split(/\r?\n/)) {
        let m;
        if ((m = TS_DIAG.exec(line))) {
            const [, file = "", line = "", column = "", kind = "", code = "", msg = ""] = m;
            diags.push({ file, line: +line, column: +column, kind, code, text: msg, more: [] });
        } else if ((m = TS_GLOBAL_DIAG.exec(line))) {
            const [, kind = "", code = "", msg = ""] = m;
            diags.push({ file: null, kind, code, text: msg, more: [] });
        } else if (/^\s/.test(line) && line.trim() !== "" && diags.length > 0) {
            diags[diags.length - 1]?.more.push(line);
        } else if (path.isAbsolute(line)) {
            files.push(line);
        }
    }
    return { diags, files };
}

/**
 * `file:line:col: error TS2322: message`, its chained lines, the source line and a caret.
 * @param {string} dir
 * @param {TsDiagnostic} d
 * @param {Map<string, string[] | null>} sources
 */
export function formatTsDiagnostic(dir, d, sources = new Map()) {
    const head = d.file ? `${d.file}:${d.line}:${d.column}: ` : "";
    const lines = [`${head}${d.kind} ${d.code}: ${d.text}`, ...d.more];
    if (d.file) {
        const abs = path.resolve(dir, d.file);
        if (!sources.has(abs)) {
            /** @type {string[] | null} */
            let text = null;
            try {
                text = readFileSync(abs, "utf8").split(/\r?\n/);
            } catch {
                // Not readable: the message goes without its source line.
            }
            sources.set(abs, text);
        }
        const src = sources.get(abs)?.[(d.line ?? 1) - 1];
        if (src !== undefined) {
            lines.push(`    ${src}`);
            lines.push(`    ${" ".repeat(Math.max(0, (d.column ?? 1) - 1))}^`);
        }
    }
    return lines.join("\n");
}

/**
 * @typedef {{ ok: boolean, errors: string[], state: "checked" | "unchanged" | "off", ms: number,
 *     files: string[] }} CheckResult
 */

/**
 * Checks the project's types. Resolves to { ok, errors: [text], state, ms } with state "checked",
 * "unchanged" (nothing changed since the last check that passed: not run) or "off" (a JavaScript
 * entry, no tsconfig.json, or check: false).
 * @param {BuildOptions} o
 * @returns {Promise<CheckResult>}
 */
export async function checkTypes(o) {
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    if (!o.check || !TS_ENTRY.test(o.entry) || !existsSync(path.join(o.dir, "tsconfig.json"))) {
        return { ok: true, errors: [], state: "off", ms: 0, files: [] };
    }
    let tsc;
    try {
        tsc = tscCommand();
    } catch (e) {
        return { ok: false, errors: [`error: cannot find the TypeScript compiler (the typescript package): ${messageOf(e)}`], state: "checked", ms: ms(), files: [] };
    }
    const cache = checkCacheDir(o.dir);
    const stampFile = path.join(cache, "passed.json");
    mkdirSync(cache, { recursive: true });
    const config = checkConfig(o, cache);
    // The compiler and the options it runs with (installing trailbase-wasm changes them).
    const id = `${tsc.id}\n${config.text}`;
    if (stampFresh(stampFile, o, id)) return { ok: true, errors: [], state: "unchanged", ms: ms(), files: [] };
    rmSync(stampFile, { force: true });
    const started = Date.now();
    const args = [...tsc.args, "-p", config.file, "--noEmit", "--incremental", "--tsBuildInfoFile",
        path.join(cache, "tsbuildinfo"), "--pretty", "false", "--listFiles"];
    /** @type {{ error: import("node:child_process").ExecFileException | null, out: string }} */
    const r = await new Promise((resolve) => {
        execFile(tsc.cmd, args, { cwd: o.dir, maxBuffer: 1 << 26, env: { ...process.env, NO_COLOR: "1" } }, (error, stdout, stderr) => {
            resolve({ error, out: stdout + stderr });
        });
    });
    const { diags, files } = parseTscOutput(r.out);
    const sources = new Map();
    const errors = diags.filter((d) => d.kind === "error").map((d) => formatTsDiagnostic(o.dir, d, sources));
    if (r.error && errors.length === 0) {
        const why = r.error.code === "ENOENT" ? `${tsc.cmd} not found` : r.out.trim() || r.error.message;
        errors.push(`error: the TypeScript compiler failed: ${why}`);
    }
    if (errors.length > 0) return { ok: false, errors, state: "checked", ms: ms(), files };
    // A file changed while the compiler ran may not be what it checked: no record then.
    const stamp = stampOf(o, files, id);
    const raced = stamp.entries.some(([, key]) => key !== "missing" && Number(key.split(":")[0]) >= started);
    if (!raced) writeFileSync(stampFile, JSON.stringify(stamp) + "\n");
    return { ok: true, errors: [], state: "checked", ms: ms(), files };
}

/** @typedef {{ name: string, wasm: Buffer }} Engine */

/**
 * Assembles the component from an esbuild result; returns its bytes and the JS size.
 * @param {import("esbuild").BuildResult} result
 * @param {Engine} engine
 */
function assemble(result, engine) {
    /** @type {string | null} */
    let js = null;
    /** @type {string | null} */
    let map = null;
    for (const f of result.outputFiles ?? []) {
        if (f.path.endsWith(".map")) map = f.text;
        else if (f.path.endsWith(".js")) js = f.text;
    }
    if (js === null) throw new Error("esbuild produced no JavaScript");
    const parts = [engine.wasm, customSection(SECTION_JS, js), customSection(SECTION_ENGINE, engine.name)];
    if (map !== null) parts.push(customSection(SECTION_MAP, map));
    return { bytes: Buffer.concat(parts), jsBytes: Buffer.byteLength(js) };
}

/**
 * Writes `bytes` to `out` atomically; false when `out` already holds exactly these bytes.
 * @param {string} out
 * @param {Buffer} bytes
 */
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

/** @param {import("esbuild").BuildResult} result */
function hasDefaultExport(result) {
    for (const out of Object.values(result.metafile?.outputs ?? {})) {
        if (out.entryPoint) return out.exports.includes("default") || out.exports.includes("incomingHandler");
    }
    return true;
}

/**
 * What a build is asked for; every field may be left out.
 * @typedef {{ dir?: string, entry?: string, out?: string, minify?: boolean, check?: boolean,
 *     engine?: Engine }} BuildRequest
 */
/**
 * A build's options, resolved.
 * @typedef {{ dir: string, entry: string, out: string, minify: boolean, check: boolean,
 *     warning: string | null }} BuildOptions
 */

/**
 * Resolves the options of a build: { dir, entry, out, minify, check } with defaults
 * entry = findEntry(dir), out = dir/dist/component.wasm, check = true (check: false skips the
 * type check).
 * @param {BuildRequest} opts
 * @returns {BuildOptions}
 */
export function resolveOptions(opts = {}) {
    const dir = path.resolve(opts.dir ?? ".");
    let entry = opts.entry ? path.resolve(dir, opts.entry) : null;
    /** @type {string | null} */
    let warning = null;
    if (!entry) {
        ({ entry, warning } = findEntry(dir));
        if (!entry) throw new Error(`no entry file in ${dir}: expected one of ${ENTRY_CANDIDATES.join(", ")}`);
    } else if (!existsSync(entry)) {
        throw new Error(`entry file ${entry} does not exist`);
    }
    const out = path.resolve(dir, opts.out ?? "dist/component.wasm");
    return { dir, entry, out, minify: !!opts.minify, check: opts.check !== false, warning };
}

/**
 * A build's report; on failure only ok, errors and warnings.
 * @typedef {{ ok: boolean, errors: string[], warnings: string[], entry?: string, out?: string,
 *     written?: boolean, size?: number, jsBytes?: number, ms?: number,
 *     check?: { state: string, ms: number } }} BuildReport
 */

/**
 * Builds once: type check and bundling side by side, then the component. Resolves to { ok,
 * errors: [text], warnings: [text], out, written, size, jsBytes, ms, check: { state, ms } };
 * never throws for errors in the user's code (they are in `errors`, formatted). On errors,
 * nothing is written.
 * @param {BuildRequest} opts
 * @returns {Promise<BuildReport>}
 */
export async function buildComponent(opts = {}) {
    const t0 = performance.now();
    /** @type {BuildOptions} */
    let o;
    try {
        o = resolveOptions(opts);
    } catch (e) {
        return { ok: false, errors: [`error: ${messageOf(e)}`], warnings: [] };
    }
    const engine = opts.engine ?? loadEngine();
    const checking = checkTypes(o);
    let result;
    try {
        const esbuild = await loadEsbuild();
        result = await esbuild.build(esbuildOptions(o.dir, o.entry, o.minify));
    } catch (e) {
        // A syntax error: the compiler would report it again, in other words.
        await checking;
        return { ok: false, errors: errorsOf(e).map((m) => formatMessage(m)), warnings: [] };
    }
    const check = await checking;
    if (!check.ok) return { ok: false, errors: check.errors, warnings: [] };
    try {
        return finish(o, engine, result, t0, check);
    } catch (e) {
        return { ok: false, errors: [`error: ${messageOf(e)}`], warnings: [] };
    }
}

/**
 * @param {BuildOptions} o
 * @param {Engine} engine
 * @param {import("esbuild").BuildResult} result
 * @param {number} t0
 * @param {CheckResult} check
 * @returns {BuildReport}
 */
function finish(o, engine, result, t0, check) {
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
        check: { state: check.state, ms: check.ms },
    };
}

/**
 * Builds, then rebuilds whenever an input changes, until the returned `stop()` is called.
 * `onBuild(report)` gets the same report as buildComponent() after every build, failed or not.
 * Besides the bundle's inputs (esbuild watches those), the files the type check read in the
 * project (outside node_modules) are watched too: a file imported only for its types is not part
 * of the bundle, but a change to it can break the build.
 * @param {BuildRequest} opts
 * @param {(report: BuildReport) => void} onBuild
 */
export async function watchComponent(opts, onBuild) {
    const o = resolveOptions(opts);
    const engine = opts.engine ?? loadEngine();
    let t0 = performance.now();
    /** @type {import("esbuild").BuildContext | null} */
    let ctx = null;
    let stopped = false;
    /** @type {Map<string, import("node:fs").FSWatcher>} */
    const typeWatchers = new Map();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let again = undefined;
    const watchTypeFiles = (/** @type {import("esbuild").BuildResult} */ result, /** @type {string[]} */ files) => {
        const bundled = new Set(Object.keys(result.metafile?.inputs ?? {}).map((f) => path.resolve(o.dir, f)));
        const wanted = new Set(files.filter((f) => !f.split(path.sep).includes("node_modules") && !bundled.has(f)));
        for (const [f, w] of typeWatchers) {
            if (!wanted.has(f)) {
                w.close();
                typeWatchers.delete(f);
            }
        }
        for (const f of wanted) {
            if (typeWatchers.has(f)) continue;
            try {
                const w = watch(f, () => {
                    clearTimeout(again);
                    again = setTimeout(() => {
                        if (!stopped) ctx?.rebuild().catch(() => {});
                    }, 30);
                });
                w.on("error", () => {});
                typeWatchers.set(f, w);
            } catch {
                // Gone already: the next check lists what is there.
            }
        }
    };
    /** @type {Promise<CheckResult>} */
    let checking = Promise.resolve({ ok: true, errors: [], state: "off", ms: 0, files: [] });
    /** @type {import("esbuild").Plugin} */
    const reporter = {
        name: "trailbase-component",
        setup(build) {
            build.onStart(() => {
                t0 = performance.now();
                // Checked while esbuild bundles, as in a single build.
                checking = checkTypes(o);
            });
            build.onEnd(async (result) => {
                const check = await checking;
                if (result.errors.length > 0) {
                    onBuild({ ok: false, errors: result.errors.map((m) => formatMessage(m)), warnings: [] });
                    return;
                }
                if (check.state === "checked" && !stopped) watchTypeFiles(result, check.files);
                if (!check.ok) {
                    onBuild({ ok: false, errors: check.errors, warnings: [] });
                    return;
                }
                try {
                    onBuild(finish(o, engine, result, t0, check));
                } catch (e) {
                    onBuild({ ok: false, errors: [`error: ${messageOf(e)}`], warnings: [] });
                }
            });
        },
    };
    const options = esbuildOptions(o.dir, o.entry, o.minify);
    options.plugins.push(reporter);
    const context = await (await loadEsbuild()).context(options);
    ctx = context;
    await context.watch();
    const stop = () => {
        stopped = true;
        clearTimeout(again);
        for (const w of typeWatchers.values()) w.close();
        typeWatchers.clear();
        return context.dispose();
    };
    return { stop, options: o };
}

export const SDK_VERSION = SDK_PKG.version;
