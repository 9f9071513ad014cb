// Globals that trail installs in every component's JS context (src/guest/prelude.js and the
// engine's own: atob, btoa, queueMicrotask, performance), for projects compiled with
// `lib: ["es2023"]` (no DOM). Each entry point of trailbase-wasm references this file, so
// importing the SDK is enough to have them typed.
//
// DESIGN: declared in the shape of TypeScript's DOM library (interface + `declare var`), so a
// project that also enables `lib: ["dom"]` still compiles its own code (TypeScript reports the
// overlapping declarations inside .d.ts files unless `skipLibCheck` is on, as in the template).
// Only what trail provides is declared: a name typed here and missing at run time is worse than
// a compile error.

// ---- console ----
interface Console {
    assert(condition?: boolean, ...data: any[]): void;
    count(label?: string): void;
    countReset(label?: string): void;
    debug(...data: any[]): void;
    dir(item?: any, options?: any): void;
    error(...data: any[]): void;
    group(...data: any[]): void;
    groupEnd(): void;
    info(...data: any[]): void;
    log(...data: any[]): void;
    table(tabularData?: any, properties?: string[]): void;
    time(label?: string): void;
    timeEnd(label?: string): void;
    timeLog(label?: string, ...data: any[]): void;
    trace(...data: any[]): void;
    warn(...data: any[]): void;
}
declare var console: Console;

// ---- timers ----
declare function setTimeout(handler: (...args: any[]) => void, timeout?: number, ...args: any[]): number;
declare function clearTimeout(id: number | undefined): void;
declare function setInterval(handler: (...args: any[]) => void, timeout?: number, ...args: any[]): number;
declare function clearInterval(id: number | undefined): void;
declare function setImmediate(handler: (...args: any[]) => void, ...args: any[]): number;
declare function clearImmediate(id: number | undefined): void;
declare function queueMicrotask(callback: () => void): void;

// ---- performance ----
interface Performance {
    now(): number;
}
declare var performance: Performance;

// ---- encoding ----
interface TextEncoderEncodeIntoResult {
    read: number;
    written: number;
}
interface TextEncoder {
    readonly encoding: string;
    encode(input?: string): Uint8Array<ArrayBuffer>;
    encodeInto(source: string, destination: Uint8Array): TextEncoderEncodeIntoResult;
}
declare var TextEncoder: {
    prototype: TextEncoder;
    new (): TextEncoder;
};
interface TextDecodeOptions {
    stream?: boolean;
}
interface TextDecoderOptions {
    fatal?: boolean;
    ignoreBOM?: boolean;
}
interface TextDecoder {
    readonly encoding: string;
    readonly fatal: boolean;
    readonly ignoreBOM: boolean;
    decode(input?: ArrayBuffer | ArrayBufferView, options?: TextDecodeOptions): string;
}
declare var TextDecoder: {
    prototype: TextDecoder;
    new (label?: string, options?: TextDecoderOptions): TextDecoder;
};
declare function atob(data: string): string;
declare function btoa(data: string): string;

// ---- URL ----
interface URLSearchParams {
    readonly size: number;
    append(name: string, value: string): void;
    delete(name: string, value?: string): void;
    get(name: string): string | null;
    getAll(name: string): string[];
    has(name: string, value?: string): boolean;
    set(name: string, value: string): void;
    sort(): void;
    toString(): string;
    forEach(callbackfn: (value: string, key: string, parent: URLSearchParams) => void): void;
    [Symbol.iterator](): IterableIterator<[string, string]>;
    entries(): IterableIterator<[string, string]>;
    keys(): IterableIterator<string>;
    values(): IterableIterator<string>;
}
declare var URLSearchParams: {
    prototype: URLSearchParams;
    new (init?: string[][] | Record<string, string> | string | URLSearchParams): URLSearchParams;
};
interface URL {
    hash: string;
    host: string;
    hostname: string;
    href: string;
    readonly origin: string;
    password: string;
    pathname: string;
    port: string;
    protocol: string;
    search: string;
    readonly searchParams: URLSearchParams;
    username: string;
    toJSON(): string;
    toString(): string;
}
declare var URL: {
    prototype: URL;
    new (url: string | URL, base?: string | URL): URL;
    canParse(url: string | URL, base?: string | URL): boolean;
};

// ---- crypto ----
interface Crypto {
    getRandomValues<T extends ArrayBufferView | null>(array: T): T;
    randomUUID(): `${string}-${string}-${string}-${string}-${string}`;
}
declare var crypto: Crypto;

// ---- structuredClone ----
declare function structuredClone<T = any>(value: T, options?: { transfer?: any[] }): T;

// ---- fetch (outbound HTTP through the host; src/guest/prelude.js) ----
type HeadersInit = [string, string][] | Record<string, string> | Headers;
interface Headers {
    append(name: string, value: string): void;
    delete(name: string): void;
    get(name: string): string | null;
    getSetCookie(): string[];
    has(name: string): boolean;
    set(name: string, value: string): void;
    forEach(callbackfn: (value: string, key: string, parent: Headers) => void, thisArg?: any): void;
    [Symbol.iterator](): IterableIterator<[string, string]>;
    entries(): IterableIterator<[string, string]>;
    keys(): IterableIterator<string>;
    values(): IterableIterator<string>;
}
declare var Headers: {
    prototype: Headers;
    new (init?: HeadersInit): Headers;
};
type BodyInit = string | ArrayBuffer | ArrayBufferView | URLSearchParams;
interface Body {
    readonly bodyUsed: boolean;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array<ArrayBuffer>>;
    json(): Promise<any>;
    text(): Promise<string>;
}
interface RequestInit {
    body?: BodyInit | null;
    headers?: HeadersInit;
    method?: string;
    /** trail: milliseconds before the request fails (0 or absent: the host's default). */
    timeout?: number;
}
interface Request extends Body {
    readonly headers: Headers;
    readonly method: string;
    readonly url: string;
    /** trail: the request's timeout in milliseconds (0: the host's default). */
    readonly timeout: number;
    clone(): Request;
}
declare var Request: {
    prototype: Request;
    new (input: string | URL | Request, init?: RequestInit): Request;
};
interface ResponseInit {
    headers?: HeadersInit;
    status?: number;
    statusText?: string;
}
interface Response extends Body {
    readonly headers: Headers;
    readonly ok: boolean;
    readonly redirected: boolean;
    readonly status: number;
    readonly statusText: string;
    readonly type: string;
    readonly url: string;
    clone(): Response;
}
declare var Response: {
    prototype: Response;
    new (body?: BodyInit | null, init?: ResponseInit): Response;
    error(): Response;
    json(data: any, init?: ResponseInit): Response;
    redirect(url: string | URL, status?: number): Response;
};
/** Outbound HTTP(S) through the host; rejects with a TypeError on a connection failure or timeout. */
declare function fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
