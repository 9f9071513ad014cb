/* A compiled component that misuses the record hook ABI on purpose, for
 * tests/hostile/test_records_hooks.c: it calls the `trail` imports directly (trailbase.h's raw
 * declarations) to answer twice, answer outside a hook, answer a status that is neither 0 nor
 * 400-599, smuggle keys beside the record, send a message that is not UTF-8, try every way to end
 * or nest the write's transaction, and leave a thousand timers pending. */
#define TRAILBASE_IMPLEMENTATION
#include "trailbase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void audit(const char *what)
{
    tb_value v = tb_text(what);
    tb_db_execute("INSERT INTO audit (what) VALUES (?)", &v, 1, NULL, NULL);
}

/* Runs sql raw (kind 1: execute) and returns the host's status for it: 0 ok, 1 failed, <0. */
static int raw_exec(const char *sql)
{
    int h = tb__sql(0, 1, sql, strlen(sql), "", 0);
    if (h < 0) return h;
    int len = tb__result_len(h);
    if (len < 0) {
        tb__release(h);
        return -100; /* pending */
    }
    char *buf = malloc((size_t)len + 1);
    int st = tb__result_take(h, buf, (size_t)len);
    free(buf);
    return st;
}

static void attack(tb_hook *h)
{
    size_t len, vlen;
    const char *rec = tb_hook_record(h, &len);
    const char *v = tb_json_get(rec, len, "mode", &vlen);
    char *mode = v ? tb_json_string(v, vlen) : NULL;
    if (mode == NULL) mode = strdup("");
    audit(mode); /* a row every failed write must take back with it */
    if (strcmp(mode, "twice") == 0) {
        int first = tb__hook_result(0, "", 0);
        int second = tb__hook_result(418, "x", 1);
        char line[100];
        snprintf(line, sizeof line, "twice: first %d second %d", first, second);
        audit(line);
    } else if (strcmp(mode, "status200") == 0) {
        tb__hook_result(200, "", 0);
    } else if (strcmp(mode, "inject") == 0) {
        const char *j = "{\"mode\":\"x\"},\"error\":{\"status\":401,\"message\":\"owned\"}";
        tb__hook_result(0, j, strlen(j));
    } else if (strcmp(mode, "array") == 0) {
        tb__hook_result(0, "[1,2]", 5);
    } else if (strcmp(mode, "message") == 0) {
        static const char m[] = "a \"quoted\" \x01 \xff\xfe line\nend \xe2\x82\xac";
        tb__hook_result(451, m, sizeof m - 1);
    } else if (strcmp(mode, "escape") == 0) {
        static const char *const stmts[] = {"COMMIT",        "/* c */ commit", "  END",
                                            "ROLLBACK",      "SAVEPOINT s",    "RELEASE s",
                                            "ROLLBACK TO s", "BEGIN",          "-- x\nCOMMIT"};
        int refused = 0, n = (int)(sizeof stmts / sizeof *stmts);
        for (int i = 0; i < n; i++)
            refused += raw_exec(stmts[i]) == 1;
        int t = tb__tx_begin(); /* BEGIN IMMEDIATE inside the write's transaction */
        int tlen = tb__result_len(t);
        char buf[300];
        refused +=
            tlen >= 0 && tb__result_take(t, buf, (size_t)tlen < sizeof buf ? (size_t)tlen : 0) != 0;
        char msg[100];
        snprintf(msg, sizeof msg, "refused %d of %d", refused, n + 1);
        tb_hook_reject(h, 418, msg);
    } else if (strcmp(mode, "pending") == 0) {
        for (int i = 0; i < 1000; i++)
            tb__timer(60000);
        tb__hook_result(0, "", 0);
    }
    free(mode);
}

static void ok(tb_request *req)
{
    tb_respond_text(req, 200, "ok");
}

/* trail.hook_result outside a hook: refused (-1). */
static void outside(tb_request *req)
{
    char text[32];
    snprintf(text, sizeof text, "%d", tb__hook_result(0, "", 0));
    tb_respond_text(req, 200, text);
}

/* How many of 1000 timers the instance may start now (all, unless handles leaked). */
static void handles(tb_request *req)
{
    int hs[1000], n = 0;
    for (int i = 0; i < 1000; i++) {
        hs[i] = tb__timer(60000);
        n += hs[i] > 0;
    }
    for (int i = 0; i < 1000; i++)
        if (hs[i] > 0) tb__release(hs[i]);
    char text[32];
    snprintf(text, sizeof text, "%d", n);
    tb_respond_text(req, 200, text);
}

void tb_init(void)
{
    tb_route("GET", "/ok", ok);
    tb_route("GET", "/outside", outside);
    tb_route("GET", "/handles", handles);
    tb_record_hook("things", TB_BEFORE_CREATE, attack);
}
