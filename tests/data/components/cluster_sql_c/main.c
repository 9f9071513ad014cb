/* A compiled (C) component's statements in cluster mode: the component of
 * tests/e2e/test_cluster_guest.c. It shares the notes table of cluster_util.h's migration with the
 * TS component cluster_sql. Every answer is text, so that the test compares it whole. */
#define TRAILBASE_IMPLEMENTATION
#include "trailbase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* POST /c/notes with the body as the note: "ran: N" or "refused: why". */
static void added(int64_t changed, const char *error, void *ud)
{
    tb_request *req = ud;
    char text[600];
    if (error)
        snprintf(text, sizeof text, "refused: %s", error);
    else
        snprintf(text, sizeof text, "ran: %lld", (long long)changed);
    tb_respond_text(req, 200, text);
}

static void add(tb_request *req)
{
    size_t len;
    const char *body = tb_body(req, &len);
    tb_value p = tb_text(body);
    tb_db_execute("INSERT INTO notes (body) VALUES (?)", &p, 1, added, req);
}

/* GET /c/notes: "columns id,body; 1 from the migration; 2 ..." or "refused: why". */
static void listed(const tb_rows *rows, const char *error, void *ud)
{
    tb_request *req = ud;
    if (error) {
        char text[600];
        snprintf(text, sizeof text, "refused: %s", error);
        tb_respond_text(req, 200, text);
        return;
    }
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    len += (size_t)snprintf(out + len, cap - len, "columns %s,%s", rows->names[0],
                            rows->names[1]);
    for (int r = 0; r < rows->nrows && len < cap - 200; r++)
        len += (size_t)snprintf(out + len, cap - len, "; %lld %s",
                                (long long)tb_rows_get(rows, r, 0)->i, tb_rows_get(rows, r, 1)->s);
    tb_respond_text(req, 200, out);
    free(out);
}

static void list(tb_request *req)
{
    tb_db_query("SELECT id, body FROM notes ORDER BY id", NULL, 0, listed, req);
}

/* GET /c/refused: a write to trail's own tables, refused by the allow-list before it is sent. */
static void refused(tb_request *req)
{
    tb_db_execute("DELETE FROM _user", NULL, 0, added, req);
}

void tb_init(void)
{
    tb_route("POST", "/c/notes", add);
    tb_route("GET", "/c/notes", list);
    tb_route("GET", "/c/refused", refused);
}
