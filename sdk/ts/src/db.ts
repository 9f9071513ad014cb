/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm/db: SQL against trail's database. Each trail worker has its own connection;
// statements are asynchronous.
//
// Types: NULL ↔ null, INTEGER ↔ number (a bigint beyond ±2^53, both ways), REAL ↔ number,
// TEXT ↔ string, BLOB ↔ Uint8Array. As parameters, booleans are 1/0, undefined is NULL, and any
// typed array (e.g. a Float32Array for vec_f32) or ArrayBuffer is a BLOB of its bytes.

import { host, hostWith } from "./host.js";

/** A value as the database returns it. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/** A value accepted as a statement parameter. */
export type SqlParam = SqlValue | boolean | undefined | ArrayBufferView | ArrayBuffer;

/** A result row: the columns in SELECT order. */
export type Row = any[];

/** The reference SDK's name for a parameter or result value. */
export type Value = null | boolean | bigint | number | string | Uint8Array;

const NO_PARAMS: readonly SqlValue[] = Object.freeze([]);

/** Rows as arrays: `rows[0][0]` is the first column of the first row. Rejects with SQLite's message on error. */
export function query<R extends readonly unknown[] = Row>(sql: string, params?: readonly SqlParam[]): Promise<R[]> {
    // toSql()'s common case inlined: this is the per-request path
    try {
        const to = host();
        let p: readonly SqlParam[] = params === undefined ? NO_PARAMS : params;
        for (let i = 0; i < p.length; i++) {
            const v = p[i];
            if (v !== null && typeof v !== "number" && typeof v !== "string") {
                p = toSql(params);
                break;
            }
        }
        return to.query(sql, p as readonly SqlValue[]) as unknown as Promise<R[]>;
    } catch (e) {
        return Promise.reject(e);
    }
}

/** Runs a statement; resolves to the number of rows it changed. */
export function execute(sql: string, params?: readonly SqlParam[]): Promise<number> {
    try {
        const to = host();
        let p: readonly SqlParam[] = params === undefined ? NO_PARAMS : params;
        for (let i = 0; i < p.length; i++) {
            const v = p[i];
            if (v !== null && typeof v !== "number" && typeof v !== "string") {
                p = toSql(params);
                break;
            }
        }
        return to.execute(sql, p as readonly SqlValue[]);
    } catch (e) {
        return Promise.reject(e);
    }
}

// Copies the parameters only when one needs converting (query() and execute() call it only
// when one is not null, a number or a string).
function toSql(params: readonly SqlParam[] | undefined): readonly SqlValue[] {
    if (params === undefined) return NO_PARAMS;
    let out: SqlValue[] | null = null;
    for (let i = 0; i < params.length; i++) {
        const v = params[i];
        const t = typeof v;
        if (v === null || t === "number" || t === "string" || t === "bigint" || v instanceof Uint8Array) {
            if (out !== null) out.push(v as SqlValue);
            continue;
        }
        if (out === null) out = params.slice(0, i) as SqlValue[];
        out.push(convert(v, i));
    }
    return out ?? (params as readonly SqlValue[]);
}

function convert(v: SqlParam, i: number): SqlValue {
    if (v === undefined) return null;
    if (typeof v === "boolean") return v ? 1 : 0;
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    if (v instanceof ArrayBuffer) return new Uint8Array(v);
    throw new TypeError(`SQL parameter ${i + 1}: unsupported type ${Object.prototype.toString.call(v)}`);
}

/**
 * An open transaction, as `beginTransaction()` and `transaction()` give it. While it is open, its
 * statements are the only ones on the worker's connection: use `tx.query`/`tx.execute` inside
 * it; a plain `query()` waits until the transaction ends. It ends with commit() or rollback();
 * trail rolls back one left open (30 s).
 */
export interface AsyncTransaction {
    query<R extends readonly unknown[] = Row>(sql: string, params?: readonly SqlParam[]): Promise<R[]>;
    execute(sql: string, params?: readonly SqlParam[]): Promise<number>;
    commit(): Promise<void>;
    /** Rolls back; a no-op once the transaction has ended. */
    rollback(): Promise<void>;
    /** True until commit() or rollback() was called. */
    readonly active: boolean;
}

class Tx implements AsyncTransaction {
    active = true;
    constructor(private readonly id: number) {}

    private check(): void {
        if (!this.active) throw new Error("the transaction has already ended");
    }
    async query<R extends readonly unknown[] = Row>(sql: string, params?: readonly SqlParam[]): Promise<R[]> {
        this.check();
        return (await hostWith("txQuery").txQuery(this.id, sql, toSql(params))) as unknown as R[];
    }
    async execute(sql: string, params?: readonly SqlParam[]): Promise<number> {
        this.check();
        return hostWith("txExecute").txExecute(this.id, sql, toSql(params));
    }
    async commit(): Promise<void> {
        this.check();
        this.active = false;
        await hostWith("txCommit").txCommit(this.id);
    }
    async rollback(): Promise<void> {
        if (!this.active) return;
        this.active = false;
        await hostWith("txRollback").txRollback(this.id);
    }
}

/** Begins a transaction (BEGIN IMMEDIATE); end it with commit() or rollback(). */
export async function beginTransaction(): Promise<AsyncTransaction> {
    return new Tx(await hostWith("txBegin").txBegin());
}

/**
 * Runs `fn` in a transaction: commits when it returns (or resolves), rolls back when it throws
 * (or rejects) and rethrows. `fn` may also end the transaction itself.
 */
export async function transaction<T>(fn: (tx: AsyncTransaction) => T | Promise<T>): Promise<T> {
    const tx = await beginTransaction();
    let result: T;
    try {
        result = await fn(tx);
    } catch (e) {
        try {
            await tx.rollback();
        } catch {
            // The original error is the one worth reporting.
        }
        throw e;
    }
    if (tx.active) await tx.commit();
    return result;
}

/**
 * A synchronous transaction (the reference SDK's): `new Transaction()` begins it (BEGIN
 * IMMEDIATE) at once, and `query`, `execute`, `commit` and `rollback` return their results
 * directly. It cannot wait: it throws if another transaction is open on the worker's connection
 * (use `transaction()` there, which waits). Until it ends no other statement runs on that
 * connection, so end it before the handler awaits anything; trail rolls back one left open
 * (30 s) and one whose isolate goes away. Values map as for `query()`.
 */
export class Transaction {
    private id: number;
    private open: boolean;

    constructor() {
        this.id = hostWith("txBeginSync").txBeginSync();
        this.open = true;
    }

    /** Rows as arrays; throws with SQLite's message on error. */
    query<R extends readonly unknown[] = Row>(sql: string, params?: readonly SqlParam[]): R[] {
        this.check();
        return hostWith("txQuerySync").txQuerySync(this.id, sql, toSql(params)) as unknown as R[];
    }
    /** Runs a statement; the number of rows it changed. */
    execute(sql: string, params?: readonly SqlParam[]): number {
        this.check();
        return hostWith("txExecuteSync").txExecuteSync(this.id, sql, toSql(params));
    }
    commit(): void {
        this.check();
        this.open = false;
        hostWith("txCommitSync").txCommitSync(this.id);
    }
    /** Rolls back; a no-op once the transaction has ended. */
    rollback(): void {
        if (!this.open) return;
        this.open = false;
        hostWith("txRollbackSync").txRollbackSync(this.id);
    }
    /** True until commit() or rollback() was called. */
    get active(): boolean {
        return this.open;
    }

    private check(): void {
        if (!this.open) throw new Error("the transaction has already ended");
    }
}

/**
 * `s` as an SQL string literal, quotes doubled: `escape("it's")` is `'it''s'`. For the rare
 * place a parameter cannot go (a table name); a NUL byte is refused, as SQLite would end the
 * literal there.
 */
export function escape(s: string): string {
    if (typeof s !== "string") throw new TypeError("escape() takes a string");
    if (s.includes("\0")) throw new TypeError("escape(): the string holds a NUL byte");
    return `'${s.replaceAll("'", "''")}'`;
}
