/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm: defineConfig() makes the object trail loads from a component (its default
// export: manifest, dispatch, runJob; docs/guest-abi.md), plus addPeriodicCallback().
//
// DESIGN: dispatch() is the per-request path, and every JS operation on it costs. It calls the
// handler and returns what it gives as it is, a promise included: the host checks the result
// (a string, a Uint8Array or an HttpResponse, which is already the host's response shape) and
// reads a settled promise's value itself, so an async handler costs no `.then()`, reaction and
// job of ours. Only the rare rest (a rejection, a wrong result) comes back through complete().
// A string or Uint8Array goes to the host bare (200 with the default content type,
// docs/guest-abi.md), so it costs no response object.

import { HttpError, HttpHandler, HttpRequest, HttpResponse } from "./http.js";
import type { HostRequest, HostResponse, HttpResult } from "./http.js";

/** A response as the host takes it: a response object, or a bare string or Uint8Array (200). */
export type HostResult = HostResponse | string | Uint8Array;
import { JobHandler } from "./job.js";

export * from "./http.js";
export * from "./job.js";
export * from "./db.js";

export interface Config {
    httpHandlers?: readonly HttpHandler[];
    jobHandlers?: readonly JobHandler[];
}

/** What the component declares: routes as `[method, path]` and jobs as `[name, cron]`. */
export interface Manifest {
    http: [string, string][];
    jobs: [string, string][];
}

/** The component's default export, as trail calls it. */
export interface Component {
    manifest(): Manifest;
    /**
     * Runs the handler of route `index` (its position in `manifest().http`) and returns its
     * result as it is: a promise for an async handler, whatever the handler returned otherwise
     * (a synchronous HttpError already made its response). The host checks the result: a
     * string, a Uint8Array or a `responseClass` instance is the response; for anything else,
     * and when the promise rejects, it calls `complete()`.
     */
    dispatch(index: number, request: HostRequest): unknown;
    /**
     * What the host calls when `dispatch()`'s result, or what its promise settled with, is not a
     * response (`rejected` false), or when the promise rejected (`rejected` true): an HttpError
     * gives its response; anything else throws (a TypeError naming the wrong result, or the
     * rejection's reason), which the host answers with 500 and a logged stack.
     */
    complete(value: unknown, rejected: boolean): HostResult;
    /** HttpResponse: its instances are responses the host takes as they are. */
    responseClass: abstract new (...args: never[]) => unknown;
    /** Runs the job `name`; settles when it finishes. */
    runJob(name: string): Promise<void>;
}

const REQUEST = HttpRequest.prototype;

/**
 * Declares the component's routes and jobs. Use its result as the module's default export:
 * `export default defineConfig({ httpHandlers: [...], jobHandlers: [...] })`.
 */
export function defineConfig(config: Config): Component {
    if (config === null || typeof config !== "object") {
        throw new TypeError("defineConfig() expects an object: { httpHandlers: [...], jobHandlers: [...] }");
    }
    const routes = [...(config.httpHandlers ?? [])];
    const jobList = [...(config.jobHandlers ?? [])];
    const http: [string, string][] = [];
    const seenRoutes = new Set<string>();
    for (const r of routes) {
        if (!(r instanceof HttpHandler)) throw new TypeError("httpHandlers must hold HttpHandler.get(...)-style routes");
        const key = `${r.method} ${r.path}`;
        if (seenRoutes.has(key)) throw new Error(`duplicate route ${key}`);
        seenRoutes.add(key);
        http.push([r.method, r.path]);
    }
    const jobs = new Map<string, JobHandler>();
    for (const j of jobList) {
        if (!(j instanceof JobHandler)) throw new TypeError("jobHandlers must hold JobHandler.hourly(...)-style jobs");
        if (jobs.has(j.name)) throw new Error(`duplicate job ${j.name}`);
        jobs.set(j.name, j);
    }
    const manifest: Manifest = { http, jobs: jobList.map((j) => [j.name, j.schedule]) };
    const handlers = routes.map((r) => r.handler);

    return {
        manifest: () => manifest,
        dispatch(index: number, request: HostRequest): unknown {
            const handler = handlers[index];
            if (handler === undefined) throw new RangeError(`no route with index ${index}`);
            try {
                // what `new HttpRequest(request)` makes, in one object literal (cheaper per request)
                return handler({ __proto__: REQUEST, _r: request } as unknown as HttpRequest);
            } catch (e) {
                return fromError(e);
            }
        },
        complete(value: unknown, rejected: boolean): HostResult {
            return rejected ? fromError(value) : toResponse(value as HttpResult);
        },
        responseClass: HttpResponse,
        runJob(name: string): Promise<void> {
            const job = jobs.get(name);
            if (job === undefined) return Promise.reject(new Error(`no job named ${JSON.stringify(name)}`));
            try {
                return Promise.resolve(job.handler()).then(() => undefined);
            } catch (e) {
                return Promise.reject(e);
            }
        },
    };
}

function toResponse(result: HttpResult): HostResult {
    if (result instanceof HttpResponse || typeof result === "string" || result instanceof Uint8Array) return result;
    throw new TypeError(
        `a handler returned ${describe(result)}; return a string, a Uint8Array or an HttpResponse (e.g. HttpResponse.json(data))`,
    );
}

// An HttpError answers with its status; anything else goes to trail (500 and a logged stack).
function fromError(e: unknown): HostResponse {
    if (e instanceof HttpError) return e.toResponse();
    throw e;
}

function describe(v: unknown): string {
    if (v === null || v === undefined) return String(v);
    if (typeof v === "object") return `an object (${Object.prototype.toString.call(v)})`;
    return `a ${typeof v}`;
}

/**
 * Calls `callback` every `ms` milliseconds until it calls the `cancel` it receives (or the
 * returned function is called). Keeps running after the request that started it has been answered.
 */
export function addPeriodicCallback(ms: number, callback: (cancel: () => void) => void | Promise<void>): () => void {
    let cancelled = false;
    let id: number | undefined = undefined;
    const cancel = () => {
        if (cancelled) return;
        cancelled = true;
        clearInterval(id);
    };
    id = setInterval(() => {
        if (!cancelled) void callback(cancel);
    }, ms);
    return cancel;
}
