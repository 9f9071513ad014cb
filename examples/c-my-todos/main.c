/* My Todos in C: the signed-in caller (tb_req_user), each user's own rows only, and a route for
 * admins (docs/auth.md), with trailbase-guest-c; the same routes and answers as
 * examples/rust/my-todos. Sign in with `POST /api/auth/v1/login`, then send the access token as
 * `Authorization: Bearer ...` (or the `auth_token` cookie, plus the `CSRF-Token` header on a
 * POST). The table: migrations/0001_todos.sql. */
#define TRAILBASE_IMPLEMENTATION
#include "trailbase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends text (no escaping: JSON punctuation) to the JSON being built. */
static void put(char **json, size_t *len, const char *text)
{
    size_t n = strlen(text);
    *json = realloc(*json, *len + n + 1);
    memcpy(*json + *len, text, n + 1);
    *len += n;
}

/* Appends s as a JSON string, or null when s is NULL. */
static void put_str(char **json, size_t *len, const char *s)
{
    if (s)
        tb_json_append_string(json, len, s);
    else
        put(json, len, "null");
}

/* GET and POST /me -> {"user":{"id","email","csrf_token"} or null,"auth_error":why or null} */
static void me(tb_request *req)
{
    const tb_user *user = tb_req_user(req);
    char *json = NULL;
    size_t len = 0;
    put(&json, &len, "{\"user\":");
    if (user) {
        put(&json, &len, "{\"id\":");
        put_str(&json, &len, user->id);
        put(&json, &len, ",\"email\":");
        put_str(&json, &len, user->email);
        put(&json, &len, ",\"csrf_token\":");
        put_str(&json, &len, user->csrf_token);
        put(&json, &len, "}");
    } else {
        put(&json, &len, "null");
    }
    put(&json, &len, ",\"auth_error\":");
    put_str(&json, &len, tb_req_auth_error(req, NULL));
    put(&json, &len, "}");
    tb_respond_json(req, 200, json);
    free(json);
}

/* GET /todos -> the caller's todos' texts, ["a1","a2"] */
static void todos_rows(const tb_rows *rows, const char *error, void *ud)
{
    tb_request *req = ud;
    if (error) {
        tb_respond_error(req, 500, error);
        return;
    }
    char *json = NULL;
    size_t len = 0;
    put(&json, &len, "[");
    for (int r = 0; r < rows->nrows; r++) {
        if (r > 0) put(&json, &len, ",");
        tb_json_append_string(&json, &len, tb_rows_get(rows, r, 0)->s);
    }
    put(&json, &len, "]");
    tb_respond_json(req, 200, json);
    free(json);
}

static void my_todos(tb_request *req)
{
    const tb_user *user = tb_require_user(req);
    if (user == NULL) return; /* answered: 401 or 403 */
    unsigned char id[16];
    tb_user_id_bytes(user, id);
    tb_db_query("SELECT text FROM todos WHERE owner = ? ORDER BY id",
                (tb_value[]){tb_blob(id, sizeof id)}, 1, todos_rows, req);
}

/* POST /todos with the text as the body -> 201 */
static void added(int64_t changed, const char *error, void *ud)
{
    (void)changed;
    if (error)
        tb_respond_error(ud, 500, error);
    else
        tb_respond_text(ud, 201, "created");
}

static void add_todo(tb_request *req)
{
    const tb_user *user = tb_require_user(req);
    if (user == NULL) return;
    size_t n;
    const char *text = tb_body(req, &n);
    if (n == 0) {
        tb_respond_error(req, 400, "text missing");
        return;
    }
    unsigned char id[16];
    tb_user_id_bytes(user, id);
    tb_db_execute("INSERT INTO todos (owner, text) VALUES (?, ?)",
                  (tb_value[]){tb_blob(id, sizeof id), tb_text(text)}, 2, added, req);
}

/* GET /admin -> "hello admin EMAIL" for admins (401 or 403 for everyone else) */
static void hello_admin(tb_request *req, const tb_user *user, void *ud)
{
    (void)ud;
    char text[300];
    snprintf(text, sizeof text, "hello admin %s", user->email ? user->email : "");
    tb_respond_text(req, 200, text);
}

static void admin(tb_request *req)
{
    tb_require_admin(req, hello_admin, NULL);
}

void tb_init(void)
{
    tb_route("GET", "/me", me);
    tb_route("POST", "/me", me);
    tb_route("GET", "/todos", my_todos);
    tb_route("POST", "/todos", add_todo);
    tb_route("GET", "/admin", admin);
}
