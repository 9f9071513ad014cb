/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm: defineConfig() makes the object trail loads from a component (its default
// export, or the `incomingHandler` of the reference SDK's named form: manifest, dispatch,
// runJob; docs/guest-abi.md), plus addPeriodicCallback() and base64 helpers.
//
// DESIGN: dispatch() is the per-request path, and every JS operation on it costs. It calls the
// handler and returns what it gives as it is, a promise included: the host checks the result
// (a string, a Uint8Array or an HttpResponse, which is already the host's response shape) and
// reads a settled promise's value itself, so an async handler costs no `.then()`, reaction and
// job of ours. Only the rare rest (a rejection, a wrong result) comes back through complete().
// A string or Uint8Array goes to the host bare (200 with the default content type,
// docs/guest-abi.md), so it costs no response object.

import { HttpError, HttpHandler, HttpRequest, HttpResponse } from "./http.js";
import type { HostRequest, HostResponse, HttpHandlerFn, HttpHandlerInterface, HttpResult } from "./http.js";
import { host } from "./host.js";

/** A response as the host takes it: a response object, or a bare string or Uint8Array (200). */
export type HostResult = HostResponse | string | Uint8Array;
import { JobHandler } from "./job.js";
import type { JobHandlerInterface } from "./job.js";
import { RecordHook, runRecordHook } from "./records.js";

export * from "./http.js";
export * from "./job.js";
export * from "./db.js";
export * from "./base64.js";
export * from "./auth.js";
export * from "./records.js";

/** What a component reports about itself (the reference's `metadata`); trail keeps it in the manifest. */
export type Metadata = {
    display_name?: string;
    description?: string;
    icon?: string;
    guest_runtime?: string;
    version?: string;
    admin_ui_path?: string;
};

/** What `init` receives: the host's version (`undefined` in trail). */
export interface InitArgs {
    version: string | undefined;
}

export interface Config {
    httpHandlers?: readonly (HttpHandler | HttpHandlerInterface)[];
    jobHandlers?: readonly (JobHandler | JobHandlerInterface)[];
    /** Hooks on the Record APIs' writes (trailbase-wasm/records, docs/records.md). */
    recordHooks?: readonly RecordHook[];
    /** Called once in each isolate, when the component is evaluated, before any request or job. */
    init?: (args: InitArgs) => void;
    /** Reported by `initEndpoint.getManifest()`. */
    metadata?: Metadata;
}

/** What the component declares: routes as `[method, path]` and jobs as `[name, cron]`. */
export interface Manifest {
    http: [string, string][];
    jobs: [string, string][];
    /** Record hooks as `[api, event]`, in the order runRecordHook() numbers them (only when there are any). */
    recordHooks?: [string, string][];
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
     * gives its response, `undefined` an empty 200; anything else throws (a TypeError naming the
     * wrong result, or the rejection's reason), which the host answers with 500 and a logged stack.
     */
    complete(value: unknown, rejected: boolean): HostResult;
    /** HttpResponse: its instances are responses the host takes as they are. */
    responseClass: abstract new (...args: never[]) => unknown;
    /** Runs the job `name`; settles when it finishes. */
    runJob(name: string): Promise<void>;
    /** Runs record hook `index` (its position in `manifest().recordHooks`) on a JSON context. */
    runRecordHook(index: number, json: string): string | Promise<string>;
}

/**
 * What defineConfig() returns: the component (export it as `default`), which also carries the
 * three names of the reference SDK's form, `export const { initEndpoint, incomingHandler,
 * sqliteFunctionEndpoint } = defineConfig({...})`. Exported that way, `incomingHandler` is the
 * component trail loads, and its handlers get requests in the reference's style (methods
 * `method()`, `path()`, `url()`, `headers()`; docs/guest-abi.md).
 */
export interface ComponentConfig extends Component {
    initEndpoint: {
        /** The reference's manifest, as JSON: metadata, routes (lower-case methods) and jobs. */
        getManifest(args: string): string;
    };
    incomingHandler: Component & {
        /** The reference's wasi:http entry point: trail never calls it, and it throws. */
        handle(req: unknown, respOutparam: unknown): Promise<void>;
    };
    sqliteFunctionEndpoint: {
        /** The reference's SQLite function endpoint: trail never calls it, and it throws. */
        dispatchScalarFunction(args: unknown): never;
    };
}

type Internal = { _r: HostRequest };

const REQUEST = HttpRequest.prototype;

// host, IPv4 or [IPv6], with an optional port
const AUTHORITY = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

// The request of a component exported in the reference's named form: HttpRequest with the four
// names the reference SDK calls as methods, giving what it gives (HttpRequest's getters of the
// same names give trail's values).
const REFERENCE_REQUEST: object = Object.create(REQUEST, {
    method: {
        value: function method(this: Internal): string {
            return this._r.method.toLowerCase();
        },
    },
    path: {
        value: function path(this: Internal): string {
            return this._r.url;
        },
    },
    url: {
        value: function url(this: Internal): URL {
            const target = this._r.url[0] === "/" ? this._r.url : `/${this._r.url}`;
            // the host header is the client's: only a plain host[:port] names the URL's host
            // (no userinfo, path or query smuggled in); anything else is localhost
            const authority = (this as unknown as HttpRequest).authority();
            const base = AUTHORITY.test(authority) ? authority : "localhost";
            try {
                return new URL(`http://${base}${target}`);
            } catch {
                return new URL(`http://localhost${target}`);
            }
        },
    },
    headers: {
        value: function headers(this: Internal): [string, Uint8Array][] {
            const h = host();
            return this._r.headers.map(([name, value]) => [name, h.encodeUtf8(value)]);
        },
    },
});

/**
 * Declares the component's routes and jobs. Export its result as the module's default export,
 * `export default defineConfig({...})`, or as the reference SDK does,
 * `export const { initEndpoint, incomingHandler, sqliteFunctionEndpoint } = defineConfig({...})`.
 */
export function defineConfig(config: Config): ComponentConfig {
    if (config === null || typeof config !== "object") {
        throw new TypeError("defineConfig() expects an object: { httpHandlers: [...], jobHandlers: [...] }");
    }
    const routes = [...(config.httpHandlers ?? [])].map(toHandler);
    const jobList = [...(config.jobHandlers ?? [])].map(toJob);
    const http: [string, string][] = [];
    const seenRoutes = new Set<string>();
    for (const r of routes) {
        const key = `${r.method} ${r.path}`;
        if (seenRoutes.has(key)) throw new Error(`duplicate route ${key}`);
        seenRoutes.add(key);
        http.push([r.method, r.path]);
    }
    const jobs = new Map<string, JobHandler>();
    for (const j of jobList) {
        if (jobs.has(j.name)) throw new Error(`duplicate job ${j.name}`);
        jobs.set(j.name, j);
    }
    const hooks = [...(config.recordHooks ?? [])];
    for (const h of hooks) {
        if (!(h instanceof RecordHook)) throw new TypeError("recordHooks must hold RecordHook.beforeCreate(...)-style hooks");
    }
    const manifest: Manifest = {
        http,
        jobs: jobList.map((j) => [j.name, j.schedule]),
        ...(hooks.length > 0 ? { recordHooks: hooks.map((h): [string, string] => [h.api, h.event]) } : {}),
    };
    const handlers = routes.map((r) => r.handler);
    const metadata = config.metadata;
    if (config.init !== undefined) {
        if (typeof config.init !== "function") throw new TypeError("defineConfig(): init must be a function");
        config.init({ version: undefined });
    }

    const incomingHandler = Object.assign(component(manifest, handlers, jobs, REFERENCE_REQUEST, hooks), {
        handle(): Promise<void> {
            return Promise.reject(new Error("trail calls dispatch(), not the wasi:http handle()"));
        },
    });
    return Object.assign(component(manifest, handlers, jobs, REQUEST, hooks), {
        initEndpoint: {
            getManifest(args: string): string {
                let subsystems: unknown = null;
                try {
                    subsystems = (JSON.parse(args) as { subsystems?: unknown }).subsystems ?? null;
                } catch {
                    // no arguments: report everything
                }
                const has = (name: string) => !Array.isArray(subsystems) || subsystems.includes(name);
                return JSON.stringify({
                    metadata: { ...metadata, guest_runtime: "ecma_script" },
                    http_handlers: has("http") ? routes.map((r) => ({ method: r.method.toLowerCase(), path: r.path })) : null,
                    job_handlers: has("jobs") ? jobList.map((j) => ({ name: j.name, spec: j.schedule })) : null,
                    sqlite_functions: null,
                });
            },
        },
        incomingHandler,
        sqliteFunctionEndpoint: {
            dispatchScalarFunction(): never {
                throw new Error("trail components define no SQLite functions");
            },
        },
    });
}

function toHandler(r: HttpHandler | HttpHandlerInterface): HttpHandler {
    if (r instanceof HttpHandler) return r;
    if (r === null || typeof r !== "object") {
        throw new TypeError("httpHandlers must hold HttpHandler.get(...)-style routes");
    }
    return new HttpHandler(r.path, r.method, r.handler);
}

function toJob(j: JobHandler | JobHandlerInterface): JobHandler {
    if (j instanceof JobHandler) return j;
    if (j === null || typeof j !== "object") {
        throw new TypeError("jobHandlers must hold JobHandler.hourly(...)-style jobs");
    }
    return new JobHandler(j.name, j.spec, j.handler);
}

// The object trail calls; requests are made with `proto` (HttpRequest's or the reference's).
function component(manifest: Manifest, handlers: readonly HttpHandlerFn[], jobs: Map<string, JobHandler>,
                   proto: object, hooks: readonly RecordHook[]): Component {
    return {
        manifest: () => manifest,
        dispatch(index: number, request: HostRequest): unknown {
            const handler = handlers[index];
            if (handler === undefined) throw new RangeError(`no route with index ${index}`);
            try {
                // what `new HttpRequest(request)` makes, in one object literal (cheaper per request)
                return handler({ __proto__: proto, _r: request } as unknown as HttpRequest);
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
        runRecordHook(index: number, json: string): string | Promise<string> {
            const hook = hooks[index];
            if (hook === undefined) throw new RangeError(`no record hook with index ${index}`);
            return runRecordHook(hook, json);
        },
    };
}

function toResponse(result: HttpResult): HostResult {
    if (result instanceof HttpResponse || typeof result === "string" || result instanceof Uint8Array) return result;
    // no return value (the reference SDK's `void`): an empty 200
    if (result === undefined) return new HttpResponse(null);
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
