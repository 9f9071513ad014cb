/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm: defineConfig() makes the object trail loads from a component (its default
// export: manifest, dispatch, runJob; docs/guest-abi.md), plus addPeriodicCallback().
//
// DESIGN: dispatch() is the per-request path. It calls the handler synchronously and adds a
// promise only when the handler returned one; a string or Uint8Array result goes to the host
// bare (the host answers 200 with the default content type, docs/guest-abi.md), so it costs no
// response object; an HttpResponse is already the host's response shape and is returned as is.

import { HttpError, HttpHandler, HttpRequest, HttpResponse } from "./http.js";
import type { HostRequest, HostResponse, HttpResult } from "./http.js";

/** What `dispatch()` gives the host: a response, or a bare string or Uint8Array (200). */
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
    /** Runs the handler of route `index` (its position in `manifest().http`). */
    dispatch(index: number, request: HostRequest): HostResult | Promise<HostResult>;
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
        dispatch(index: number, request: HostRequest): HostResult | Promise<HostResult> {
            const handler = handlers[index];
            if (handler === undefined) throw new RangeError(`no route with index ${index}`);
            let result: HttpResult | Promise<HttpResult>;
            try {
                // what `new HttpRequest(request)` makes, in one object literal (cheaper per request)
                result = handler({ __proto__: REQUEST, _r: request } as unknown as HttpRequest);
            } catch (e) {
                return fromError(e);
            }
            if (typeof result === "string") return result;
            if (result instanceof Promise) return result.then(toResponse, fromError);
            return toResponse(result);
        },
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
