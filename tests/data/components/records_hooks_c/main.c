/* Record hooks in C for tests/e2e/test_records_hooks_native.c, the same behaviour as the Rust
 * component (tests/data/rust/record_hooks) and close to the TypeScript one (records_hooks):
 * before hooks that change or reject a write and write to the database inside its transaction,
 * after hooks that see the committed record, and hooks that fail after writing (a trap, the CPU
 * budget, a timer they would wait for, an error status). */
#define TRAILBASE_IMPLEMENTATION
#include "trailbase.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void audit(const char *what)
{
    tb_value v = tb_text(what);
    tb_db_execute("INSERT INTO audit (what) VALUES (?)", &v, 1, NULL, NULL);
}

/* A string field of the hook's record, decoded (malloc'd), or "" (malloc'd). */
static char *field(const tb_hook *h, const char *key)
{
    size_t len, vlen;
    const char *rec = tb_hook_record(h, &len);
    const char *v = tb_json_get(rec, len, key, &vlen);
    char *s = v ? tb_json_string(v, vlen) : NULL;
    return s ? s : strdup("");
}

/* Whether the record's field key is the number 1. */
static int is_one(const tb_hook *h, const char *key)
{
    size_t len, vlen;
    const char *rec = tb_hook_record(h, &len);
    const char *v = tb_json_get(rec, len, key, &vlen);
    return v && vlen == 1 && v[0] == '1';
}

static void before_create(tb_hook *h)
{
    char *text = field(h, "text");
    if (strstr(text, "forbidden")) {
        tb_hook_reject(h, 422, "no forbidden words");
        free(text);
        return;
    }
    char line[600];
    const char *email = tb_hook_user_email(h);
    snprintf(line, sizeof line, "before create %.400s by %s", text, email ? email : "anonymous");
    audit(line);
    /* trimmed and in upper case */
    char *p = text, *q = text + strlen(text);
    while (*p == ' ') p++;
    while (q > p && q[-1] == ' ') q--;
    *q = '\0';
    for (char *c = p; *c; c++) *c = (char)toupper((unsigned char)*c);
    char *json = NULL;
    size_t n = 0;
    tb_json_append_string(&json, &n, p);
    char rec[800];
    snprintf(rec, sizeof rec, "{\"text\":%s,\"stamped\":1,\"keep\":%d}", json, is_one(h, "keep"));
    tb_hook_set_record(h, rec);
    free(json);
    free(text);
}

static void after_create(tb_hook *h)
{
    char *text = field(h, "text");
    char line[600];
    snprintf(line, sizeof line, "after create %s %.400s", tb_hook_id(h), text);
    audit(line);
    free(text);
}

static void before_update(tb_hook *h)
{
    if (is_one(h, "keep")) {
        tb_hook_reject(h, 403, "notes cannot be kept by an update");
        return;
    }
    size_t len;
    const char *rec = tb_hook_record(h, &len);
    /* the fields sent, and stamped: 2 */
    char *out = malloc(len + 32);
    size_t n = len;
    while (n > 0 && rec[n - 1] != '}') n--;
    if (n == 0) {
        tb_hook_reject(h, 500, "the record is not an object");
        free(out);
        return;
    }
    memcpy(out, rec, n - 1);
    size_t i = 1;
    while (i < len && (rec[i] == ' ' || rec[i] == '\n')) i++;
    int empty = i < len && rec[i] == '}';
    snprintf(out + n - 1, 32, "%s\"stamped\":2}", empty ? "" : ",");
    tb_hook_set_record(h, out);
    free(out);
}

static void after_update(tb_hook *h)
{
    char line[100];
    snprintf(line, sizeof line, "after update %s", tb_hook_id(h));
    audit(line);
}

static void got_keep(const tb_rows *rows, const char *error, void *ud)
{
    int *kept = ud;
    if (error == NULL && rows->nrows == 1) *kept = (int)tb_rows_get(rows, 0, 0)->i;
}

static void before_delete(tb_hook *h)
{
    int kept = -1;
    tb_value id = tb_int(atoll(tb_hook_id(h)));
    /* runs at once inside the write's transaction: the callback has run when this returns */
    tb_db_query("SELECT keep FROM notes WHERE id = ?", &id, 1, got_keep, &kept);
    if (kept == -1) tb_hook_reject(h, 500, "the query did not complete at once");
    if (kept == 1) tb_hook_reject(h, 409, "this note is kept");
}

static void after_delete(tb_hook *h)
{
    char line[100];
    snprintf(line, sizeof line, "after delete %s", tb_hook_id(h));
    audit(line);
}

static void never(const char *error, void *ud)
{
    (void)error;
    (void)ud;
    audit("crashy: a timer's callback ran after the hook");
}

static void commit_done(int64_t changed, const char *error, void *ud)
{
    (void)changed;
    if (error) tb_hook_reject((tb_hook *)ud, 500, error);
}

static void crashy(tb_hook *h)
{
    char *mode = field(h, "mode");
    char line[300];
    snprintf(line, sizeof line, "crashy %.200s was here", mode);
    audit(line);
    if (strcmp(mode, "trap") == 0) __builtin_trap();
    if (strcmp(mode, "loop") == 0)
        for (volatile int i = 0;; i++) {
        }
    if (strcmp(mode, "wait") == 0) tb_sleep(10, never, NULL);
    if (strcmp(mode, "boom") == 0) tb_hook_reject(h, 500, "boom");
    if (strcmp(mode, "commit") == 0) tb_db_execute("COMMIT", NULL, 0, commit_done, h);
    if (strcmp(mode, "garbage") == 0) tb_hook_set_record(h, "{\"mode\":\"x\"},\"error\":{}");
    free(mode);
}

static void ok(tb_request *req)
{
    tb_respond_text(req, 200, "ok");
}

void tb_init(void)
{
    tb_route("GET", "/ok", ok);
    tb_record_hook("notes", TB_BEFORE_CREATE, before_create);
    tb_record_hook("notes", TB_AFTER_CREATE, after_create);
    tb_record_hook("notes", TB_BEFORE_UPDATE, before_update);
    tb_record_hook("notes", TB_AFTER_UPDATE, after_update);
    tb_record_hook("notes", TB_BEFORE_DELETE, before_delete);
    tb_record_hook("notes", TB_AFTER_DELETE, after_delete);
    tb_record_hook("crashy", TB_BEFORE_CREATE, crashy);
}
