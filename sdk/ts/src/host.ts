// The functions trail installs as `globalThis.__trailhost` (docs/guest-abi.md). Internal to the
// SDK: user code goes through the typed wrappers in http/db/job/fs.
//
// DESIGN: looked up on every call instead of captured at module evaluation, so that tests (and
// users unit-testing their handlers under Node) can install a host after importing the SDK.
// One global property read per call is noise next to the call itself.

export interface TrailHost {
    log(level: number, message: string): void;
    query(sql: string, params: readonly unknown[]): Promise<any[][]>;
    execute(sql: string, params: readonly unknown[]): Promise<number>;
    encodeUtf8(text: string): Uint8Array;
    decodeUtf8(bytes: Uint8Array): string;
    /** JSON.stringify for plain data, or undefined (then JSON.stringify it is); optional. */
    jsonStringify?(value: unknown): string | undefined;
    /** JSON.parse of the UTF-8 in bytes when it is plain JSON, or undefined (then JSON.parse it is); optional. */
    jsonParse?(bytes: Uint8Array): unknown;

    // Optional: the SDK checks for them at the call (hostWith), so a component built with a newer
    // SDK than the trail that runs it gets a clear error from the call that needs a missing one.
    txBegin?(): Promise<number>;
    txQuery?(tx: number, sql: string, params: readonly unknown[]): Promise<any[][]>;
    txExecute?(tx: number, sql: string, params: readonly unknown[]): Promise<number>;
    txCommit?(tx: number): Promise<void>;
    txRollback?(tx: number): Promise<void>;
    txBeginSync?(): number;
    txQuerySync?(tx: number, sql: string, params: readonly unknown[]): any[][];
    txExecuteSync?(tx: number, sql: string, params: readonly unknown[]): number;
    txCommitSync?(tx: number): void;
    txRollbackSync?(tx: number): void;
    fsReadFile?(path: string): Promise<Uint8Array>;
    fsReadFileSync?(path: string): Uint8Array;
    fsReadDir?(path: string): Promise<[string, number][]>;
    fsStat?(path: string): Promise<[number, number, number]>;
    kvGet?(key: string): Uint8Array | undefined;
    kvSet?(key: string, value: Uint8Array | string, ttlMs: number): void;
    kvDelete?(key: string): boolean;
    kvExists?(key: string): boolean;
    kvIncrement?(key: string, delta: number, ttlMs: number): number;
    kvListKeys?(prefix: string): string[];
}

/** The host functions, or undefined outside trail: the one place that reads `__trailhost`. */
export function hostIfAny(): TrailHost | undefined {
    return (globalThis as { __trailhost?: TrailHost }).__trailhost;
}

/** The host functions (an Error outside trail). */
export function host(): TrailHost {
    const h = hostIfAny();
    if (h === undefined) {
        throw new Error("trailbase-wasm: no __trailhost; this code must run inside trail");
    }
    return h;
}

/** The host, after checking that it provides the optional function `name` (an Error if not). */
export function hostWith(name: keyof TrailHost): Required<TrailHost> {
    const h = host();
    if (typeof h[name] !== "function") {
        throw new Error(`trailbase-wasm: this version of trail does not provide ${name}()`);
    }
    return h as Required<TrailHost>;
}
