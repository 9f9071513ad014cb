/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm/records: hooks on the Record APIs' writes (docs/records.md). A hook runs on the
// worker that received the write, in the component's isolate, synchronously with the write:
// `before*` hooks inside the write's transaction (they may change the record, or reject the
// write by throwing an HttpError), `after*` hooks once it has committed (they cannot undo it).
//
// DESIGN: the host calls runRecordHook(index, json) with the hook's context as JSON and takes a
// JSON string back: {"record": {...}} or {"error": {"status": N, "message": "..."}}; anything
// else thrown is the host's (500, logged with its stack). A hook may await the database
// (query/execute settle at once) but not timers or fetch: the write cannot wait for them.

import { HttpError } from "./http.js";

/** When a hook runs. */
export type RecordEvent =
    | "beforeCreate"
    | "afterCreate"
    | "beforeUpdate"
    | "afterUpdate"
    | "beforeDelete"
    | "afterDelete";

export const RECORD_EVENTS: readonly RecordEvent[] = [
    "beforeCreate",
    "afterCreate",
    "beforeUpdate",
    "afterUpdate",
    "beforeDelete",
    "afterDelete",
];

/** A record as JSON: column name to value (BLOBs as URL-safe base64). */
export type JsonRecord = Record<string, unknown>;

/** What a hook gets. */
export interface RecordHookContext {
    /** The Record API's name (`record_apis { name: ... }`). */
    api: string;
    event: RecordEvent;
    /**
     * Create and update: the fields the request sent (after: as written, with the new record's
     * `id` for a create). Delete: `{}`.
     */
    record: JsonRecord;
    /** Update and delete (and after a create): the record's id as text; null before a create. */
    id: string | null;
    /** The caller: null when anonymous. */
    user: { id: string; email: string; admin: boolean } | null;
}

/** A before hook returns the record to write (or nothing to keep it); after hooks return nothing. */
export type RecordHookFn = (ctx: RecordHookContext) => JsonRecord | void | Promise<JsonRecord | void>;

export class RecordHook {
    readonly api: string;
    readonly event: RecordEvent;
    readonly handler: RecordHookFn;

    constructor(api: string, event: RecordEvent, handler: RecordHookFn) {
        if (typeof api !== "string" || api === "") throw new TypeError("RecordHook: the API's name is required");
        if (!RECORD_EVENTS.includes(event)) throw new TypeError(`RecordHook: unknown event ${String(event)}`);
        if (typeof handler !== "function") throw new TypeError("RecordHook: the handler must be a function");
        this.api = api;
        this.event = event;
        this.handler = handler;
    }

    static beforeCreate(api: string, fn: RecordHookFn): RecordHook {
        return new RecordHook(api, "beforeCreate", fn);
    }
    static afterCreate(api: string, fn: RecordHookFn): RecordHook {
        return new RecordHook(api, "afterCreate", fn);
    }
    static beforeUpdate(api: string, fn: RecordHookFn): RecordHook {
        return new RecordHook(api, "beforeUpdate", fn);
    }
    static afterUpdate(api: string, fn: RecordHookFn): RecordHook {
        return new RecordHook(api, "afterUpdate", fn);
    }
    static beforeDelete(api: string, fn: RecordHookFn): RecordHook {
        return new RecordHook(api, "beforeDelete", fn);
    }
    static afterDelete(api: string, fn: RecordHookFn): RecordHook {
        return new RecordHook(api, "afterDelete", fn);
    }
}

/** The host's entry: runs hook `hook` on the context `json`; a JSON string, or its promise. */
export function runRecordHook(hook: RecordHook, json: string): string | Promise<string> {
    const ctx = JSON.parse(json) as RecordHookContext;
    const done = (r: JsonRecord | void): string =>
        JSON.stringify({ record: r !== null && typeof r === "object" && !Array.isArray(r) ? r : ctx.record });
    const failed = (e: unknown): string => {
        if (e instanceof HttpError) return JSON.stringify({ error: { status: e.status, message: e.message } });
        throw e;
    };
    try {
        const r = hook.handler(ctx);
        if (r instanceof Promise) return r.then(done, failed);
        return done(r);
    } catch (e) {
        return failed(e);
    }
}
