/* tests/e2e/records_util.h: helpers shared by the Record API tests (e2e and hostile): a data
 * directory with a migration and a config, users with access tokens, and requests with JSON. */
#ifndef TRAIL_TESTS_E2E_RECORDS_UTIL_H
#define TRAIL_TESTS_E2E_RECORDS_UTIL_H

#include "e2e/harness.h"

/* Creates <test_tmpdir()>/NAME with migrations/001.sql = sql and config.textproto = config;
 * writes the directory's path into depot (cap 512). */
void rt_depot(const char *name, const char *sql, const char *config, char *depot);

/* Adds a verified user (email, password "password123") to depot with `trail user add` and mints
 * an access token into token (cap 2048); the user's id (URL-safe base64) into id (cap 64). */
void rt_user(const char *depot, const char *email, char *token, char *id);

/* One request on a fresh connection: method, path, body (NULL: none; sent as JSON), token (NULL:
 * anonymous). Fails the test when no response comes. */
th_resp rt_req(int port, const char *method, const char *path, const char *body, const char *token);

/* rt_req() that checks the status (printing the body when it differs) and frees the response
 * unless out is given. */
void rt_expect(int port, const char *method, const char *path, const char *body, const char *token,
               int status, th_resp *out);

/* GET path (a list with count=true) as token; its total_count. */
long rt_total_count(int port, const char *path, const char *token);

/* Server-Sent Events: opens a subscription (GET path) and waits for its first comment.
 * Returns 0, or -1 with the response's start on stderr (a refusal: 403, 404). */
int rt_sse_open(int port, const char *path, const char *token, th_conn *c);
/* Reads the stream into c->buf until it contains needle (0) or timeout_ms passed (-1) or the
 * server closed it (-2; what came is in c->buf). */
int rt_sse_wait(th_conn *c, const char *needle, int timeout_ms);

/* The record-hook tests' tables (notes, crashy, audit) and config, shared by the TypeScript,
 * C and Rust components that hook them (tests/data/components/records_hooks*,
 * tests/data/rust/record-hooks). */
extern const char rt_hooks_sql[];
extern const char rt_hooks_cfg[];
/* The audit table's texts, oldest first (malloc'd). */
char *rt_audit_of(int port);
/* The checks every such component passes on a fresh depot (one worker): before hooks change and
 * reject creates, updates and deletes and write inside the write's transaction; after hooks see
 * the committed record. */
void rt_hooks_check_writes(int port);

#endif
