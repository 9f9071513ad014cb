/* auth/api.c: the auth API under /api/auth/v1/ and the sign-in page under /_/auth/, served by
 * trail itself, before the router, so that no component route can shadow them.
 *
 * DESIGN: paths, JSON shapes, cookies and answers follow the reference system (docs/auth.md). A
 * JSON body gets JSON (tokens in the body); a form body (a browser's form, the sign-in page) gets
 * the tokens as HttpOnly, SameSite=Strict cookies and a redirect to its redirect_uri when it has
 * one. Answers that could tell whether an address has an account (register, reset, verify
 * trigger) are the same either way, and a login for an unknown address still spends an Argon2id
 * verification, so its time does not tell either. Failed logins are counted per account and
 * every login per client address (auth/ratelimit.c); over a limit the answer is 429 before any
 * hash is computed. Every statement goes through cluster/appdb: on one node on the worker's own
 * database connection, in cluster mode on the cluster's leader (the worker waits for each round
 * trip). The login rate limits stay in this process's memory: per node in a cluster. */
#include "auth/auth_internal.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cluster/appdb.h"
#include "db/db.h"
#include "http/http.h"

#define API_PREFIX "/api/auth/v1"
#define UI_PREFIX  "/_/auth"

#define VERIFY_TTL_S (4 * 3600)
#define RESET_TTL_S  (3600)

/* ---- the context ---- */

static const auth_ctx *g_published; /* set before workers start; read-only after */

void auth_ctx_publish(const auth_ctx *a)
{
    g_published = a;
}

const auth_ctx *auth_ctx_published(void)
{
    return g_published;
}

static char *dup_or_empty(const char *s)
{
    return tr_strdup(s ? s : "");
}

auth_ctx *auth_ctx_new(const auth_opts *o, const auth_keys *keys, struct db_conn *(*db_of)(void))
{
    auth_ctx *a = tr_calloc(1, sizeof *a);
    a->keys = keys;
    a->db_of = db_of;
    a->auth_ttl_s = o->auth_token_ttl_sec;
    a->refresh_ttl_s = o->refresh_token_ttl_sec;
    a->require_verification = o->require_email_verification;
    a->per_account = o->login_attempts_per_account;
    a->per_address = o->login_attempts_per_address;
    a->min_password = o->password_min_length;
    a->site_url = dup_or_empty(o->site_url);
    size_t n = strlen(a->site_url);
    while (n > 0 && a->site_url[n - 1] == '/')
        a->site_url[--n] = '\0';
    a->smtp_host = dup_or_empty(o->smtp_host);
    a->smtp_port = o->smtp_port;
    a->smtp_username = dup_or_empty(o->smtp_username);
    a->smtp_password = dup_or_empty(o->smtp_password);
    a->smtp_encryption = dup_or_empty(o->smtp_encryption);
    a->sender_address = dup_or_empty(o->sender_address);
    a->sender_name = dup_or_empty(o->sender_name);
    for (int i = 0; i < 3; i++) {
        a->tpl_subject[i] = dup_or_empty(o->subject[i]);
        a->tpl_body[i] = dup_or_empty(o->body[i]);
    }
    return a;
}

void auth_ctx_free(auth_ctx *a)
{
    if (a == NULL) return;
    tr_free(a->site_url);
    tr_free(a->smtp_host);
    tr_free(a->smtp_username);
    if (a->smtp_password) sodium_memzero(a->smtp_password, strlen(a->smtp_password));
    tr_free(a->smtp_password);
    tr_free(a->smtp_encryption);
    tr_free(a->sender_address);
    tr_free(a->sender_name);
    for (int i = 0; i < 3; i++) {
        tr_free(a->tpl_subject[i]);
        tr_free(a->tpl_body[i]);
    }
    tr_free(a);
}

/* ---- the caller of a request ---- */

static bool slice_eq(http_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* The value of cookie name in req's Cookie headers; false when absent. */
static bool cookie_get(const http_request *req, const char *name, http_slice *out)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        if (h->name.len != 6 || strncasecmp(h->name.ptr, "cookie", 6) != 0) continue;
        const char *p = h->value.ptr, *end = p + h->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *st = p;
            while (p < end && *p != ';')
                p++;
            const char *eq = memchr(st, '=', (size_t)(p - st));
            if (eq && (size_t)(eq - st) == nl && memcmp(st, name, nl) == 0) {
                out->ptr = eq + 1;
                out->len = (size_t)(p - eq - 1);
                if (out->len >= 2 && out->ptr[0] == '"' && out->ptr[out->len - 1] == '"') {
                    out->ptr++;
                    out->len -= 2;
                }
                return true;
            }
        }
    }
    return false;
}

static bool bearer_get(const http_request *req, http_slice *out)
{
    const http_header *h = http_request_header(req, "authorization");
    if (h == NULL || h->value.len < 7 || strncasecmp(h->value.ptr, "Bearer ", 7) != 0) return false;
    out->ptr = h->value.ptr + 7;
    out->len = h->value.len - 7;
    while (out->len > 0 && out->ptr[0] == ' ') {
        out->ptr++;
        out->len--;
    }
    return true;
}

static bool safe_method(http_slice m)
{
    return slice_eq(m, "GET") || slice_eq(m, "HEAD") || slice_eq(m, "OPTIONS");
}

/* Each worker remembers the last tokens it verified (the same client sends the same token with
 * every request until it refreshes it): a token is the same bytes under the same key, so its
 * signature needs no second check; its expiry is checked on every use. */
#define TOKEN_CACHE     16
#define TOKEN_CACHE_MAX 1024 /* longer tokens are verified every time */
typedef struct token_entry {
    const auth_keys *keys; /* NULL: empty */
    size_t len;
    char token[TOKEN_CACHE_MAX];
    auth_claims claims;
} token_entry;
static _Thread_local token_entry *tls_tokens; /* TOKEN_CACHE entries, made on first use */
static _Thread_local unsigned tls_next;

static int verify_cached(const auth_keys *k, const char *tok, size_t len, int64_t now,
                         auth_claims *out)
{
    if (len > TOKEN_CACHE_MAX) return auth_jwt_verify(k, tok, len, now, out);
    if (tls_tokens == NULL) tls_tokens = tr_calloc(TOKEN_CACHE, sizeof *tls_tokens);
    for (unsigned i = 0; i < TOKEN_CACHE; i++) {
        token_entry *e = &tls_tokens[i];
        if (e->keys == k && e->len == len && memcmp(e->token, tok, len) == 0) {
            if (e->claims.exp <= now) return TR_ETIMEDOUT;
            *out = e->claims;
            return 0;
        }
    }
    int rc = auth_jwt_verify(k, tok, len, now, out);
    if (rc == 0) {
        token_entry *e = &tls_tokens[tls_next++ % TOKEN_CACHE];
        e->keys = k;
        e->len = len;
        memcpy(e->token, tok, len);
        e->claims = *out;
    }
    return rc;
}

void auth_request_caller_forget(void)
{
    tr_free(tls_tokens);
    tls_tokens = NULL;
}

void auth_request_caller(const auth_ctx *a, const http_request *req, auth_caller *out)
{
    out->signed_in = false;
    out->via_cookie = false;
    out->error = NULL;
    out->error_status = 0;
    if (a == NULL) return;
    http_slice tok;
    bool cookie = false;
    if (!bearer_get(req, &tok)) {
        if (!cookie_get(req, AUTH_COOKIE_AUTH_TOKEN, &tok)) return;
        cookie = true;
    }
    int rc = verify_cached(a->keys, tok.ptr, tok.len, tr_wall_ms() / 1000, &out->claims);
    if (rc < 0) {
        out->error = rc == TR_ETIMEDOUT ? "the auth token has expired" : "invalid auth token";
        out->error_status = 401;
        return;
    }
    if (cookie && !safe_method(req->method)) {
        /* a browser attaches cookies to requests other sites make it send: a state-changing one
         * counts only with the token that only our own pages can read */
        const http_header *h = http_request_header(req, AUTH_HEADER_CSRF_TOKEN);
        size_t cl = strlen(out->claims.csrf_token);
        if (h == NULL || h->value.len != cl ||
            sodium_memcmp(h->value.ptr, out->claims.csrf_token, cl) != 0) {
            out->error = "missing or wrong CSRF-Token header (a request authenticated by cookie "
                         "that changes state must carry the csrf_token)";
            out->error_status = 403;
            return;
        }
    }
    out->signed_in = true;
    out->via_cookie = cookie;
}

/* ---- responses ---- */

static void send_json(http_response *res, int status, tr_buf *b)
{
    http_response_header(res, "Cache-Control", "no-store", 8);
    http_response_send(res, status, "application/json", b->data, b->len);
}

static void send_text(http_response *res, int status, const char *text)
{
    http_response_header(res, "Cache-Control", "no-store", 8);
    http_response_send(res, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void send_error(http_response *res, int status, const char *msg)
{
    http_response_header(res, "Cache-Control", "no-store", 8);
    http_response_send_error(res, status, msg);
}

static void set_cookie(const auth_ctx *a, http_response *res, const char *name, const char *val,
                       int64_t max_age)
{
    bool secure = strncmp(a->site_url, "https:", 6) == 0;
    char *c = tr_asprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", name, val,
                          (long long)max_age, secure ? "; Secure" : "");
    http_response_header(res, "Set-Cookie", c, strlen(c));
    tr_free(c);
}

/* A redirect target from a client: only a path on this site ("/x", not "//host"). */
static bool redirect_ok(const char *r)
{
    if (r == NULL || r[0] != '/' || r[1] == '/' || r[1] == '\\') return false;
    for (const char *p = r; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == 0x7F) return false;
    return true;
}

static void redirect(http_response *res, const char *to)
{
    http_response_header(res, "Location", to, strlen(to));
    http_response_send(res, 303, NULL, NULL, 0);
}

/* ---- request bodies ---- */

typedef struct api_req {
    const http_request *req;
    http_response *res;
    const auth_ctx *a;
    db_conn *db;
    auth_fields *body; /* NULL until read */
    bool form;         /* the body was a form: answer with cookies and redirects */
    http_slice arg;    /* the path after a route's prefix ("/sessions/{id}") */
    char peer[64];
    tr_error err;
} api_req;

/* Reads the body as JSON or a form into r->body; answers 400/413/415 itself on failure. */
static bool read_body(api_req *r)
{
    const http_request *req = r->req;
    if (req->body.len > AUTH_MAX_BODY) {
        send_error(r->res, 413, "the request body is larger than 8192 bytes");
        return false;
    }
    const http_header *ct = http_request_header(req, "content-type");
    bool form = ct != NULL && ct->value.len >= 33 &&
                strncasecmp(ct->value.ptr, "application/x-www-form-urlencoded", 33) == 0;
    r->body = tr_arena_alloc(req->arena, sizeof *r->body);
    int rc = form ? auth__form_fields(req->body.ptr, req->body.len, r->body)
                  : auth__json_fields(req->body.ptr, req->body.len, r->body);
    if (rc < 0) {
        send_error(r->res, 400,
                   form ? "malformed form body"
                        : "the body must be a JSON object of strings (or a form)");
        return false;
    }
    r->form = form;
    return true;
}

/* A string field that must be there: answers 400 naming it when it is not. */
static const char *need(api_req *r, const char *key)
{
    const char *v = auth__field_str(r->body, key);
    if (v == NULL) {
        char msg[128];
        snprintf(msg, sizeof msg, "missing %s", key);
        send_error(r->res, 400, msg);
    }
    return v;
}

/* A failed statement: 500, or in cluster mode 503 when the cluster's database could not be
 * reached (no leader within ADB_LEADER_WAIT_MS, a lost connection or leader): the client may try
 * again. */
static void internal(api_req *r)
{
    tr_log_error("auth: %s %.*s: %s", "request", (int)r->req->path.len, r->req->path.ptr,
                 r->err.msg[0] ? r->err.msg : "failed");
    int code = r->db ? adb_errcode(db_handle(r->db)) : SQLITE_OK;
    if (adb_cluster_mode() &&
        (code == SQLITE_BUSY || code == SQLITE_IOERR || code == SQLITE_ABORT)) {
        http_response_header(r->res, "Retry-After", "1", 1);
        send_error(r->res, 503, "the cluster's database is not reachable now; try again");
        return;
    }
    send_error(r->res, 500, "internal error");
}

/* The signed-in user of the request, or answers 401/403 and returns false. */
static bool need_user(api_req *r, auth_caller *c, auth_user *u)
{
    auth_request_caller(r->a, r->req, c);
    if (!c->signed_in) {
        send_error(r->res, c->error_status ? c->error_status : 401,
                   c->error ? c->error : "not signed in");
        return false;
    }
    uint8_t id[16];
    size_t n = 0;
    char sub[32];
    snprintf(sub, sizeof sub, "%s", c->claims.sub);
    size_t sl = strlen(sub);
    while (sl > 0 && sub[sl - 1] == '=')
        sub[--sl] = '\0';
    if (sodium_base642bin(id, sizeof id, sub, sl, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != 16) {
        send_error(r->res, 401, "invalid auth token");
        return false;
    }
    int rc = auth__user_by_id(r->db, id, u, &r->err);
    if (rc == TR_ENOTFOUND) {
        send_error(r->res, 401, "the user no longer exists");
        return false;
    }
    if (rc < 0) {
        internal(r);
        return false;
    }
    return true;
}

/* ---- tokens ---- */

/* Answers a login: tokens as JSON, or as cookies for a form. */
static void respond_tokens(api_req *r, const auth_user *u)
{
    char refresh[AUTH_REFRESH_LEN + 1];
    if (auth__session_new(r->db, u->id, r->a->refresh_ttl_s, refresh, &r->err) < 0) {
        internal(r);
        return;
    }
    auth_claims c;
    auth__claims_for(u, tr_wall_ms() / 1000, r->a->auth_ttl_s, &c);
    tr_buf tok = TR_BUF_INIT;
    auth_jwt_sign(r->a->keys, &c, &tok);
    tr_buf_append_char(&tok, '\0');
    if (r->form) {
        set_cookie(r->a, r->res, AUTH_COOKIE_AUTH_TOKEN, tok.data, r->a->auth_ttl_s);
        set_cookie(r->a, r->res, AUTH_COOKIE_REFRESH_TOKEN, refresh, r->a->refresh_ttl_s);
        const char *to = auth__field_str(r->body, "redirect_uri");
        if (redirect_ok(to))
            redirect(r->res, to);
        else
            send_text(r->res, 200, "logged in");
    } else {
        tr_buf b = TR_BUF_INIT;
        tr_buf_append_str(&b, "{\"auth_token\":");
        auth__json_str(&b, tok.data, tok.len - 1);
        tr_buf_append_str(&b, ",\"refresh_token\":");
        auth__json_str(&b, refresh, strlen(refresh));
        tr_buf_append_str(&b, ",\"csrf_token\":");
        auth__json_str(&b, c.csrf_token, strlen(c.csrf_token));
        tr_buf_append_char(&b, '}');
        send_json(r->res, 200, &b);
        tr_buf_free(&b);
    }
    sodium_memzero(tok.data, tok.len);
    tr_buf_free(&tok);
    sodium_memzero(refresh, sizeof refresh);
}

/* A hash that matches no password, to spend the same time for unknown accounts. */
static char g_dummy[AUTH_HASH_BYTES];
static pthread_once_t g_dummy_once = PTHREAD_ONCE_INIT;
static void make_dummy(void)
{
    char pw[33];
    auth__random_alnum(pw, 32);
    if (auth_password_hash(pw, 32, g_dummy) < 0) g_dummy[0] = '\0';
}

static void do_login(api_req *r)
{
    if (!read_body(r)) return;
    const char *email_in = auth__field_str(r->body, "email");
    if (email_in == NULL) email_in = auth__field_str(r->body, "email_or_username");
    if (email_in == NULL) {
        send_error(r->res, 400, "missing email");
        return;
    }
    const char *pw = need(r, "password");
    if (pw == NULL) return;
    if (auth__rate_hit("addr", r->peer, r->a->per_address)) {
        send_error(r->res, 429, "too many login attempts from this address; try again in a minute");
        return;
    }
    char email[AUTH_MAX_EMAIL + 2];
    if (auth__email_normalize(email_in, email) < 0) {
        send_error(r->res, 400, "not an email address");
        return;
    }
    if (auth__rate_exceeded("acct", email, r->a->per_account)) {
        send_error(r->res, 429, "too many failed logins for this account; try again in a minute");
        return;
    }
    size_t pl = strlen(pw);
    auth_user u;
    int rc = auth__user_by_email(r->db, email, &u, &r->err);
    if (rc < 0 && rc != TR_ENOTFOUND) {
        internal(r);
        return;
    }
    bool ok;
    if (rc == 0 && pl <= AUTH_MAX_PASSWORD) {
        ok = auth_password_check(u.hash, pw, pl);
    } else {
        pthread_once(&g_dummy_once, make_dummy);
        auth_password_check(g_dummy, pw, TR_MIN(pl, AUTH_MAX_PASSWORD));
        ok = false;
    }
    if (!ok) {
        auth__rate_hit("acct", email, r->a->per_account);
        send_error(r->res, 401, "wrong email or password");
        return;
    }
    auth__rate_clear("acct", email);
    if (r->a->require_verification && !u.verified) {
        send_error(r->res, 403,
                   "the email address is not verified yet: open the link in the "
                   "verification mail (GET /api/auth/v1/verify_email/trigger sends "
                   "another)");
        return;
    }
    respond_tokens(r, &u);
}

static void send_link(api_req *r, int kind, const char *to, const char *code)
{
    char link[1024];
    if (kind == AUTH_MAIL_VERIFY)
        snprintf(link, sizeof link, "%s" API_PREFIX "/verify_email/confirm/%s", r->a->site_url,
                 code);
    else if (kind == AUTH_MAIL_RESET)
        snprintf(link, sizeof link, "%s" UI_PREFIX "/reset_password?code=%s", r->a->site_url, code);
    else
        snprintf(link, sizeof link, "%s" API_PREFIX "/change_email/confirm/%s", r->a->site_url,
                 code);
    tr_error err = {0};
    if (auth__mail_send(r->a, kind, to, link, code, &err) < 0)
        tr_log_warn("auth: mail to %s not sent: %s", to, err.msg);
}

static void start_verification(api_req *r, const auth_user *u)
{
    char code[AUTH_CODE_LEN + 1];
    if (auth__code_new(r->db, u->id, "verify", u->email, VERIFY_TTL_S, code, &r->err) < 0) {
        tr_log_warn("auth: verification code for %s: %s", u->email, r->err.msg);
        return;
    }
    send_link(r, AUTH_MAIL_VERIFY, u->email, code);
}

static void do_register(api_req *r)
{
    if (!read_body(r)) return;
    const char *email_in = need(r, "email");
    if (email_in == NULL) return;
    const char *pw = need(r, "password");
    if (pw == NULL) return;
    const char *rep = auth__field_str(r->body, "password_repeat");
    char email[AUTH_MAX_EMAIL + 2];
    if (auth__email_normalize(email_in, email) < 0) {
        send_error(r->res, 400, "not an email address");
        return;
    }
    if (rep != NULL && strcmp(rep, pw) != 0) {
        send_error(r->res, 400, "passwords don't match");
        return;
    }
    const char *why = auth__password_policy(r->a, pw);
    if (why != NULL) {
        send_error(r->res, 400, why);
        return;
    }
    if (auth__rate_hit("register", r->peer, r->a->per_address)) {
        send_error(r->res, 429, "too many registrations from this address; try again in a minute");
        return;
    }
    uint8_t id[16];
    /* hashed either way (auth_user_create hashes first): an existing address costs the same */
    int rc = auth_user_create(r->db, email, pw, !r->a->require_verification, false, id, &r->err);
    if (rc == 0 && r->a->require_verification) {
        auth_user u;
        if (auth__user_by_id(r->db, id, &u, &r->err) == 0) start_verification(r, &u);
    } else if (rc < 0 && rc != TR_ECONFLICT) {
        internal(r);
        return;
    }
    /* the same answer whether the address was new or taken */
    const char *to = auth__field_str(r->body, "redirect_uri");
    if (r->form && redirect_ok(to))
        redirect(r->res, to);
    else
        send_text(r->res, 200, "registered");
}

static void do_refresh(api_req *r)
{
    if (!read_body(r)) return;
    const char *rt = need(r, "refresh_token");
    if (rt == NULL) return;
    uint8_t id[16];
    int rc = strlen(rt) > 256 ? TR_ENOTFOUND : auth__session_user(r->db, rt, id, &r->err);
    auth_user u;
    if (rc == 0) rc = auth__user_by_id(r->db, id, &u, &r->err);
    if (rc == TR_ENOTFOUND) {
        send_error(r->res, 401, "invalid or revoked refresh token");
        return;
    }
    if (rc < 0) {
        internal(r);
        return;
    }
    auth_claims c;
    auth__claims_for(&u, tr_wall_ms() / 1000, r->a->auth_ttl_s, &c);
    tr_buf tok = TR_BUF_INIT, b = TR_BUF_INIT;
    auth_jwt_sign(r->a->keys, &c, &tok);
    tr_buf_append_str(&b, "{\"auth_token\":");
    auth__json_str(&b, tok.data, tok.len);
    tr_buf_append_str(&b, ",\"csrf_token\":");
    auth__json_str(&b, c.csrf_token, strlen(c.csrf_token));
    tr_buf_append_char(&b, '}');
    send_json(r->res, 200, &b);
    tr_buf_free(&b);
    tr_buf_free(&tok);
}

/* The refresh token of the request: the refresh-token header or the refresh_token cookie. */
static bool request_refresh(const http_request *req, char out[257])
{
    const http_header *h = http_request_header(req, AUTH_HEADER_REFRESH_TOKEN);
    http_slice s;
    if (h != NULL)
        s = h->value;
    else if (!cookie_get(req, AUTH_COOKIE_REFRESH_TOKEN, &s))
        return false;
    if (s.len == 0 || s.len > 256) return false;
    memcpy(out, s.ptr, s.len);
    out[s.len] = '\0';
    return true;
}

static void clear_cookies(api_req *r)
{
    set_cookie(r->a, r->res, AUTH_COOKIE_AUTH_TOKEN, "", 0);
    set_cookie(r->a, r->res, AUTH_COOKIE_REFRESH_TOKEN, "", 0);
}

static void do_logout_get(api_req *r)
{
    char rt[257];
    if (request_refresh(r->req, rt)) {
        auth__session_delete(r->db, rt, &r->err);
    } else {
        auth_caller c;
        auth_user u;
        auth_request_caller(r->a, r->req, &c);
        if (c.signed_in && need_user(r, &c, &u)) {
            int64_t n;
            auth_sessions_delete_user(r->db, u.id, &n, &r->err);
        } else if (c.signed_in) {
            return; /* need_user answered */
        }
    }
    clear_cookies(r);
    char to[1024] = "";
    if (r->req->query.len > 13 && r->req->query.len < sizeof to &&
        memcmp(r->req->query.ptr, "redirect_uri=", 13) == 0) {
        auth_fields f;
        if (auth__form_fields(r->req->query.ptr, r->req->query.len, &f) == 0) {
            const char *v = auth__field_str(&f, "redirect_uri");
            if (redirect_ok(v)) snprintf(to, sizeof to, "%s", v);
        }
    }
    if (to[0])
        redirect(r->res, to);
    else
        send_text(r->res, 200, "logged out");
}

static void do_logout_post(api_req *r)
{
    if (!read_body(r)) return;
    const char *rt = need(r, "refresh_token");
    if (rt == NULL) return;
    int rc = strlen(rt) > 256 ? 0 : auth__session_delete(r->db, rt, &r->err);
    if (rc < 0 && rc != TR_ENOTFOUND) {
        internal(r);
        return;
    }
    send_text(r->res, 200, "");
}

static void do_status(api_req *r)
{
    auth_caller c;
    auth_request_caller(r->a, r->req, &c);
    char rt[257];
    bool has_rt = request_refresh(r->req, rt);
    uint8_t id[16];
    auth_user u;
    tr_buf b = TR_BUF_INIT, tok = TR_BUF_INIT;
    auth_claims claims;
    bool ok = false;
    if (has_rt && auth__session_user(r->db, rt, id, &r->err) == 0 &&
        auth__user_by_id(r->db, id, &u, &r->err) == 0 &&
        (!r->a->require_verification || u.verified)) {
        /* a live session: a fresh token (and cookie, when the token came as one) */
        auth__claims_for(&u, tr_wall_ms() / 1000, r->a->auth_ttl_s, &claims);
        auth_jwt_sign(r->a->keys, &claims, &tok);
        tr_buf_append_char(&tok, '\0');
        if (!http_request_header(r->req, AUTH_HEADER_REFRESH_TOKEN))
            set_cookie(r->a, r->res, AUTH_COOKIE_AUTH_TOKEN, tok.data, r->a->auth_ttl_s);
        tok.len--;
        ok = true;
    } else if (!has_rt && c.signed_in) {
        claims = c.claims;
        auth_jwt_sign(r->a->keys, &claims, &tok);
        ok = true;
    }
    if (ok) {
        tr_buf_append_str(&b, "{\"auth_token\":");
        auth__json_str(&b, tok.data, tok.len);
        tr_buf_append_str(&b, ",\"refresh_token\":");
        if (has_rt)
            auth__json_str(&b, rt, strlen(rt));
        else
            tr_buf_append_str(&b, "null");
        tr_buf_append_str(&b, ",\"csrf_token\":");
        auth__json_str(&b, claims.csrf_token, strlen(claims.csrf_token));
        tr_buf_append_char(&b, '}');
    } else {
        tr_buf_append_str(&b, "{\"auth_token\":null,\"refresh_token\":null,\"csrf_token\":null}");
    }
    send_json(r->res, 200, &b);
    tr_buf_free(&b);
    tr_buf_free(&tok);
}

static void do_change_password(api_req *r)
{
    auth_caller c;
    auth_user u;
    if (!need_user(r, &c, &u) || !read_body(r)) return;
    const char *old = need(r, "old_password");
    if (old == NULL) return;
    const char *nw = need(r, "new_password");
    if (nw == NULL) return;
    const char *rep = auth__field_str(r->body, "new_password_repeat");
    if (rep != NULL && strcmp(rep, nw) != 0) {
        send_error(r->res, 400, "passwords don't match");
        return;
    }
    const char *why = auth__password_policy(r->a, nw);
    if (why != NULL) {
        send_error(r->res, 400, why);
        return;
    }
    if (auth__rate_exceeded("acct", u.email, r->a->per_account)) {
        send_error(r->res, 429, "too many failed attempts for this account; try again in a minute");
        return;
    }
    if (strlen(old) > AUTH_MAX_PASSWORD || !auth_password_check(u.hash, old, strlen(old))) {
        auth__rate_hit("acct", u.email, r->a->per_account);
        send_error(r->res, 400, "invalid old password");
        return;
    }
    if (auth__user_set_password(r->db, u.id, nw, &r->err) < 0) {
        internal(r);
        return;
    }
    send_text(r->res, 200, "password changed");
}

static void do_change_email_request(api_req *r)
{
    auth_caller c;
    auth_user u;
    if (!need_user(r, &c, &u) || !read_body(r)) return;
    const char *csrf = need(r, "csrf_token");
    if (csrf == NULL) return;
    size_t cl = strlen(c.claims.csrf_token);
    if (strlen(csrf) != cl || sodium_memcmp(csrf, c.claims.csrf_token, cl) != 0) {
        send_error(r->res, 400, "invalid CSRF token");
        return;
    }
    const char *old_in = auth__field_str(r->body, "old_email");
    const char *new_in = need(r, "new_email");
    if (new_in == NULL) return;
    char nw[AUTH_MAX_EMAIL + 2], old[AUTH_MAX_EMAIL + 2];
    if (auth__email_normalize(new_in, nw) < 0) {
        send_error(r->res, 400, "not an email address");
        return;
    }
    if (old_in != NULL && (auth__email_normalize(old_in, old) < 0 || strcmp(old, u.email) != 0)) {
        send_error(r->res, 400, "old_email is not the account's address");
        return;
    }
    char code[AUTH_CODE_LEN + 1];
    if (auth__code_new(r->db, u.id, "email", nw, VERIFY_TTL_S, code, &r->err) < 0) {
        internal(r);
        return;
    }
    send_link(r, AUTH_MAIL_CHANGE_EMAIL, nw, code);
    send_text(r->res, 200, "Verification email sent");
}

/* The code in the path after the route's prefix, or answers 400. */
static bool path_code(api_req *r, char code[AUTH_CODE_LEN + 1])
{
    size_t n = r->arg.len;
    const char *p = r->arg.ptr;
    if (n != AUTH_CODE_LEN) {
        send_error(r->res, 400, "invalid code");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) {
            send_error(r->res, 400, "invalid code");
            return false;
        }
        code[i] = ch;
    }
    code[n] = '\0';
    return true;
}

static void do_change_email_confirm(api_req *r)
{
    char code[AUTH_CODE_LEN + 1], email[AUTH_MAX_EMAIL + 2];
    uint8_t id[16];
    if (!path_code(r, code)) return;
    int rc = auth__code_take(r->db, "email", code, id, email, &r->err);
    if (rc == TR_ENOTFOUND) {
        send_error(r->res, 400, "invalid or expired code");
        return;
    }
    if (rc == 0) rc = auth__user_set_email(r->db, id, email, &r->err);
    if (rc == TR_ECONFLICT) {
        send_error(r->res, 409, "the address belongs to another account");
        return;
    }
    if (rc < 0) {
        internal(r);
        return;
    }
    send_text(r->res, 200, "email changed");
}

static void do_verify_trigger(api_req *r)
{
    auth_fields f;
    const char *e = NULL;
    if (auth__form_fields(r->req->query.ptr, r->req->query.len, &f) == 0)
        e = auth__field_str(&f, "email");
    char email[AUTH_MAX_EMAIL + 2];
    if (e == NULL || auth__email_normalize(e, email) < 0) {
        send_error(r->res, 400, "missing or invalid ?email=");
        return;
    }
    if (auth__rate_hit("mail", email, 3) ||
        auth__rate_hit("mailaddr", r->peer, r->a->per_address)) {
        send_error(r->res, 429, "too many verification mails asked for; try again in a minute");
        return;
    }
    auth_user u;
    if (auth__user_by_email(r->db, email, &u, &r->err) == 0 && !u.verified)
        start_verification(r, &u);
    send_text(r->res, 200, "Verification email sent");
}

static void do_verify_confirm(api_req *r)
{
    char code[AUTH_CODE_LEN + 1], email[AUTH_MAX_EMAIL + 2];
    uint8_t id[16];
    if (!path_code(r, code)) return;
    int rc = auth__code_take(r->db, "verify", code, id, email, &r->err);
    if (rc == TR_ENOTFOUND) {
        send_error(r->res, 400, "invalid or expired code");
        return;
    }
    if (rc == 0) rc = auth__user_set_verified(r->db, id, true, &r->err);
    if (rc < 0) {
        internal(r);
        return;
    }
    send_text(r->res, 200, "email verified");
}

static void do_reset_request(api_req *r)
{
    if (!read_body(r)) return;
    const char *e = need(r, "email");
    if (e == NULL) return;
    char email[AUTH_MAX_EMAIL + 2];
    if (auth__email_normalize(e, email) < 0) {
        send_error(r->res, 400, "not an email address");
        return;
    }
    if (auth__rate_hit("mail", email, 3) ||
        auth__rate_hit("mailaddr", r->peer, r->a->per_address)) {
        send_error(r->res, 429, "too many reset mails asked for; try again in a minute");
        return;
    }
    auth_user u;
    if (auth__user_by_email(r->db, email, &u, &r->err) == 0) {
        char code[AUTH_CODE_LEN + 1];
        if (auth__code_new(r->db, u.id, "reset", NULL, RESET_TTL_S, code, &r->err) == 0)
            send_link(r, AUTH_MAIL_RESET, u.email, code);
    }
    send_text(r->res, 200, "Password reset email sent");
}

static void do_reset_update(api_req *r)
{
    if (!read_body(r)) return;
    const char *code = auth__field_str(r->body, "password_reset_code");
    if (code == NULL) code = auth__field_str(r->body, "password_reset_token");
    if (code == NULL) {
        send_error(r->res, 400, "missing password_reset_code");
        return;
    }
    const char *pw = need(r, "password");
    if (pw == NULL) return;
    const char *rep = auth__field_str(r->body, "password_repeat");
    if (rep != NULL && strcmp(rep, pw) != 0) {
        send_error(r->res, 400, "passwords don't match");
        return;
    }
    const char *why = auth__password_policy(r->a, pw);
    if (why != NULL) {
        send_error(r->res, 400, why);
        return;
    }
    uint8_t id[16];
    char email[AUTH_MAX_EMAIL + 2];
    int rc = strlen(code) != AUTH_CODE_LEN
                 ? TR_ENOTFOUND
                 : auth__code_take(r->db, "reset", code, id, email, &r->err);
    if (rc == TR_ENOTFOUND) {
        send_error(r->res, 401, "invalid or expired reset code");
        return;
    }
    int64_t n;
    /* a reset proves the mailbox: the address counts as verified, and old sessions end */
    if (rc == 0) rc = auth__user_set_password(r->db, id, pw, &r->err);
    if (rc == 0) rc = auth__user_set_verified(r->db, id, true, &r->err);
    if (rc == 0) rc = auth_sessions_delete_user(r->db, id, &n, &r->err);
    if (rc < 0) {
        internal(r);
        return;
    }
    send_text(r->res, 200, "Password reset");
}

/* GET /sessions: the caller's sessions; DELETE /sessions/{id}: ends one of them. */
static void do_sessions(api_req *r, bool del)
{
    auth_caller c;
    auth_user u;
    if (!need_user(r, &c, &u)) return;
    sqlite3 *h = db_handle(r->db);
    adb_stmt *st = NULL;
    const char *sql = del ? "DELETE FROM _session WHERE user = ?1 AND id = ?2"
                          : "SELECT id, created, expires FROM _session WHERE user = ?1 AND "
                            "expires > unixepoch() ORDER BY id";
    if (adb_prepare(h, sql, &st) != SQLITE_OK) {
        tr_error_set(&r->err, TR_ESQL, "%s", adb_errmsg(h));
        internal(r);
        return;
    }
    adb_bind_blob(st, 1, u.id, 16);
    if (del) {
        char id[24], *end;
        long long sid = -1;
        if (r->arg.len < sizeof id) {
            memcpy(id, r->arg.ptr, r->arg.len);
            id[r->arg.len] = '\0';
            sid = strtoll(id, &end, 10);
            if (*end) sid = -1;
        }
        adb_bind_int64(st, 2, sid);
        int s = adb_step(st);
        adb_finalize(st);
        if (s != SQLITE_DONE) {
            tr_error_set(&r->err, TR_ESQL, "%s", adb_errmsg(h));
            internal(r);
        } else if (adb_changes(h) == 0) {
            send_error(r->res, 404, "no such session");
        } else {
            send_text(r->res, 200, "session deleted");
        }
        return;
    }
    tr_buf b = TR_BUF_INIT;
    tr_buf_append_char(&b, '[');
    int s;
    bool first = true;
    while ((s = adb_step(st)) == SQLITE_ROW) {
        tr_buf_printf(&b, "%s{\"id\":%lld,\"created\":%lld,\"expires\":%lld}", first ? "" : ",",
                      (long long)adb_column_int64(st, 0), (long long)adb_column_int64(st, 1),
                      (long long)adb_column_int64(st, 2));
        first = false;
    }
    adb_finalize(st);
    if (s != SQLITE_DONE) {
        tr_error_set(&r->err, TR_ESQL, "%s", adb_errmsg(h));
        tr_buf_free(&b);
        internal(r);
        return;
    }
    tr_buf_append_char(&b, ']');
    send_json(r->res, 200, &b);
    tr_buf_free(&b);
}

static void do_sessions_list(api_req *r)
{
    do_sessions(r, false);
}

static void do_session_delete(api_req *r)
{
    do_sessions(r, true);
}

/* ---- dispatch ---- */

bool auth_path_is_mine(const char *path, size_t len)
{
    static const char api[] = API_PREFIX, ui[] = UI_PREFIX;
    return (len >= sizeof api - 1 && memcmp(path, api, sizeof api - 1) == 0 &&
            (len == sizeof api - 1 || path[sizeof api - 1] == '/')) ||
           (len >= sizeof ui - 1 && memcmp(path, ui, sizeof ui - 1) == 0 &&
            (len == sizeof ui - 1 || path[sizeof ui - 1] == '/'));
}

static void serve_ui(api_req *r)
{
    http_response_header(r->res, "Cache-Control", "no-store", 8);
    static const char csp[] = "default-src 'none'; script-src 'unsafe-inline'; style-src "
                              "'unsafe-inline'; connect-src 'self'; form-action 'self'; "
                              "frame-ancestors 'none'; base-uri 'none'";
    http_response_header(r->res, "Content-Security-Policy", csp, sizeof csp - 1);
    http_response_header(r->res, "X-Frame-Options", "DENY", 4);
    http_response_header(r->res, "Referrer-Policy", "no-referrer", 11);
    http_response_send(r->res, 200, "text/html; charset=utf-8", auth__ui_html,
                       strlen(auth__ui_html));
}

static bool path_is(const http_request *req, const char *p)
{
    return slice_eq(req->path, p);
}

static bool path_starts(const http_request *req, const char *p)
{
    size_t n = strlen(p);
    return req->path.len > n && memcmp(req->path.ptr, p, n) == 0;
}

/* The API's routes, under API_PREFIX. A path ending in '/' is a prefix: the rest of the request's
 * path is the handler's r->arg. "GET" also answers HEAD. */
typedef struct api_route {
    const char *path;
    const char *method;
    void (*fn)(api_req *r);
} api_route;

static const api_route g_routes[] = {
    {"/login", "POST", do_login},
    {"/register", "POST", do_register},
    {"/refresh", "POST", do_refresh},
    {"/logout", "GET", do_logout_get},
    {"/logout", "POST", do_logout_post},
    {"/status", "GET", do_status},
    {"/change_password", "POST", do_change_password},
    {"/change_email/request", "POST", do_change_email_request},
    {"/change_email/confirm/", "GET", do_change_email_confirm},
    {"/verify_email/trigger", "GET", do_verify_trigger},
    {"/verify_email/confirm/", "GET", do_verify_confirm},
    {"/reset_password/request", "POST", do_reset_request},
    {"/reset_password/update", "POST", do_reset_update},
    {"/sessions", "GET", do_sessions_list},
    {"/sessions/", "DELETE", do_session_delete},
};

void auth_http_handle(const http_request *req, http_response *res, void *ud)
{
    api_req r = {.req = req, .res = res, .a = ud};
    if (r.a == NULL) {
        send_error(res, 404, "not found");
        return;
    }
    bool get = slice_eq(req->method, "GET") || req->is_head;
    if (path_starts(req, UI_PREFIX) || path_is(req, UI_PREFIX)) {
        static const char *const pages[] = {"/login",   "/register",       "/logout",
                                            "/profile", "/reset_password", "/"};
        bool page = false;
        for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
            size_t n = strlen(pages[i]);
            page |= req->path.len == sizeof UI_PREFIX - 1 + n &&
                    memcmp(req->path.ptr + sizeof UI_PREFIX - 1, pages[i], n) == 0;
        }
        if (!get) {
            http_response_header(res, "Allow", "GET, HEAD", 9);
            send_error(res, 405, "method not allowed");
        } else if (page) {
            serve_ui(&r);
        } else {
            send_error(res, 404, "not found");
        }
        return;
    }
    r.db = r.a->db_of ? r.a->db_of() : NULL;
    if (r.db == NULL) {
        send_error(res, 503, "no database on this worker");
        return;
    }
    http_response_peer(res, r.peer, sizeof r.peer);
    const char *path = req->path.ptr + sizeof API_PREFIX - 1;
    size_t len = req->path.len - (sizeof API_PREFIX - 1);
    char allow[64] = "";
    for (size_t i = 0; i < sizeof g_routes / sizeof g_routes[0]; i++) {
        const api_route *rt = &g_routes[i];
        size_t n = strlen(rt->path);
        bool prefix = rt->path[n - 1] == '/';
        if (prefix ? len <= n || memcmp(path, rt->path, n) != 0
                   : len != n || memcmp(path, rt->path, n) != 0)
            continue;
        if (strcmp(rt->method, "GET") == 0 ? get : slice_eq(req->method, rt->method)) {
            r.arg = (http_slice){path + (prefix ? n : len), prefix ? len - n : 0};
            rt->fn(&r);
            return;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "",
                 strcmp(rt->method, "GET") == 0 ? "GET, HEAD" : rt->method);
    }
    if (allow[0] == '\0') {
        send_error(res, 404, "not found");
        return;
    }
    http_response_header(res, "Allow", allow, strlen(allow));
    send_error(res, 405, "method not allowed");
}
