/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm/auth: who is calling, and one-line guards for handlers that need a signed-in
// user or an admin (the reference's Rust guest has `require_admin`).
//
// trail resolves the caller before the handler runs (docs/auth.md): from `Authorization: Bearer`
// or the `auth_token` cookie, its signature (Ed25519) and expiry checked by the host. A request
// authenticated by cookie that changes state (any method but GET, HEAD, OPTIONS) counts only with
// a `CSRF-Token` header equal to the user's `csrf`, so `req.user()` is null for a forged one.

import { query } from "./db.js";
import { HttpError } from "./http.js";
import type { HttpRequest, User } from "./http.js";
import { urlSafeBase64Decode } from "./base64.js";

export type { User } from "./http.js";

/**
 * The signed-in user of `req`; otherwise throws an `HttpError`: 401 `{"error": ...}` for an
 * anonymous request or an invalid or expired token, 403 for a cookie without its CSRF token.
 *
 * ```ts
 * HttpHandler.get("/my/todos", async (req) => {
 *   const user = requireUser(req);
 *   ...
 * });
 * ```
 */
export function requireUser(req: HttpRequest): User {
    const user = req.user();
    if (user !== null) return user;
    const why = req.authError();
    throw new HttpError(why?.[0] ?? 401, why?.[1] ?? "sign in first (no auth token was sent)");
}

/** Whether `user` is an admin now (read from `_user`, not from the token, which may be stale). */
export async function isAdmin(user: User): Promise<boolean> {
    const rows = await query('SELECT admin FROM "_user" WHERE id = ?', [userIdBytes(user)]);
    return rows.length > 0 && Number(rows[0]![0]) > 0;
}

/**
 * The signed-in user of `req` when it is an admin; otherwise throws an `HttpError` (401 as
 * `requireUser`, 403 `{"error": "admins only"}` for a user who is not one).
 */
export async function requireAdmin(req: HttpRequest): Promise<User> {
    const user = requireUser(req);
    if (!(await isAdmin(user))) throw new HttpError(403, "admins only");
    return user;
}

/** The 16 bytes of a user's id (`_user.id`, a BLOB), e.g. to bind as a query parameter. */
export function userIdBytes(user: User): Uint8Array {
    return urlSafeBase64Decode(user.id);
}
