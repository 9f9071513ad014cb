/* cli/cmd_cluster.c: `trail cluster status`: the members of the cluster a node belongs to, their
 * roles, the leader, whether each answers, and each one's lag, asked over dqlite's protocol
 * (cluster/cluster.h).
 *
 * DESIGN: the command needs no running trail of its own: it reads the node's address from
 * DATA_DIR/cluster/node-id (or takes --address) and asks that node LEADER and CLUSTER. Any member
 * answers both, so the status shows even when the node asked is a follower; a node that knows no
 * leader (an election under way, no quorum) says so. Each member is then asked LEADER itself
 * (reachable or not), and the members' reports of their Raft log index (cluster/status.c) are
 * read on the leader: a member's lag is what the leader had on disk at the newest second both
 * reported, minus what the member had. */
#include "cli/cli_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/cluster.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: trail cluster status [--data-dir DIR | --address HOST:PORT]\n\n"
            "Shows the members of the cluster (docs/scaling.md): id, address, role, and which one\n"
            "leads, as the node of DIR (default ./traildepot; its address is in\n"
            "DIR/cluster/node-id) or the node at HOST:PORT sees them; whether each member answers;\n"
            "the last Raft log index each member reported having on disk, and its lag: the\n"
            "entries the leader had at that second and the member had not.\n");
}

/* How long the status waits for each member's answer: a member that takes longer is shown as
 * unreachable. */
#define STATUS_MEMBER_TIMEOUT_MS 1500

/* Whether the member at address answers, and which leader it knows (*leader_id 0: none). */
static bool member_answers(const char *address, uint64_t *leader_id, char *why, size_t cap)
{
    dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
    o.timeout_ms = STATUS_MEMBER_TIMEOUT_MS;
    dq_client *c = NULL;
    char *leader = NULL;
    tr_error err = {0};
    int rc = dq_client_open(address, &o, &c, &err);
    if (rc == 0) rc = dq_leader(c, leader_id, &leader, &err);
    if (rc < 0) snprintf(why, cap, "%s", rc == TR_ETIMEDOUT ? "no answer" : tr_strerror(rc));
    tr_free(leader);
    dq_client_close(c);
    return rc == 0;
}

/* The newest report of member id at tick (NULL when there is none). */
static const cluster_report *report_at(const cluster_report *r, size_t n, uint64_t id,
                                       int64_t tick)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].id == id && r[i].tick == tick) return &r[i];
    return NULL;
}

static const cluster_report *newest_report(const cluster_report *r, size_t n, uint64_t id)
{
    const cluster_report *best = NULL;
    for (size_t i = 0; i < n; i++)
        if (r[i].id == id && (best == NULL || r[i].tick > best->tick)) best = &r[i];
    return best;
}

/* The LOG and LAG columns and a note for member id: lag is the entries the leader had on disk at
 * the newest second both reported and the member had not. */
static void lag_columns(const cluster_report *r, size_t n, uint64_t id, uint64_t leader_id,
                        bool reachable, char *cols, size_t ccap, char *note, size_t ncap)
{
    const cluster_report *mine = newest_report(r, n, id);
    note[0] = '\0';
    if (mine == NULL) {
        snprintf(cols, ccap, "%-10s  %s", "-", "-");
        snprintf(note, ncap, "  no report yet");
        return;
    }
    double age_s = (double)(tr_wall_ms() - mine->at_ms) / 1000.0;
    const cluster_report *lead = NULL, *same = NULL;
    for (size_t i = 0; leader_id && i < n; i++) {
        if (r[i].id != id) continue;
        const cluster_report *l = report_at(r, n, leader_id, r[i].tick);
        if (l && (same == NULL || r[i].tick > same->tick)) {
            same = &r[i];
            lead = l;
        }
    }
    if (same == NULL) { /* the member's reports are older than the leader's: compare the newest */
        same = mine;
        lead = leader_id ? newest_report(r, n, leader_id) : NULL;
    }
    if (lead == NULL) {
        snprintf(cols, ccap, "%-10" PRIu64 "  %s", mine->log_index, "?");
    } else {
        uint64_t lag = lead->log_index > same->log_index ? lead->log_index - same->log_index : 0;
        snprintf(cols, ccap, "%-10" PRIu64 "  %" PRIu64, mine->log_index, lag);
    }
    /* Reports come every second; one much older says the member stopped reporting. */
    if (age_s > 3.0 || !reachable)
        snprintf(note, ncap, "  last report %.1f s ago", age_s);
}

static int status(const char *address)
{
    tr_error err = {0};
    dq_client *c = NULL, *lc = NULL;
    dq_node_info *nodes = NULL;
    cluster_report *reports = NULL;
    size_t n = 0, nreports = 0;
    char *leader = NULL;
    uint64_t leader_id = 0;
    int rc = dq_client_open(address, NULL, &c, &err);
    if (rc == 0) rc = dq_leader(c, &leader_id, &leader, &err);
    if (rc == 0) rc = dq_cluster(c, &nodes, &n, &err);
    if (rc < 0) {
        fprintf(stderr, "trail cluster status: %s\n", err.msg);
        goto out;
    }
    if (leader_id)
        printf("cluster of %zu member%s; leader: node %" PRIu64 " at %s (asked %s)\n", n,
               n == 1 ? "" : "s", leader_id, leader, address);
    else
        printf("cluster of %zu member%s; no leader known to %s (an election, or no quorum)\n", n,
               n == 1 ? "" : "s", address);
    /* The members' reports of their log index are read on the leader; without one (or when it
     * does not answer) the lag columns stay empty and the reason is said once. */
    tr_error rerr = {0};
    const char *no_reports = NULL;
    if (leader_id) {
        dq_client_opts o = DQ_CLIENT_OPTS_DEFAULT;
        o.timeout_ms = 3000;
        int lrc = dq_client_open(leader, &o, &lc, &rerr);
        if (lrc == 0) lrc = cluster_reports_read(lc, &reports, &nreports, &rerr);
        if (lrc < 0) no_reports = rerr.msg;
    } else {
        no_reports = "no leader to read the members' reports on";
    }
    printf("%-20s  %-24s  %-14s  %-11s  %-10s  %s\n", "ID", "ADDRESS", "ROLE", "STATE",
           "LOG INDEX", "LAG");
    for (size_t i = 0; i < n; i++) {
        uint64_t sees = 0;
        char why[120] = "";
        bool up = member_answers(nodes[i].address, &sees, why, sizeof why);
        char role[40], cols[64], note[200];
        snprintf(role, sizeof role, "%s%s", dq_role_name(nodes[i].role),
                 nodes[i].id == leader_id ? " (leader)" : "");
        lag_columns(reports, nreports, nodes[i].id, leader_id, up, cols, sizeof cols, note,
                    sizeof note);
        const char *state = !up ? "unreachable" : sees == 0 ? "no leader" : "reachable";
        printf("%-20" PRIu64 "  %-24s  %-14s  %-11s  %s%s%s%s\n", nodes[i].id, nodes[i].address,
               role, state, cols, note, up ? "" : ": ", up ? "" : why);
    }
    if (no_reports) printf("(lag unknown: %s)\n", no_reports);
out:
    tr_free(reports);
    dq_nodes_free(nodes, n);
    tr_free(leader);
    dq_client_close(lc);
    dq_client_close(c);
    return rc < 0 ? 1 : 0;
}

int cli_cluster(int argc, char **argv)
{
    const char *data_dir = "traildepot";
    const char *address = NULL;
    const char *rest[2];
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (cli__opt(argc, argv, &i, "--data-dir", &data_dir)) continue;
        if (cli__opt(argc, argv, &i, "--address", &address)) continue;
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "trail cluster: unknown option '%s' (see `trail cluster --help`)\n",
                    argv[i]);
            return 2;
        } else if (nrest < 2) {
            rest[nrest++] = argv[i];
        } else {
            fprintf(stderr, "trail cluster: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    static const char *const names[] = {"status", NULL};
    if (nrest == 0) {
        fprintf(stderr, "trail cluster: missing command\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(rest[0], "status") != 0)
        return cli__unknown_command("trail cluster", rest[0], names);
    if (nrest != 1) {
        fprintf(stderr, "trail cluster status: takes no arguments (see `trail cluster --help`)\n");
        return 2;
    }
    if (address) return status(address);
    uint64_t id;
    char *addr = NULL;
    tr_error err = {0};
    if (cluster_id_read(data_dir, &id, &addr, &err) < 0) {
        fprintf(stderr, "trail cluster status: %s\n", err.msg);
        return 1;
    }
    int rc = status(addr);
    tr_free(addr);
    return rc;
}
