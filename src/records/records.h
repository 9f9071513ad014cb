/* records/records.h: Record APIs: tables and views of the database served under
 * /api/records/v1/NAME as the reference system serves them (list with filters, order, cursors,
 * counts and expansion; read, create, update, delete; their JSON schema), with per-operation ACLs
 * and row-level access rules written in SQL, and realtime subscriptions (Server-Sent Events).
 *
 * DESIGN: the APIs are declared in config.textproto (cfg_record_api). At start-up
 * rec_set_load() reads each table's columns, primary key and foreign keys from the database and
 * checks the configuration against them (unknown table, column or expansion, a rule that does not
 * compile): a mistake stops the start with a message naming the API. The set is immutable from
 * then on and shared by every worker; each request runs on its worker's own connection.
 *
 * Security: every value from a request is a bound parameter; every identifier in a statement
 * comes from the schema read at start-up, never from the request (a request's column name is
 * only ever looked up in that list). A rule is part of the one statement that reads or writes
 * (a SELECT's WHERE, an INSERT ... SELECT ... WHERE, an UPDATE or DELETE whose WHERE holds it),
 * never checked by a read before a write. docs/records.md is the user's view.
 *
 * Thread: the set is read-only after rec_set_load(); handlers run on the worker that received
 * the request. */
#ifndef TRAIL_RECORDS_RECORDS_H
#define TRAIL_RECORDS_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

struct cfg;
struct db_conn;
struct http_request;
struct http_router;

/* The caller of a request as the Record APIs see it. */
typedef struct rec_user {
    bool signed_in;
    uint8_t id[16]; /* the _user row's id (a UUID's 16 bytes); valid when signed_in */
    bool admin;
    char email[256];
} rec_user;

/* Finds the caller of req. Returns 0 with *out filled (signed_in false for an anonymous
 * request), or an HTTP status (401, 403) when the request carries credentials that do not
 * count, with *why a static message. Thread: any worker. */
typedef int (*rec_user_fn)(const struct http_request *req, rec_user *out, const char **why);

/* The rec_user_fn of `trail run`: the caller as auth/auth.h finds it (the published auth_ctx),
 * 401 for a token that is invalid or expired, 403 for a cookie write without its CSRF token. */
int rec_user_from_auth(const struct http_request *req, rec_user *out, const char **why);

typedef struct rec_set rec_set;

/* Reads the schema of every API of c->record_apis on db and builds the set. who finds callers
 * (NULL: every request is anonymous). Errors: TR_ECONFIG with err naming the API and what is
 * wrong; TR_ESQL. */
int rec_set_load(const struct cfg *c, struct db_conn *db, rec_user_fn who, rec_set **out,
                 tr_error *err);
void rec_set_free(rec_set *s); /* NULL is a no-op */
/* Signs list cursors with key from now on instead of the random key rec_set_load() made, so that
 * a cursor made by one trail is taken by every trail with the same key (the nodes of a cluster
 * share their signing key; the server derives this one from it). Before the workers start. */
void rec_set_cursor_key(rec_set *s, const uint8_t key[32]);
size_t rec_set_count(const rec_set *s);

/* Registers the routes of every API (GET/POST /api/records/v1/NAME, GET/PATCH/DELETE
 * .../NAME/:id, GET .../NAME/schema, GET .../NAME/subscribe/:id). s must outlive r. Errors as
 * http_router_add(). */
int rec_register_routes(const rec_set *s, struct http_router *r, tr_error *err);

/* Installs on db (a worker's connection: every write of the worker, its Record API requests and
 * its guests' statements, goes through it) the hooks that feed realtime subscriptions: SQLite's
 * pre-update hook captures each changed row of a subscribable API's table, the WAL hook
 * publishes them once their transaction committed, the rollback hook drops them. Nothing when
 * no API enables subscriptions. ud is the rec_set (may be NULL). Thread: db's. */
void rec_db_attach(struct db_conn *db, void *ud);

/* Cluster mode's realtime (records/cluster_feed.c): writes run on the cluster's leader, where no
 * worker's hook sees them, so triggers that trail installs in the cluster's database log each
 * changed row of a subscribable API's table in the writing transaction, and one thread per node
 * reads that log and hands the changes to its workers' subscribers (docs/scaling.md, "Realtime
 * in the cluster"). */
typedef struct rec_feed rec_feed;

/* The names of the triggers rec_feed_start() installs, as an SQL condition on a `name` column. */
#define REC_FEED_TRIGGER_NAMES "name LIKE '\\_trail\\_rt\\_%' ESCAPE '\\'"

/* Creates the change log and the triggers of s's subscribable tables in the cluster's database
 * through the leader (found through any of addresses; each statement waits out another node's
 * transaction) and in mirror (the node's schema mirror, which guests' statements are checked
 * against), then starts the node's feed thread, which reads the log from its present end on.
 * From then on the workers' own hooks capture nothing. *out is NULL when no API of s enables
 * subscriptions. Errors: the client's (no leader: TR_ETIMEDOUT), TR_ESQL, TR_ECONFIG for a table
 * with more columns than a trigger can log; err says which. Thread: the main thread, before the
 * workers start. */
int rec_feed_start(const rec_set *s, struct db_conn *mirror, const char *const *addresses, size_t n,
                   rec_feed **out, tr_error *err);
/* Stops the thread (a call under way fails at once) and frees f (NULL is a no-op). Call it before
 * the workers are freed: the thread posts to their loops. */
void rec_feed_stop(rec_feed *f);

/* Adapts rec_register_routes() to a route-registering callback taking (router, ud, err); ud is
 * the rec_set (may be NULL: nothing to register). */
int rec_routes_cb(struct http_router *r, void *ud, tr_error *err);

#endif
