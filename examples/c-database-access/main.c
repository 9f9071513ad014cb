/* Database Access in C: counting, searching and adding todos (the seeded table of
 * migrations/0001_todos.sql, as in examples/database-access), with trailbase-guest-c. Every
 * statement is asynchronous: the handler answers from the statement's callback. */
#define TRAILBASE_IMPLEMENTATION
#include "trailbase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET /stats/todos -> {"total":6,"done":3,"pending":3} */
static void stats_rows(const tb_rows *rows, const char *error, void *ud)
{
    tb_request *req = ud;
    if (error) {
        tb_respond_error(req, 500, error);
        return;
    }
    int64_t total = tb_rows_get(rows, 0, 0)->i, done = tb_rows_get(rows, 0, 1)->i;
    char json[128];
    snprintf(json, sizeof json, "{\"total\":%lld,\"done\":%lld,\"pending\":%lld}",
             (long long)total, (long long)done, (long long)(total - done));
    tb_respond_json(req, 200, json);
}

static void stats(tb_request *req)
{
    tb_db_query("SELECT COUNT(*) AS total, SUM(completed) AS done FROM todos", NULL, 0,
                stats_rows, req);
}

/* GET /todos/search?q=... -> {"results":["Buy milk", ...]} (a parameterized LIKE) */
static void search_rows(const tb_rows *rows, const char *error, void *ud)
{
    tb_request *req = ud;
    if (error) {
        tb_respond_error(req, 500, error);
        return;
    }
    char *json = NULL;
    size_t len = 0;
    json = malloc(16);
    len = (size_t)snprintf(json, 16, "{\"results\":[");
    for (int r = 0; r < rows->nrows; r++) {
        if (r > 0) {
            json = realloc(json, len + 2);
            json[len++] = ',';
            json[len] = '\0';
        }
        tb_json_append_string(&json, &len, tb_rows_get(rows, r, 0)->s);
    }
    json = realloc(json, len + 3);
    memcpy(json + len, "]}", 3);
    tb_respond_json(req, 200, json);
    free(json);
}

static void search(tb_request *req)
{
    const char *q = tb_query_param(req, "q");
    char *pattern = malloc(strlen(q ? q : "") + 3);
    sprintf(pattern, "%%%s%%", q ? q : "");
    tb_value p = tb_text(pattern);
    tb_db_query("SELECT text FROM todos WHERE text LIKE ? ORDER BY id LIMIT 10", &p, 1,
                search_rows, req);
    free(pattern); /* the parameters are copied when the call is made */
}

/* POST /todos/:email with the text as the body: adds a todo for that user. */
static void added(int64_t changed, const char *error, void *ud)
{
    tb_request *req = ud;
    if (error) {
        tb_respond_error(req, 400, error);
        return;
    }
    if (changed == 0) {
        tb_respond_error(req, 404, "No such user");
        return;
    }
    tb_respond_json(req, 201, "{\"added\":1}");
}

static void add(tb_request *req)
{
    size_t len;
    const char *text = tb_body(req, &len);
    if (len == 0) {
        tb_respond_error(req, 400, "the body (the todo's text) is empty");
        return;
    }
    tb_value params[2] = {tb_text(text), tb_text(tb_param(req, "email"))};
    tb_db_execute("INSERT INTO todos (user, text) SELECT id, ? FROM _user WHERE email = ?", params,
                  2, added, req);
}

/* POST /todos/:email/done: marks all of a user's todos done and records how many, in one
 * transaction (the two statements happen together or not at all). */
typedef struct done_op {
    tb_request *req;
    uint32_t tx;
    int64_t changed;
} done_op;

static void done_committed(const char *error, void *ud)
{
    done_op *op = ud;
    if (error) {
        tb_respond_error(op->req, 500, error);
    } else {
        char json[64];
        snprintf(json, sizeof json, "{\"completed\":%lld}", (long long)op->changed);
        tb_respond_json(op->req, 200, json);
    }
    free(op);
}

static void done_rolled_back(const char *error, void *ud)
{
    (void)error;
    done_op *op = ud;
    tb_respond_error(op->req, 404, "No such user");
    free(op);
}

static void done_updated(int64_t changed, const char *error, void *ud)
{
    done_op *op = ud;
    if (error) {
        tb_respond_error(op->req, 500, error);
        tb_tx_rollback(op->tx, NULL, NULL);
        free(op);
        return;
    }
    op->changed = changed;
    tb_tx_commit(op->tx, done_committed, op);
}

static void done_user(const tb_rows *rows, const char *error, void *ud)
{
    done_op *op = ud;
    if (error || rows->nrows == 0) {
        tb_tx_rollback(op->tx, done_rolled_back, op);
        return;
    }
    tb_value id = *tb_rows_get(rows, 0, 0);
    tb_tx_execute(op->tx, "UPDATE todos SET completed = 1 WHERE user = ? AND completed = 0", &id, 1,
                  done_updated, op);
}

static void done_begun(uint32_t tx, const char *error, void *ud)
{
    done_op *op = ud;
    if (error) {
        tb_respond_error(op->req, 500, error);
        free(op);
        return;
    }
    op->tx = tx;
    tb_value email = tb_text(tb_param(op->req, "email"));
    tb_tx_query(tx, "SELECT id FROM _user WHERE email = ?", &email, 1, done_user, op);
}

static void done_all(tb_request *req)
{
    done_op *op = calloc(1, sizeof *op);
    op->req = req;
    tb_tx_begin(done_begun, op);
}

void tb_init(void)
{
    tb_route("GET", "/stats/todos", stats);
    tb_route("GET", "/todos/search", search);
    tb_route("POST", "/todos/:email", add);
    tb_route("POST", "/todos/:email/done", done_all);
}
