// `trailbase-wasm build`: the component file (checked with wabt's wasm-objdump and
// wasm-validate), build errors as file:line:col, the type check (errors as tsc's, nothing written,
// not run again when nothing changed), atomic and idempotent output, --watch, and the
// scaffolded project's `npm install && npm run build` from the packed SDK (offline: from the
// npm cache that tools/deps.sh filled; tests talk to no server but 127.0.0.1).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { buildComponent, checkCacheDir, loadEngine, readCustomSections } from "../lib/build.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin/trailbase-wasm.mjs");
const TEMPLATE = path.join(ROOT, "../template");
const TMP = mkdtempSync(path.join(tmpdir(), "trail-sdk-build-"));
const projects = [];
after(() => {
    // The type check's caches of projects without node_modules live outside them.
    for (const dir of projects) rmSync(checkCacheDir(dir), { recursive: true, force: true });
    rmSync(TMP, { recursive: true, force: true });
});

function run(cmd, args, opts = {}) {
    return new Promise((resolve) => {
        execFile(cmd, args, { maxBuffer: 1 << 24, ...opts }, (error, stdout, stderr) => {
            resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
        });
    });
}

let n = 0;
/** A fresh project directory holding `files` ({ relative path: content }). */
function project(files) {
    const dir = path.join(TMP, `p${++n}`);
    projects.push(dir);
    for (const [f, content] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        writeFileSync(path.join(dir, f), content);
    }
    return dir;
}

const HELLO = `import { defineConfig } from "trailbase-wasm";
import { HttpHandler } from "trailbase-wasm/http";
export default defineConfig({ httpHandlers: [HttpHandler.get("/hello", () => "Hello")] });
`;

describe("the component file", () => {
    test("the template builds into a valid module with the three sections", async () => {
        const dir = path.join(TMP, "template");
        projects.push(dir);
        cpSync(TEMPLATE, dir, { recursive: true, filter: (f) => !/node_modules|\/dist$/.test(f) });
        const r = await run(process.execPath, [BIN, "build"], { cwd: dir });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^trailbase-wasm: index\.ts -> dist\/component\.wasm \(\d+ KiB, JS \d+ KiB\) in \d+ ms, types checked in \d+ ms$/m);
        assert.doesNotMatch(r.stderr, /warning/);
        const out = path.join(dir, "dist/component.wasm");
        const v = await run("wasm-validate", [out]);
        assert.equal(v.code, 0, v.stderr);
        const h = await run("wasm-objdump", ["-h", out]);
        assert.equal(h.code, 0, h.stderr);
        const customs = [...h.stdout.matchAll(/^ *Custom [^\n]*"([^"\n]+)"$/gm)].map((m) => m[1]);
        assert.deepEqual(customs.slice(-3), ["trailbase.js", "trailbase.engine", "trailbase.map"]);
        assert.match(h.stdout, /Code start=/);

        // The engine's bytes come first, unchanged: the host hashes them to identify the engine.
        const bytes = readFileSync(out);
        const engine = loadEngine();
        assert.equal(engine.name, "quickjs-wasi 3.6.2");
        assert.ok(bytes.subarray(0, engine.wasm.length).equals(engine.wasm));
        const sections = Object.fromEntries(readCustomSections(bytes).map((s) => [s.name, s.data.toString()]));
        assert.equal(sections["trailbase.engine"], "quickjs-wasi 3.6.2");
        assert.match(sections["trailbase.js"], /Hello from WASM!/);
        assert.match(sections["trailbase.js"], /^export \{/m);
        assert.deepEqual(JSON.parse(sections["trailbase.map"]).sources.at(-1), "index.ts");
        assert.deepEqual(readdirSync(path.join(dir, "dist")), ["component.wasm"]);
    });

    test("every code sample of the reference builds", async () => {
        const refDir = path.join(ROOT, "test/reference");
        projects.push(refDir);
        const complete = ["quick-start.ts", "request-methods.ts", "database-access.ts", "background-jobs.ts", "vector-search.ts"];
        for (const f of readdirSync(refDir).filter((f) => f.endsWith(".ts"))) {
            const out = path.join(TMP, "ref", f.replace(/\.ts$/, ".wasm"));
            const r = await buildComponent({ dir: refDir, entry: f, out });
            assert.ok(r.ok, `${f}: ${r.errors.join("\n")}`);
            const noDefault = r.warnings.some((w) => /has no default export/.test(w));
            assert.equal(noDefault, !complete.includes(f), `${f}: ${r.warnings.join("\n")}`);
            assert.ok(statSync(out).size > 600000);
        }
    });

    test("index.ts is preferred to src/index.ts, with a warning", async () => {
        const dir = project({ "index.ts": HELLO.replace('"Hello"', '"root"'), "src/index.ts": HELLO });
        const r = await run(process.execPath, [BIN, "build"], { cwd: dir });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /warning: both index.ts and src\/index.ts exist; building index.ts/);
        assert.match(readFileSync(path.join(dir, "dist/component.wasm")).toString("latin1"), /"root"/);
    });

    test("an unchanged build does not rewrite the file; no temporary file remains", async () => {
        const dir = project({ "src/index.ts": HELLO });
        const out = path.join(dir, "dist/component.wasm");
        assert.equal((await run(process.execPath, [BIN, "build"], { cwd: dir })).code, 0);
        const m1 = statSync(out).mtimeMs;
        await new Promise((r) => setTimeout(r, 20));
        const r = await run(process.execPath, [BIN, "build", "--dir", dir]);
        assert.equal(r.code, 0);
        assert.match(r.stdout, /unchanged/);
        assert.equal(statSync(out).mtimeMs, m1);
        assert.deepEqual(readdirSync(path.join(dir, "dist")), ["component.wasm"]);
    });
});

describe("build errors", () => {
    async function fails(files, pattern) {
        const dir = project(files);
        const r = await run(process.execPath, [BIN, "build"], { cwd: dir });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, pattern);
        assert.match(r.stderr, /build failed/);
        assert.ok(!existsSync(path.join(dir, "dist/component.wasm")));
        return r.stderr;
    }

    test("a TypeScript syntax error names file, line and column", async () => {
        const err = await fails(
            { "src/index.ts": 'import { defineConfig } from "trailbase-wasm";\n\nconst x: number = (1 + ;\n' },
            /^src\/index\.ts:3:24: error: Unexpected ";"$/m,
        );
        assert.match(err, /const x: number = \(1 \+ ;\n\s+\^/);
    });

    test("a missing file import", () =>
        fails({ "src/index.ts": HELLO + 'import { x } from "./missing";\nconsole.log(x);\n' }, /^src\/index\.ts:4:19: error: Could not resolve "\.\/missing"$/m));

    test("a missing named export", () =>
        fails(
            { "src/index.ts": 'import { Nope } from "trailbase-wasm/http";\nconsole.log(Nope);\n' },
            /^src\/index\.ts:1:10: error: No matching export in "[^"]*dist\/http\.js" for import "Nope"$/m,
        ));

    test("an unknown SDK entry point", () =>
        fails(
            { "index.ts": 'import "trailbase-wasm/nope";\n' },
            /^index\.ts:1:8: error: "trailbase-wasm\/nope" is not an entry point of trailbase-wasm \(trailbase-wasm, trailbase-wasm\/http, trailbase-wasm\/db, trailbase-wasm\/job, trailbase-wasm\/fs, trailbase-wasm\/kv, trailbase-wasm\/auth, trailbase-wasm\/records\)$/m,
        ));

    test("a Node.js module is not available in a component", () =>
        fails({ "index.ts": 'import { readFileSync } from "fs";\nconsole.log(readFileSync);\n' }, /^index\.ts:1:30: error: Could not resolve "fs"$/m));

    test("no entry file", () => fails({ "README.md": "x" }, /error: no entry file in .*: expected one of index\.ts, src\/index\.ts, index\.js, src\/index\.js/));

    test("an output that cannot be written", async () => {
        const dir = project({ "index.ts": HELLO, "dist/component.wasm/x": "a directory in the way" });
        const r = await run(process.execPath, [BIN, "build"], { cwd: dir });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^error: .*component\.wasm/m);
        assert.deepEqual(readdirSync(path.join(dir, "dist")), ["component.wasm"]);
    });

    test("usage errors exit 2, --help 0", async () => {
        assert.equal((await run(process.execPath, [BIN])).code, 2);
        assert.equal((await run(process.execPath, [BIN, "bundle"])).code, 2);
        assert.equal((await run(process.execPath, [BIN, "build", "--nope"])).code, 2);
        const h = await run(process.execPath, [BIN, "--help"]);
        assert.equal(h.code, 0);
        assert.match(h.stdout, /usage: trailbase-wasm build/);
    });
});

const TSCONFIG = readFileSync(path.join(TEMPLATE, "tsconfig.json"), "utf8");
const TYPE_ERROR = `import { defineConfig } from "trailbase-wasm";
import { HttpHandler, HttpRequest } from "trailbase-wasm/http";

export default defineConfig({
  httpHandlers: [
    HttpHandler.get("/greet/:name", (req: HttpRequest) => {
      const name: number = req.getPathParam("name");
      return \`Hello, \${name}!\`;
    }),
  ],
});
`;

describe("the type check", () => {
    test("a type error fails the build as tsc reports it; the last component stays", async () => {
        const dir = project({ "index.ts": HELLO, "tsconfig.json": TSCONFIG });
        const out = path.join(dir, "dist/component.wasm");
        const ok = await run(process.execPath, [BIN, "build"], { cwd: dir });
        assert.equal(ok.code, 0, ok.stderr);
        assert.match(ok.stdout, /types checked in \d+ ms/);
        const before = readFileSync(out);
        writeFileSync(path.join(dir, "index.ts"), TYPE_ERROR);
        const r = await run(process.execPath, [BIN, "build"], { cwd: dir });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /^index\.ts:7:13: error TS2322: Type 'string \| null' is not assignable to type 'number'\.$/m);
        assert.match(r.stderr, /^ {10}const name: number = req\.getPathParam\("name"\);\n {16}\^$/m);
        assert.match(r.stderr, /build failed \(1 error\)/);
        assert.ok(readFileSync(out).equals(before), "the previous component is left as it was");
        assert.deepEqual(readdirSync(path.join(dir, "dist")), ["component.wasm"]);
        // Still failing when run again with nothing changed: only a passing check is remembered.
        const again = await run(process.execPath, [BIN, "build"], { cwd: dir });
        assert.equal(again.code, 1);
        assert.match(again.stderr, /index\.ts:7:13: error TS2322/);
        // --no-check bundles it anyway.
        const unchecked = await run(process.execPath, [BIN, "build", "--no-check"], { cwd: dir });
        assert.equal(unchecked.code, 0, unchecked.stderr);
        assert.doesNotMatch(unchecked.stdout, /types/);
    });

    test("no check runs when nothing changed; a change to any checked file runs it", async () => {
        const dir = project({ "index.ts": HELLO + 'import type { Msg } from "./src/types";\nexport const m: Msg = "a";\n', "src/types.ts": 'export type Msg = "a" | "b";\n', "tsconfig.json": TSCONFIG });
        const first = await buildComponent({ dir });
        assert.ok(first.ok, first.errors?.join("\n"));
        assert.equal(first.check.state, "checked");
        const second = await buildComponent({ dir });
        assert.equal(second.check.state, "unchanged");
        // A file imported only for its types is not in the bundle, and still checked.
        await new Promise((r) => setTimeout(r, 20));
        writeFileSync(path.join(dir, "src/types.ts"), 'export type Msg = "b";\n');
        const third = await buildComponent({ dir });
        assert.equal(third.ok, false);
        assert.match(third.errors.join("\n"), /^index\.ts:5:14: error TS2322: Type '"a"' is not assignable to type '"b"'\.$/m);
        // So is a change of the compiler options.
        writeFileSync(path.join(dir, "src/types.ts"), 'export type Msg = "a" | "b";\n');
        assert.equal((await buildComponent({ dir })).check.state, "checked");
        assert.equal((await buildComponent({ dir })).check.state, "unchanged");
        writeFileSync(path.join(dir, "tsconfig.json"), TSCONFIG.replace('"strict": true', '"strict": true, "noUnusedLocals": true'));
        assert.equal((await buildComponent({ dir })).check.state, "checked");
    });

    test("a project without node_modules is checked against this SDK's declarations", async () => {
        const dir = project({ "index.ts": TYPE_ERROR, "tsconfig.json": TSCONFIG });
        const r = await buildComponent({ dir });
        assert.equal(r.ok, false);
        assert.deepEqual(r.errors.map((e) => e.split("\n")[0]), ["index.ts:7:13: error TS2322: Type 'string | null' is not assignable to type 'number'."]);
        assert.ok(!existsSync(path.join(dir, "node_modules")), "the project directory gets no node_modules");
    });

    test("a JavaScript entry, or a project without tsconfig.json, is bundled unchecked", async () => {
        for (const files of [{ "index.ts": TYPE_ERROR }, { "index.js": HELLO.replace(/^/, "// plain JS\n"), "tsconfig.json": TSCONFIG }]) {
            const r = await buildComponent({ dir: project(files) });
            assert.ok(r.ok, r.errors?.join("\n"));
            assert.equal(r.check.state, "off");
        }
    });
});

describe("--watch", () => {
    test("rebuilds on change and keeps going after an error", async () => {
        const dir = project({ "src/index.ts": HELLO, "src/msg.ts": 'export const msg = "v1";\n' });
        writeFileSync(path.join(dir, "src/index.ts"), HELLO.replace('"Hello"', "msg") + 'import { msg } from "./msg";\n');
        const out = path.join(dir, "dist/component.wasm");
        const child = spawn(process.execPath, [BIN, "build", "--watch"], { cwd: dir });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const until = async (cond, what) => {
            for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
            assert.ok(cond(), `timed out waiting for ${what}\nstdout: ${stdout}\nstderr: ${stderr}`);
        };
        const js = () => (existsSync(out) ? readFileSync(out).toString("latin1") : "");
        try {
            await until(() => /"v1"/.test(js()), "the first build");
            writeFileSync(path.join(dir, "src/msg.ts"), 'export const msg = "v2";\n');
            await until(() => /"v2"/.test(js()), "the rebuild");
            writeFileSync(path.join(dir, "src/msg.ts"), "export const msg = ;\n");
            await until(() => /src\/msg\.ts:1:20: error: Unexpected ";"/.test(stderr), "the error");
            assert.equal(child.exitCode, null, "still watching");
            assert.match(js(), /"v2"/, "the last good component stays");
            writeFileSync(path.join(dir, "src/msg.ts"), 'export const msg = "v3";\n');
            await until(() => /"v3"/.test(js()), "the rebuild after the fix");
        } finally {
            child.kill("SIGTERM");
            await new Promise((r) => child.once("exit", r));
        }
    });
    test("type errors are reported on each save and the watcher keeps going", async () => {
        const dir = project({ "index.ts": HELLO.replace('"Hello"', "msg") + 'import { msg } from "./src/msg";\n', "src/msg.ts": 'export const msg: string = "v1";\n', "src/types.ts": "export type S = string;\n", "tsconfig.json": TSCONFIG });
        const out = path.join(dir, "dist/component.wasm");
        const child = spawn(process.execPath, [BIN, "build", "--watch"], { cwd: dir });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const until = async (cond, what) => {
            for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
            assert.ok(cond(), `timed out waiting for ${what}\nstdout: ${stdout}\nstderr: ${stderr}`);
        };
        const js = () => (existsSync(out) ? readFileSync(out).toString("latin1") : "");
        const count = (re) => (stderr.match(re) ?? []).length;
        try {
            await until(() => /"v1"/.test(js()), "the first build");
            writeFileSync(path.join(dir, "src/msg.ts"), 'export const msg: string = 2;\n');
            await until(() => count(/^src\/msg\.ts:1:14: error TS2322: Type 'number' is not assignable to type 'string'\.$/gm) === 1, "the type error");
            writeFileSync(path.join(dir, "src/msg.ts"), 'export const msg: string = 3;\n');
            await until(() => count(/^src\/msg\.ts:1:14: error TS2322/gm) === 2, "the type error on the next save");
            assert.equal(child.exitCode, null, "still watching");
            assert.match(js(), /"v1"/, "the last good component stays");
            // A file the bundle does not contain (imported for its types only) is watched too.
            writeFileSync(path.join(dir, "src/msg.ts"), 'import type { S } from "./types";\nexport const msg: S = "v4";\n');
            await until(() => /"v4"/.test(js()), "the rebuild after the fix");
            writeFileSync(path.join(dir, "src/types.ts"), "export type S = number;\n");
            await until(() => count(/^src\/msg\.ts:2:14: error TS2322: Type 'string' is not assignable to type 'number'\.$/gm) === 1, "the error from the types-only file");
            assert.equal(child.exitCode, null, "still watching");
        } finally {
            child.kill("SIGTERM");
            await new Promise((r) => child.once("exit", r));
        }
    });
});

describe("the scaffolded project", () => {
    test("npm install && npm run build with the packed SDK", { timeout: 120000 }, async () => {
        const dir = path.join(TMP, "scaffold");
        cpSync(TEMPLATE, dir, { recursive: true, filter: (f) => !/node_modules|\/dist$/.test(f) });
        const pack = await run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], { cwd: ROOT });
        assert.equal(pack.code, 0, pack.stderr);
        assert.ok(existsSync(path.join(dir, "trailbase-wasm-0.1.0.tgz")), pack.stdout);
        const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
        assert.equal(pkg.dependencies["trailbase-wasm"], "file:./trailbase-wasm-0.1.0.tgz");
        const install = await run("npm", ["install", "--offline", "--no-audit", "--no-fund"], { cwd: dir });
        assert.equal(install.code, 0, install.stderr);
        const lock = readFileSync(path.join(dir, "package-lock.json"), "utf8");
        assert.match(lock, /"node_modules\/esbuild": \{\s*"version": "0\.28\.2"/);
        assert.match(lock, /"node_modules\/quickjs-wasi": \{\s*"version": "3\.6\.2"/);
        const build = await run("npm", ["run", "build"], { cwd: dir });
        assert.equal(build.code, 0, build.stdout + build.stderr);
        const sections = readCustomSections(readFileSync(path.join(dir, "dist/component.wasm"))).map((s) => s.name);
        assert.deepEqual(sections.slice(-3), ["trailbase.js", "trailbase.engine", "trailbase.map"]);
        const check = await run("npm", ["run", "check"], { cwd: dir });
        assert.equal(check.code, 0, check.stdout + check.stderr);
    });
});
