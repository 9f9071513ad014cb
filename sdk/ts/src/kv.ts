/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm/kv: the key-value store that every worker and every component of a trail process
// shares, for what module state cannot do (module state lives in one isolate per worker): rate
// limits, counters, caches, flags. In memory, bounded by `kv { max_mb }` in the config; it starts
// empty at every start of trail.
//
// The API is the reference system's (`open()`, and a Store with get/set/delete/exists), plus what a
// correct counter needs: an atomic `increment`, expiry (`ttlMs`) and `listKeys`. Every call is
// synchronous and atomic: two workers incrementing the same key never lose an update.

import { host, hostWith } from "./host.js";

export interface SetOptions {
    /** Milliseconds until the entry expires (and disappears); none by default. */
    ttlMs?: number;
}

export interface IncrementOptions {
    /**
     * Milliseconds until the counter expires, set when this increment creates it; an existing
     * counter keeps its expiry. So `increment(key, 1, { ttlMs: 60_000 })` counts within fixed
     * one-minute windows.
     */
    ttlMs?: number;
}

/** A value given to the store: bytes, or a string (stored as its UTF-8). */
export type Value = Uint8Array | string;

export class Store {
    /** The process's store (every Store is a view of the same one). */
    static open(): Store {
        return new Store();
    }

    /** The value under key, or undefined when there is none (or it expired). */
    get(key: string): Uint8Array | undefined {
        return hostWith("kvGet").kvGet(key);
    }

    /** The value under key as UTF-8 text, or undefined. */
    getText(key: string): string | undefined {
        const bytes = this.get(key);
        return bytes === undefined ? undefined : host().decodeUtf8(bytes);
    }

    /**
     * Sets key to value (replacing its expiry: none unless `ttlMs` is given). Throws when the
     * store is full (`kv.max_mb`), a key is empty or over 4096 bytes, or a value over 16 MiB.
     */
    set(key: string, value: Value, options?: SetOptions): void {
        hostWith("kvSet").kvSet(key, value, options?.ttlMs ?? 0);
    }

    /** Removes key; true if it was there. */
    delete(key: string): boolean {
        return hostWith("kvDelete").kvDelete(key);
    }

    /** True if key is there and has not expired. */
    exists(key: string): boolean {
        return hostWith("kvExists").kvExists(key);
    }

    /**
     * Adds delta (an integer, 1 by default) to the counter under key and returns the new value,
     * atomically across every worker. A missing key counts from 0. The value is kept as decimal
     * text (`getText(key)` reads it); a key holding anything else throws, as does a sum beyond
     * Number.MAX_SAFE_INTEGER.
     */
    increment(key: string, delta = 1, options?: IncrementOptions): number {
        return hostWith("kvIncrement").kvIncrement(key, delta, options?.ttlMs ?? 0);
    }

    /** The keys that start with prefix (all keys by default), in no particular order. Throws
     * when more than 10,000 match. */
    listKeys(prefix = ""): string[] {
        return hostWith("kvListKeys").kvListKeys(prefix);
    }
}

/** The process's store. */
export function open(): Store {
    return new Store();
}
