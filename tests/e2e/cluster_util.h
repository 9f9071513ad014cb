/* tests/e2e/cluster_util.h: helpers shared by the cluster tests: three real `trail run` nodes on
 * loopback, their status, the leader, and HTTP requests to a node. */
#ifndef TRAIL_TESTS_E2E_CLUSTER_UTIL_H
#define TRAIL_TESTS_E2E_CLUSTER_UTIL_H

#include "e2e/harness.h"

/* A loopback port nothing listens on now (bound, read, closed). */
int cu_free_port(void);
/* qsort()'s comparison of doubles. */
int cu_cmp_double(const void *a, const void *b);

typedef struct cu_node {
    th_server srv;
    char dir[600];
    char addr[64];
    char join[200];
} cu_node;

/* Starts node i in <test_tmpdir()>/n<i> with a fresh cluster address, joining join (NULL: it
 * bootstraps the cluster); extra: more `trail run` arguments (NULL-terminated; may be NULL). */
void cu_node_start(cu_node *n, int i, const char *join, const char *const *extra);
/* Starts node n again, with the arguments of its first start. */
void cu_node_restart(cu_node *n);
/* Starts three nodes (n1 bootstraps, n2 and n3 join) with the same extra arguments and waits until
 * `trail cluster status` shows three voters and a leader. */
void cu_cluster_start(cu_node n[3], const char *const *extra);

/* Runs `trail cluster status --data-dir dir` until it shows want_voters voters and a leader (an
 * election or a promotion may be under way). Returns its last output (free()). */
char *cu_wait_status(const char *dir, int want_voters, int timeout_ms);
/* The index in n[0..count) of the node that leads now (asked through the live ones). */
int cu_leader(const cu_node *n, int count);

/* Hands the leadership to n[i] (a TRANSFER, asked again while it is refused: the node has not
 * caught up yet) and returns once it leads; fails the test after 90 s. */
void cu_make_leader(const cu_node n[3], int i);

/* A data directory with the cluster_sql component and a notes migration (the node's schema
 * mirror), for a node or a single trail. */
void cu_app_dir(const char *dir);
/* A data directory with tests/data/components/COMPONENT built into its wasm/ and migrations/MIGRATION
 * holding sql. */
void cu_app_dir_with(const char *dir, const char *component, const char *migration,
                     const char *sql);

/* One request on a fresh connection (Connection: close); fails the test when none comes. */
th_resp cu_http(int port, const char *method, const char *path, const char *body);

#endif
