// trailbase-wasm's base64 helpers, as the reference SDK exports them from its root module:
// standard base64 (`+/`, padded) and its URL-safe form (`-_`, padded as well, as the reference
// writes it). Decoding accepts either padding and refuses anything that is not base64.

const CHUNK = 0x2000; // bytes per String.fromCharCode call: far below any engine's argument limit

/** The bytes as a base64 string. */
export function base64Encode(bytes: Uint8Array): string {
    let binary = "";
    for (let i = 0; i < bytes.length; i += CHUNK) {
        binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
    }
    return btoa(binary);
}

/** The bytes of a base64 string (a DOMException-style Error for anything else). */
export function base64Decode(base64: string): Uint8Array {
    const binary = atob(base64);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
}

/** The bytes as URL-safe base64: `-` and `_` for `+` and `/`. */
export function urlSafeBase64Encode(bytes: Uint8Array): string {
    return base64Encode(bytes).replace(/[+/]/g, (c) => (c === "+" ? "-" : "_"));
}

/** The bytes of a URL-safe base64 string (standard base64 is accepted too). */
export function urlSafeBase64Decode(base64: string): Uint8Array {
    return base64Decode(base64.replace(/[-_]/g, (c) => (c === "-" ? "+" : "/")));
}
