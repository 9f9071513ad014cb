#!/usr/bin/env node
// trailbase-wasm: the command behind a component project's `npm run build` and `npm run dev`.
//
//   trailbase-wasm build [--watch] [--dir DIR] [--entry FILE] [--out FILE] [--minify] [--no-check]
//
// Errors in the user's code print as `file:line:col: error: message` (type errors as
// `file:line:col: error TS2322: message`) and make `build` exit 1 without writing the component;
// `--watch` reports them and keeps watching.

import path from "node:path";
import { parseArgs } from "node:util";
import { SDK_VERSION, buildComponent, watchComponent } from "../lib/build.mjs";

const USAGE = `usage: trailbase-wasm build [--watch] [--dir DIR] [--entry FILE] [--out FILE] [--minify] [--no-check]

Checks the types of DIR's TypeScript project (with DIR/tsconfig.json), bundles its index.ts (or
src/index.ts) and writes the component trail loads, DIR/dist/component.wasm. A type error fails
the build and leaves the last component in place. DIR defaults to the current directory.

  --watch        rebuild whenever a source file changes (Ctrl-C to stop)
  --entry FILE   the entry file, relative to DIR
  --out FILE     the output file, relative to DIR (default dist/component.wasm)
  --minify       minify the bundled JavaScript
  --no-check     bundle without checking types`;

function fail(message) {
    process.stderr.write(`trailbase-wasm: ${message}\n${USAGE}\n`);
    process.exit(2);
}

let parsed;
try {
    parsed = parseArgs({
        allowPositionals: true,
        options: {
            watch: { type: "boolean" },
            dir: { type: "string" },
            entry: { type: "string" },
            out: { type: "string" },
            minify: { type: "boolean" },
            "no-check": { type: "boolean" },
            help: { type: "boolean", short: "h" },
            version: { type: "boolean" },
        },
    });
} catch (e) {
    fail(e.message);
}
const { values, positionals } = parsed;
if (values.help) {
    process.stdout.write(USAGE + "\n");
    process.exit(0);
}
if (values.version) {
    process.stdout.write(SDK_VERSION + "\n");
    process.exit(0);
}
if (positionals.length !== 1 || positionals[0] !== "build") {
    fail(positionals.length === 0 ? "missing command" : `unknown command ${positionals.join(" ")}`);
}

const opts = { dir: values.dir, entry: values.entry, out: values.out, minify: values.minify, check: !values["no-check"] };

function report(r) {
    for (const w of r.warnings) process.stderr.write(w + "\n");
    if (!r.ok) {
        for (const e of r.errors) process.stderr.write(e + "\n");
        process.stderr.write(`trailbase-wasm: build failed (${r.errors.length} error${r.errors.length === 1 ? "" : "s"})\n`);
        return;
    }
    const rel = (p) => path.relative(process.cwd(), p) || p;
    const kib = (n) => `${Math.round(n / 1024)} KiB`;
    const types = { checked: `, types checked in ${r.check.ms} ms`, unchanged: ", types as checked before", off: "" }[r.check.state];
    process.stdout.write(
        `trailbase-wasm: ${rel(r.entry)} -> ${rel(r.out)} (${kib(r.size)}, JS ${kib(r.jsBytes)}) in ${r.ms} ms` +
            types + (r.written ? "" : ", file unchanged") + "\n",
    );
}

if (values.watch) {
    let watcher;
    try {
        watcher = await watchComponent(opts, report);
    } catch (e) {
        process.stderr.write(`trailbase-wasm: error: ${e.message}\n`);
        process.exit(1);
    }
    process.stdout.write(`trailbase-wasm: watching ${path.relative(process.cwd(), watcher.options.dir) || "."} for changes\n`);
    const stop = async () => {
        await watcher.stop();
        process.exit(0);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
} else {
    const r = await buildComponent(opts);
    report(r);
    process.exit(r.ok ? 0 : 1);
}
