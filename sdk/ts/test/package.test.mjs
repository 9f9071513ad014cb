// The package as published: exact pins, a lockfile that names no registry host, entry points
// that exist with their types, and a template that depends on this very version.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
const template = JSON.parse(readFileSync(path.join(ROOT, "../template/package.json"), "utf8"));

test("dependencies are pinned to exact versions", () => {
    assert.equal(pkg.name, "trailbase-wasm");
    assert.equal(pkg.version, "0.1.0");
    assert.equal(pkg.dependencies["quickjs-wasi"], "3.6.2");
    for (const deps of [pkg.dependencies, pkg.devDependencies, template.devDependencies]) {
        for (const [name, v] of Object.entries(deps)) assert.match(v, /^\d+\.\d+\.\d+$/, `${name}@${v}`);
    }
});

test("the lockfile pins every package by integrity and names no host", () => {
    const lock = JSON.parse(readFileSync(path.join(ROOT, "package-lock.json"), "utf8"));
    const text = readFileSync(path.join(ROOT, "package-lock.json"), "utf8");
    assert.doesNotMatch(text, /"resolved"|https?:\/\//);
    assert.equal(lock.packages["node_modules/esbuild"].version, pkg.dependencies.esbuild);
    assert.equal(lock.packages["node_modules/quickjs-wasi"].version, "3.6.2");
    // The build checks types with it: a dependency, pinned like the others.
    assert.equal(lock.packages["node_modules/typescript"].version, pkg.dependencies.typescript);
    assert.equal(lock.packages["node_modules/typescript"].dev, undefined);
    for (const [name, p] of Object.entries(lock.packages)) {
        if (name !== "") assert.match(p.integrity ?? "", /^sha512-/, name);
    }
});

test("every entry point exists with its types", () => {
    assert.deepEqual(Object.keys(pkg.exports), [".", "./http", "./db", "./job", "./fs", "./kv", "./auth", "./records", "./package.json"]);
    for (const [key, e] of Object.entries(pkg.exports)) {
        if (key === "./package.json") continue;
        assert.ok(existsSync(path.join(ROOT, e.types)), e.types);
        assert.ok(existsSync(path.join(ROOT, e.default)), e.default);
        assert.match(readFileSync(path.join(ROOT, e.types), "utf8"), /^\/\/\/ <reference path="\.\.\/types\/globals\.d\.ts"/);
    }
    assert.ok(existsSync(path.join(ROOT, pkg.bin["trailbase-wasm"])));
});

test("the template depends on this version and builds with this command", () => {
    assert.equal(template.dependencies["trailbase-wasm"], `file:./trailbase-wasm-${pkg.version}.tgz`);
    assert.equal(template.devDependencies.typescript, pkg.dependencies.typescript);
    assert.equal(template.scripts.build, "trailbase-wasm build");
    assert.equal(template.scripts.dev, "trailbase-wasm build --watch");
});

test("the template's lockfile installs what this package was tested with", () => {
    const hint = "regenerate it with sdk/update-template-lock.sh";
    const mine = JSON.parse(readFileSync(path.join(ROOT, "package-lock.json"), "utf8")).packages;
    const text = readFileSync(path.join(ROOT, "../template/package-lock.json"), "utf8");
    const theirs = JSON.parse(text).packages;
    assert.deepEqual(theirs[""].dependencies, template.dependencies, hint);
    assert.deepEqual(theirs[""].devDependencies, template.devDependencies, hint);
    const sdk = theirs["node_modules/trailbase-wasm"];
    assert.equal(sdk.version, pkg.version, hint);
    assert.equal(sdk.resolved, `file:trailbase-wasm-${pkg.version}.tgz`);
    assert.equal(sdk.integrity, undefined, "a rebuilt tarball must not conflict with the lockfile");
    assert.deepEqual(sdk.dependencies, pkg.dependencies, hint);
    for (const [name, p] of Object.entries(theirs)) {
        if (name === "" || name === "node_modules/trailbase-wasm") continue;
        assert.ok(mine[name], `${name} is not in sdk/ts's lockfile; ${hint}`);
        assert.equal(p.version, mine[name].version, `${name}; ${hint}`);
        assert.equal(p.integrity, mine[name].integrity, `${name}; ${hint}`);
    }
    assert.doesNotMatch(text.replace(/"resolved": "file:trailbase-wasm-[\d.]+\.tgz"/, ""), /"resolved"|https?:\/\//);
});
