// Type checks with the pinned TypeScript (`tsc --strict`): the SDK's own sources, every code
// sample of the reference (test/reference), a program using every API and global
// (test/types/good), and mistakes that must be refused (test/types/bad, lines marked `// error`).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, symlinkSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TSC = path.join(ROOT, "node_modules/.bin/tsc");

function tsc(...args) {
    return new Promise((resolve) => {
        execFile(TSC, args, { cwd: ROOT }, (error, stdout, stderr) => {
            resolve({ code: error ? (error.code ?? 1) : 0, out: stdout + stderr });
        });
    });
}

async function checks(project) {
    const r = await tsc("-p", project);
    assert.equal(r.code, 0, `tsc -p ${project}:\n${r.out}`);
}

test("the SDK's sources check under --strict (and more)", () => checks("tsconfig.json"));

test("lib/build.mjs checks (// @ts-check, its types in JSDoc)", () => checks("tsconfig.lib.json"));

test("every code sample of the reference checks", async () => {
    const samples = readdirSync(path.join(ROOT, "test/reference")).filter((f) => f.endsWith(".ts"));
    assert.ok(samples.length >= 17, `only ${samples.length} samples`);
    await checks("test/reference/tsconfig.json");
});

test("the reference's hot-reload.ts checks against Node's types", () => checks("test/reference/node/tsconfig.json"));

test("the template project checks", async () => {
    // A copy with this SDK installed as node_modules/trailbase-wasm (a symlink, as npm links).
    const dir = mkdtempSync(path.join(tmpdir(), "trail-template-"));
    try {
        cpSync(path.join(ROOT, "../template"), dir, { recursive: true, filter: (f) => !/node_modules|dist/.test(f) });
        mkdirSync(path.join(dir, "node_modules"));
        symlinkSync(ROOT, path.join(dir, "node_modules/trailbase-wasm"));
        await checks(dir);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

test("all APIs and globals type-check as a handler uses them", () => checks("test/types/good/tsconfig.json"));

test("a project that also loads the DOM library still checks (skipLibCheck)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "trail-dom-"));
    try {
        const files = [
            path.join(ROOT, "test/types/good/globals.ts"),
            ...readdirSync(path.join(ROOT, "test/reference"))
                .filter((f) => f.endsWith(".ts"))
                .map((f) => path.join(ROOT, "test/reference", f)),
        ];
        writeFileSync(
            path.join(dir, "tsconfig.json"),
            JSON.stringify({
                compilerOptions: {
                    target: "es2023",
                    lib: ["es2023", "dom", "dom.iterable"],
                    module: "esnext",
                    moduleResolution: "bundler",
                    strict: true,
                    noEmit: true,
                    skipLibCheck: true,
                    types: [],
                },
                files,
            }),
        );
        await checks(dir);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

test("mistakes are refused, each on its marked line", async () => {
    const dir = path.join(ROOT, "test/types/bad");
    const expected = new Set();
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
        readFileSync(path.join(dir, f), "utf8")
            .split("\n")
            .forEach((line, i) => {
                if (/\/\/ error$/.test(line)) expected.add(`${f}:${i + 1}`);
            });
    }
    assert.ok(expected.size >= 15);
    const r = await tsc("-p", "test/types/bad/tsconfig.json");
    assert.notEqual(r.code, 0);
    const got = new Set();
    for (const m of r.out.matchAll(/^test\/types\/bad\/([\w-]+\.ts)\((\d+),\d+\): error TS\d+/gm)) got.add(`${m[1]}:${m[2]}`);
    assert.deepEqual([...got].sort(), [...expected].sort(), r.out);
});
