/* records/caller.c: the caller of a Record API request, from the auth subsystem (bearer token or
 * auth_token cookie, with the CSRF check for cookie-authenticated writes: auth/auth.h). */
#include "records/records_internal.h"

#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "http/http.h"

int rec_user_from_auth(const http_request *req, rec_user *out, const char **why)
{
    memset(out, 0, sizeof *out);
    auth_caller c;
    auth_request_caller(auth_ctx_published(), req, &c);
    if (!c.signed_in) {
        if (c.error != NULL) {
            *why = c.error;
            return c.error_status ? c.error_status : 401;
        }
        return 0;
    }
    uint8_t id[24];
    size_t n = 0;
    if (!rec__b64url_decode(c.claims.sub, strlen(c.claims.sub), id, &n) || n != 16) {
        *why = "invalid token subject";
        return 401;
    }
    out->signed_in = true;
    memcpy(out->id, id, 16);
    out->admin = c.claims.admin;
    snprintf(out->email, sizeof out->email, "%s", c.claims.email);
    return 0;
}
