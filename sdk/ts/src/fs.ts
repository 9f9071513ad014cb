/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm/fs: read-only access to files under the directory trail was started with
// (`trail run --runtime-root-fs DIR`). Paths are absolute inside that root (`/data/config.json`
// is DIR/data/config.json); nothing outside it is reachable. Without the flag every call rejects.
//
// A failure rejects with an Error whose `code` is "ENOENT", "EACCES" (outside the root, or
// trail's database directory), "EISDIR" (not a regular file), "EFBIG" (over trail's size
// limit), "EINVAL" (a path that is too long or holds a NUL byte), "ENOSYS" (no root configured)
// or "EIO" (anything else).

import { host, hostWith } from "./host.js";

export interface DirEntry {
    name: string;
    isFile: boolean;
    isDirectory: boolean;
    isSymlink: boolean;
}

export interface FileInfo {
    /** Size in bytes. */
    size: number;
    /** Last modification, ms since the epoch. */
    mtimeMs: number;
    isFile: boolean;
    isDirectory: boolean;
}

// Kinds as the host reports them (docs/guest-abi.md).
const FILE = 0;
const DIR = 1;
const SYMLINK = 2;

// The host rejects with a message only; the code is read from it.
const CODES: [string, string][] = [
    ["filesystem access is not enabled", "ENOSYS"],
    ["no such file or directory", "ENOENT"],
    ["leaves the filesystem root", "EACCES"],
    ["access denied", "EACCES"],
    ["not a regular file", "EISDIR"],
    ["read limit", "EFBIG"],
    ["path is longer than", "EINVAL"],
    ["path is too long", "EINVAL"],
    ["NUL byte", "EINVAL"],
    ["must be a string", "EINVAL"],
];

function addCode(e: unknown): unknown {
    if (e instanceof Error && (e as { code?: string }).code === undefined) {
        const hit = CODES.find(([text]) => e.message.includes(text));
        (e as { code?: string }).code = hit ? hit[1] : "EIO";
    }
    return e;
}

async function withCode<T>(p: Promise<T>): Promise<T> {
    try {
        return await p;
    } catch (e) {
        throw addCode(e);
    }
}

/** The file's bytes. */
export async function readFile(path: string): Promise<Uint8Array> {
    return withCode(hostWith("fsReadFile").fsReadFile(path));
}

/**
 * The file's bytes, read at once (the reference SDK's `readFileSync`): it throws instead of
 * rejecting, with the same `code`s. The isolate waits for the read.
 */
export function readFileSync(path: string): Uint8Array {
    try {
        return hostWith("fsReadFileSync").fsReadFileSync(path);
    } catch (e) {
        throw addCode(e);
    }
}

/** The file decoded as UTF-8 (invalid sequences become U+FFFD). */
export async function readTextFile(path: string): Promise<string> {
    const bytes = await withCode(hostWith("fsReadFile").fsReadFile(path));
    return host().decodeUtf8(bytes);
}

/** The entries of a directory, sorted by name, without `.` and `..`. */
export async function readDir(path: string): Promise<DirEntry[]> {
    const entries = await withCode(hostWith("fsReadDir").fsReadDir(path));
    return entries.map(([name, kind]) => ({
        name,
        isFile: kind === FILE,
        isDirectory: kind === DIR,
        isSymlink: kind === SYMLINK,
    }));
}

/** Information about a file or directory (a symlink is followed). */
export async function stat(path: string): Promise<FileInfo> {
    const [kind, size, mtimeMs] = await withCode(hostWith("fsStat").fsStat(path));
    return { size, mtimeMs, isFile: kind === FILE, isDirectory: kind === DIR };
}
