/* tests/e2e/example_checks.h: the checks of the examples/ apps, one function per example taking the
 * HTTP port of a trail that serves it, shared by test_examples.c (one trail) and
 * test_cluster_examples.c (every node of a three-node cluster, and nginx in front of them).
 *
 * Each function sends its requests and CHECKs status, headers and bodies; a failed CHECK ends the
 * test. What a function cannot see from HTTP (a server's log) stays with its caller. */
#ifndef TRAIL_TESTS_E2E_EXAMPLE_CHECKS_H
#define TRAIL_TESTS_E2E_EXAMPLE_CHECKS_H

#include "e2e/harness.h"

#define EX_JSON "application/json"
#define EX_TEXT "text/plain; charset=utf-8"

/* One request: method, path, extra header lines (each ending CRLF, may be ""), body (may be
 * NULL). Fails the test when no response comes. */
th_resp ex_call(int port, const char *method, const char *path, const char *headers,
                const char *body);
/* Checks status, content type (prefix; NULL: not checked) and exact body (NULL: not checked),
 * then frees r. */
void ex_expect(th_resp r, int status, const char *type, const char *body);

void ex_check_http_handlers(int port);
void ex_check_request_api(int port);
void ex_check_response_api(int port);
/* Reads only: may run any number of times against the same data. */
void ex_check_database_access(int port);
/* The responses only; the periodic callback's log lines are the caller's to check. */
void ex_check_async_operations(int port);
/* 10 requests from client, then 429; another client and one without the header get 200. The
 * counts live in the worker's isolate: a fresh client per call (e.g. "10.0.0.1"), on one worker. */
void ex_check_rate_limiting(int port, const char *client);
void ex_check_analytics(int port);
void ex_check_dashboard(int port);
void ex_check_vector_search(int port);
/* The responses only; the log lines are the caller's to check. */
void ex_check_error_handling(int port);
/* The kv limiter: 10 x 200 then 429 for client on one trail (its store counts). Waits for the
 * next minute when the current one is near its end (the limiter's windows are wall-clock
 * minutes). */
void ex_check_kv_rate_limiting(int port, const char *client);
/* The kv cache on a trail whose store has no cached value yet: the first read computes (total
 * todos = total, one completed), the next come from the store, a POST adds a todo and drops the
 * value, the next read computes total + 1. */
void ex_check_kv_cache(int port, int total);

#endif
