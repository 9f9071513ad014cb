/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm/http: routes (HttpHandler), the request a handler receives (HttpRequest), what
// it returns (HttpResponse, a string, bytes) and how it fails with a status (HttpError).
//
// DESIGN: this code runs for every request inside the component, so the hot path allocates only
// what it must: the host matches the route and decodes path parameters; HttpRequest keeps the
// host's request object and reads its fields on demand (query and headers are scanned only when
// asked); an HttpResponse *is* the host's response shape { status, headers, body }, passed
// through as is, and a string or bytes result goes to the host bare (docs/guest-abi.md).

import { host } from "./host.js";
import type { TrailHost } from "./host.js";
import { StatusCode } from "./status.js";

export { StatusCode } from "./status.js";

/**
 * An HTTP method as it appears in the manifest, upper case; `*` is the catch-all of
 * HttpHandler.all(). Any other method a client may send (`PROPFIND`, ...) is allowed too.
 */
export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" | "*" | (string & {});

/** A method as the reference SDK writes it (lower case); `req.method()` gives any other in lower case too. */
export type Method = "get" | "post" | "head" | "options" | "patch" | "delete" | "put" | "trace" | "connect";

/** The request's scheme as `req.scheme()` reports it. */
export type Scheme = "HTTP" | "HTTPS" | "other";

/**
 * The signed-in user of a request (`req.user()`): `id` is the URL-safe base64 of its 16-byte
 * `_user.id`, `csrf` the token a cookie-authenticated request must echo in a `CSRF-Token` header.
 */
export type User = {
    id: string;
    email: string | null;
    csrf: string;
};

/**
 * `req.method`: read as a property it is the upper-case method (`"GET"`) in a component exported
 * with `export default`; called, `req.method()`, it is the lower-case one (`"get"`) in a component
 * exported in the reference's named form. See "Two request styles" in the SDK's README.
 */
export type RequestMethod = string & (() => Method);
/** `req.path`: the path (property) or, called, the path with its query string (reference). */
export type RequestPath = string & (() => string);
/** `req.url`: the request target (property) or, called, an absolute `URL` (reference). */
export type RequestUrl = string & (() => URL);
/** `req.headers`: `[name, value]` strings (property) or, called, values as UTF-8 bytes (reference). */
export type RequestHeaders = readonly (readonly [string, string])[] & (() => [string, Uint8Array][]);

/** Header name/value pairs, in order; a name may repeat. */
export type HeaderList = [string, string][];

/**
 * Response headers: an object (an array value gives the header once per element, e.g.
 * `{"Set-Cookie": ["a=1", "b=2"]}`) or any iterable of `[name, value]` pairs.
 */
export type HttpHeadersInit =
    | Readonly<Record<string, string | readonly string[]>>
    | Iterable<readonly [string, string]>;

export interface HttpResponseInit {
    /** The status code, 100 to 599 (default 200). */
    status?: number;
    headers?: HttpHeadersInit;
}

/** The request as the host passes it to `dispatch()` (docs/guest-abi.md). */
export interface HostRequest {
    method: string;
    url: string;
    path: string;
    query: string;
    params: Record<string, string>;
    headers: [string, string][];
    body: Uint8Array;
    /** The signed-in caller, resolved by the host (docs/auth.md); null when anonymous. */
    user?: User | null;
    /** Credentials that were sent but do not count: [status, why]; null otherwise. */
    authError?: [number, string] | null;
}

/**
 * The response as the host expects it back from `dispatch()` (docs/guest-abi.md); a bare string
 * or Uint8Array is a 200 with the default content type.
 */
export interface HostResponse {
    status: number;
    headers: HeaderList;
    body: string | Uint8Array;
}

const TEXT = "text/plain; charset=utf-8";
const JSON_TYPE = "application/json";
const OCTETS = "application/octet-stream";

// ---------------------------------------------------------------------------------------------
// Requests

/** The request a handler receives. */
export class HttpRequest {
    // The host's request object, read on demand: a handler that looks at nothing costs nothing.
    private readonly _r: HostRequest;

    constructor(request: HostRequest) {
        this._r = request;
    }

    /**
     * Upper case: `GET`, `POST`, ... (a component exported in the reference's named form gets
     * the method `method()` instead, lower case: `get`, `post`, ...).
     */
    get method(): RequestMethod {
        return this._r.method as RequestMethod;
    }
    /**
     * The request target as received: path and query, e.g. `/search?q=a%20b` (named form:
     * `url()`, an absolute URL object).
     */
    get url(): RequestUrl {
        return this._r.url as RequestUrl;
    }
    /** The path part of `url`, not percent-decoded (named form: `path()`, path and query). */
    get path(): RequestPath {
        return this._r.path as RequestPath;
    }
    /** The raw query string without `?`; `""` when there is none. */
    get query(): string {
        return this._r.query;
    }
    /** The route's path parameters, percent-decoded. */
    get params(): Readonly<Record<string, string>> {
        return this._r.params;
    }
    /**
     * All request headers as `[name, value]` pairs in arrival order; names are lower case (named
     * form: `headers()`, the values as UTF-8 bytes).
     */
    get headers(): RequestHeaders {
        return this._r.headers as unknown as RequestHeaders;
    }

    /** Always `"HTTP"`: trail serves plain HTTP (TLS ends in front of it, if at all). */
    scheme(): Scheme | undefined {
        return "HTTP";
    }
    /** The `host` header as the client sent it (`""` without one). */
    authority(): string {
        return this.getHeader("host") ?? "";
    }
    /** The route's path parameters as `[name, value]` pairs, percent-decoded. */
    pathParams(): [string, string][] {
        return Object.entries(this._r.params);
    }
    /**
     * The signed-in user (from `Authorization: Bearer` or the `auth_token` cookie, checked by
     * trail), or null. See `requireUser` and `requireAdmin` of `trailbase-wasm/auth`.
     */
    user(): User | null {
        return this._r.user ?? null;
    }
    /** Why the credentials the request sent do not count ([401 or 403, message]), or null. */
    authError(): [number, string] | null {
        return this._r.authError ?? null;
    }

    /** The path parameter `name` of the route (`/users/:name` or `/users/{name}`), or null. */
    getPathParam(name: string): string | null {
        const params = this._r.params;
        return hasOwn(params, name) ? params[name]! : null;
    }

    /**
     * The first value of the query parameter `name`, percent-decoded (`+` is a space); `""`
     * for `?name` or `?name=`; null when absent.
     */
    getQueryParam(name: string): string | null {
        const q = this._r.query;
        const n = q.length;
        let start = 0;
        while (start < n) {
            let end = q.indexOf("&", start);
            if (end < 0) end = n;
            let eq = q.indexOf("=", start);
            if (eq < 0 || eq > end) eq = end;
            if (
                needsDecoding(q, start, eq)
                    ? decodeQueryComponent(q.slice(start, eq)) === name
                    : eq - start === name.length && q.startsWith(name, start)
            ) {
                return eq === end ? "" : decodeQueryComponent(q.slice(eq + 1, end));
            }
            start = end + 1;
        }
        return null;
    }

    /** Every value of the query parameter `name`, percent-decoded, in order. */
    getQueryParams(name: string): string[] {
        const out: string[] = [];
        for (const part of this._r.query.split("&")) {
            if (part === "") continue;
            const eq = part.indexOf("=");
            const key = decodeQueryComponent(eq < 0 ? part : part.slice(0, eq));
            if (key === name) out.push(eq < 0 ? "" : decodeQueryComponent(part.slice(eq + 1)));
        }
        return out;
    }

    /**
     * The header `name` (case-insensitive), or null. A header that arrived several times is
     * returned as its values joined with ", " (`cookie` headers with "; ").
     */
    getHeader(name: string): string | null {
        const lname = name.toLowerCase();
        const h = this._r.headers;
        let found: string | null = null;
        for (let i = 0; i < h.length; i++) {
            const pair = h[i]!;
            if (pair[0] === lname) {
                found = found === null ? pair[1] : found + (lname === "cookie" ? "; " : ", ") + pair[1];
            }
        }
        return found;
    }

    /** The raw body (empty when the request has none). */
    body(): Uint8Array {
        return this._r.body;
    }

    /** The body decoded as UTF-8 (invalid sequences become U+FFFD). */
    text(): string {
        const b = this._r.body;
        if (b.length === 0) return "";
        const h = (globalThis as { __trailhost?: TrailHost }).__trailhost;
        return (h === undefined ? host() : h).decodeUtf8(b);
    }

    /**
     * The body parsed as JSON; `undefined` when the request has no body. A body that is not
     * valid JSON throws an HttpError(400), which answers the request with 400 unless the handler
     * catches it.
     */
    json<T = any>(): T {
        // the per-request path of a JSON API: trail parses the bytes itself (the same value,
        // without first making a string for JSON.parse); what it leaves (invalid JSON, say)
        // goes to JSON.parse, for its result or its error message
        const b = this._r.body;
        if (b.length === 0) return undefined as T;
        const h = (globalThis as { __trailhost?: TrailHost }).__trailhost;
        const to = h === undefined ? host() : h;
        const v = to.jsonParse?.(b);
        if (v !== undefined) return v as T;
        const text = to.decodeUtf8(b);
        try {
            return JSON.parse(text) as T;
        } catch (e) {
            // the isolate's memory running out is not the client's error
            if (e instanceof Error && e.name === "InternalError" && e.message === "out of memory") throw e;
            throw new HttpError(400, `invalid JSON in request body: ${(e as Error).message}`);
        }
    }
}

// Object.hasOwn, looked up once (a global and a property read less per call)
const hasOwn = Object.hasOwn;

function needsDecoding(q: string, start: number, end: number): boolean {
    for (let i = start; i < end; i++) {
        const c = q.charCodeAt(i);
        if (c === 37 /* % */ || c === 43 /* + */) return true;
    }
    return false;
}

/** Percent-decodes a query component; `+` is a space; malformed escapes are kept as written. */
function decodeQueryComponent(s: string): string {
    if (s.indexOf("%") < 0) return s.indexOf("+") < 0 ? s : s.replaceAll("+", " ");
    const plain = s.replaceAll("+", " ");
    try {
        return decodeURIComponent(plain);
    } catch {
        return decodeLenient(plain);
    }
}

// decodeURIComponent refuses malformed input; a query string from the network may be anything.
// Decode the valid %XX escapes to bytes, keep the rest, and let UTF-8 decoding replace invalid
// sequences with U+FFFD.
function decodeLenient(s: string): string {
    const h = host();
    const bytes: number[] = [];
    for (let i = 0; i < s.length; ) {
        const c = s.charCodeAt(i);
        if (c === 37 && i + 2 < s.length && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
            bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
            i += 3;
        } else {
            const cp = s.codePointAt(i)!;
            const len = cp > 0xffff ? 2 : 1;
            for (const b of h.encodeUtf8(s.slice(i, i + len))) bytes.push(b);
            i += len;
        }
    }
    return h.decodeUtf8(new Uint8Array(bytes));
}

function isHex(c: number): boolean {
    return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

// ---------------------------------------------------------------------------------------------
// Responses

/**
 * A response with a status, headers and a body. The static helpers set the content type;
 * headers given in `init` come after it, and a `content-type` among them replaces it.
 */
export class HttpResponse {
    declare status: number;
    declare headers: HeaderList;
    declare body: string | Uint8Array;

    /**
     * A string body is sent as `text/plain; charset=utf-8`, bytes as
     * `application/octet-stream`; `null` sends no body.
     */
    constructor(body?: string | Uint8Array | null, init?: HttpResponseInit) {
        const b = body ?? "";
        this.status = checkStatus(init?.status ?? 200);
        this.headers = headerList(body == null ? null : typeof b === "string" ? TEXT : OCTETS, init?.headers);
        this.body = b;
    }

    /** `data` as JSON (`application/json`). A bigint is written as a JSON number. */
    static json(data: unknown, init?: HttpResponseInit): HttpResponse {
        // trail writes plain data itself, several times faster than the engine's
        // JSON.stringify (the same text; undefined when the value needs JSON.stringify's full
        // semantics); inlined, as this is the per-request path
        const h = (globalThis as { __trailhost?: { jsonStringify?: (v: unknown) => string | undefined } }).__trailhost;
        let body = h === undefined ? undefined : h.jsonStringify?.(data);
        if (body === undefined) body = stringifyJson(data);
        // without init (the usual case) what make() builds, in one object literal
        if (init === undefined) {
            return { __proto__: RESPONSE, status: 200, headers: [["content-type", "application/json"]], body } as unknown as HttpResponse;
        }
        return make(body, JSON_TYPE, init);
    }

    /** Plain text (`text/plain; charset=utf-8`); bytes are sent as they are, with that type. */
    static text(text: string | Uint8Array, init?: HttpResponseInit): HttpResponse {
        if (init === undefined) {
            return { __proto__: RESPONSE, status: 200, headers: [["content-type", "text/plain; charset=utf-8"]], body: text } as unknown as HttpResponse;
        }
        return make(text, TEXT, init);
    }

    /**
     * 200 with `body` (the reference's `HttpResponse.ok`): a string is sent as
     * `text/plain; charset=utf-8`, bytes as `application/octet-stream`; no body, no content type.
     */
    static ok(body?: string | Uint8Array): HttpResponse {
        return new HttpResponse(body ?? null);
    }

    /**
     * `status` with `body` (the reference's `HttpResponse.status`), content type as for `ok()`.
     * (The static `HttpResponse.status()` and a response's `status` field are distinct.)
     */
    static status(status: StatusCode | number, body?: string | Uint8Array): HttpResponse {
        return new HttpResponse(body ?? null, { status });
    }

    /** Replaces the body (the headers stay as they are); returns this response. */
    setBody(body: string | Uint8Array): this {
        if (typeof body !== "string" && !(body instanceof Uint8Array)) {
            throw new TypeError("setBody() takes a string or a Uint8Array");
        }
        this.body = body;
        return this;
    }

    /**
     * Adds the header `name` (after those the response has; a name may repeat); a Uint8Array
     * value is read as UTF-8. Returns this response.
     */
    setHeader(name: string, value: string | Uint8Array): this {
        const v = value instanceof Uint8Array ? host().decodeUtf8(value) : value;
        if (typeof name !== "string" || typeof v !== "string") {
            throw new TypeError(`header names and values must be strings (${String(name)})`);
        }
        // the helpers may share or freeze a headers array: copy it before the first change
        if (Object.isFrozen(this.headers)) this.headers = this.headers.slice();
        this.headers.push([name, v]);
        return this;
    }

    /** HTML (`text/html; charset=utf-8`). */
    static html(html: string, init?: HttpResponseInit): HttpResponse {
        return make(html, "text/html; charset=utf-8", init);
    }

    /** Bytes (`application/octet-stream` unless `init.headers` sets a content type). */
    static bytes(data: Uint8Array | ArrayBuffer, init?: HttpResponseInit): HttpResponse {
        return make(data instanceof Uint8Array ? data : new Uint8Array(data), OCTETS, init);
    }

    /** An empty response: 204 No Content unless `init.status` says otherwise. */
    static noContent(init?: HttpResponseInit): HttpResponse {
        const r = make("", null, init);
        if (init?.status === undefined) r.status = 204;
        return r;
    }

    /** A redirect to `location` (302 Found by default; 301, 303, 307, 308 also make sense). */
    static redirect(location: string, status = 302): HttpResponse {
        return make("", null, { status, headers: [["location", location]] });
    }
}

const RESPONSE = HttpResponse.prototype;

// An HttpResponse without running its constructor: an object literal with its prototype.
function make(body: string | Uint8Array, contentType: string | null, init: HttpResponseInit | undefined): HttpResponse {
    return {
        __proto__: RESPONSE,
        status: init === undefined || init.status === undefined ? 200 : checkStatus(init.status),
        headers: init === undefined ? (contentType === null ? [] : [["content-type", contentType]]) : headerList(contentType, init.headers),
        body,
    } as unknown as HttpResponse;
}

function checkStatus(status: number): number {
    if (!Number.isInteger(status) || status < 100 || status > 599) {
        throw new RangeError(`HTTP status must be an integer from 100 to 599, got ${String(status)}`);
    }
    return status;
}

function headerList(contentType: string | null, init: HttpHeadersInit | undefined): HeaderList {
    if (init === undefined) return contentType === null ? [] : [["content-type", contentType]];
    const out: HeaderList = [];
    let hasType = false;
    const add = (name: string, value: string) => {
        if (typeof name !== "string" || typeof value !== "string") {
            throw new TypeError(`header names and values must be strings (${String(name)})`);
        }
        if (!hasType && name.length === 12 && name.toLowerCase() === "content-type") hasType = true;
        out.push([name, value]);
    };
    if (typeof (init as Iterable<unknown>)[Symbol.iterator] === "function") {
        for (const [name, value] of init as Iterable<readonly [string, string]>) add(name, value);
    } else {
        const obj = init as Readonly<Record<string, string | readonly string[]>>;
        for (const name of Object.keys(obj)) {
            const value = obj[name]!;
            if (Array.isArray(value)) for (const v of value) add(name, v);
            else add(name, value as string);
        }
    }
    if (!hasType && contentType !== null) out.unshift(["content-type", contentType]);
    return out;
}

// JSON.stringify, a bigint written as a JSON number (HttpResponse.json tried trail's own first).
function stringifyJson(data: unknown): string {
    let s: string | undefined;
    try {
        s = JSON.stringify(data);
    } catch (e) {
        if (!(e instanceof TypeError) || !/bigint/i.test(e.message)) throw e;
        s = JSON.stringify(data, bigintReplacer);
    }
    return s === undefined ? "null" : s;
}

// Only on the slow path (data holds a bigint, e.g. a 64-bit INTEGER from the database).
function bigintReplacer(_key: string, value: unknown): unknown {
    if (typeof value !== "bigint") return value;
    const raw = (JSON as { rawJSON?: (text: string) => unknown }).rawJSON;
    return raw !== undefined ? raw(value.toString()) : value.toString();
}

// ---------------------------------------------------------------------------------------------
// Errors

const STATUS_TEXT: Record<number, string> = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 410: "Gone",
    413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

/**
 * Throw this from a handler to answer with `status` and the JSON body `{"error": message}`.
 * `headers` are added to the response (e.g. `Retry-After` with a 429).
 */
export class HttpError extends Error {
    readonly status: number;
    readonly headers: HttpHeadersInit | undefined;

    constructor(status: number, message?: string, init?: { headers?: HttpHeadersInit; cause?: unknown }) {
        super(message ?? STATUS_TEXT[status] ?? `HTTP ${status}`, init?.cause === undefined ? undefined : { cause: init.cause });
        this.name = "HttpError";
        this.status = checkStatus(status);
        this.headers = init?.headers;
    }

    /** `new HttpError(status, message)`, as the reference SDK writes it. */
    static from(status: StatusCode | number, message?: string): HttpError {
        return new HttpError(status, message);
    }

    /** The response this error answers with. */
    toResponse(): HttpResponse {
        return HttpResponse.json({ error: this.message }, { status: this.status, headers: this.headers });
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

/** What a handler may return (or resolve to); `undefined` (no return) is a 200 with no body. */
export type HttpResult = string | Uint8Array | HttpResponse | undefined | void;

/** A request handler. */
export type HttpHandlerFn = (req: HttpRequest) => HttpResult | Promise<HttpResult>;

/** The reference SDK's names for a handler and what it returns. */
export type HttpHandlerCallback = HttpHandlerFn;
export type ResponseType = HttpResult;

/** What `defineConfig({ httpHandlers })` takes: an HttpHandler, or any object of this shape. */
export interface HttpHandlerInterface {
    path: string;
    method: Method | HttpMethod | string;
    handler: HttpHandlerFn;
}

// A method as a client may send it: an HTTP token of letters (RFC 9110 allows more, but every
// method in use, WebDAV's included, is letters only).
const METHOD_TOKEN = /^[A-Za-z]{1,32}$/;

/**
 * A route: a path, a method and a handler. Paths are matched by trail: literal segments,
 * parameters `:name` or `{name}` (one segment each, available through `getPathParam`), and a
 * final `*` that matches the rest of the path.
 */
export class HttpHandler implements HttpHandlerInterface {
    /** Upper case (`GET`, `PROPFIND`, ...), or `*` for HttpHandler.all(). */
    readonly method: HttpMethod;
    readonly path: string;
    readonly handler: HttpHandlerFn;

    /**
     * A route for `method`, in either case (`"get"` as the reference writes it, `"GET"`,
     * `"PROPFIND"`, ... any method a client may send), or `"*"` for every method without a
     * route of its own on the same path.
     */
    constructor(path: string, method: Method | HttpMethod | string, handler: HttpHandlerFn) {
        if (typeof path !== "string" || path[0] !== "/" || /[\s?#]/.test(path)) {
            throw new TypeError(`route path must start with "/" and contain no spaces, "?" or "#": ${JSON.stringify(path)}`);
        }
        if (typeof method !== "string" || (method !== "*" && !METHOD_TOKEN.test(method))) {
            throw new TypeError(`the method of route ${path} must be a method name such as "get" or "PROPFIND", or "*": ${JSON.stringify(method)}`);
        }
        const m = method.toUpperCase() as HttpMethod;
        if (typeof handler !== "function") {
            throw new TypeError(`the handler of ${m} ${path} is not a function`);
        }
        this.method = m;
        this.path = path;
        this.handler = handler;
    }

    static get(path: string, handler: HttpHandlerFn): HttpHandler {
        return new HttpHandler(path, "GET", handler);
    }
    static post(path: string, handler: HttpHandlerFn): HttpHandler {
        return new HttpHandler(path, "POST", handler);
    }
    static put(path: string, handler: HttpHandlerFn): HttpHandler {
        return new HttpHandler(path, "PUT", handler);
    }
    static patch(path: string, handler: HttpHandlerFn): HttpHandler {
        return new HttpHandler(path, "PATCH", handler);
    }
    static delete(path: string, handler: HttpHandlerFn): HttpHandler {
        return new HttpHandler(path, "DELETE", handler);
    }
    static head(path: string, handler: HttpHandlerFn): HttpHandler {
        return new HttpHandler(path, "HEAD", handler);
    }
    static options(path: string, handler: HttpHandlerFn): HttpHandler {
        return new HttpHandler(path, "OPTIONS", handler);
    }
    /**
     * Every method without a route of its own on the same path: the usual ones and any other a
     * client sends (`PROPFIND`, `MKCOL`, `LOCK`, ...).
     */
    static all(path: string, handler: HttpHandlerFn): HttpHandler {
        return new HttpHandler(path, "*", handler);
    }
}

/**
 * Stands in for the reference SDK's `OutgoingResponse` (a wasi:http resource, which trail does
 * not have), so that code importing it loads; constructing one throws. Return an HttpResponse.
 */
export class OutgoingResponse {
    constructor() {
        throw new TypeError("OutgoingResponse (wasi:http) is not available in trail: return an HttpResponse");
    }
}
