/* cli/cmd_cluster.c: `trail cluster status`: the members of the cluster a node belongs to, their
 * roles and the leader, asked of that node over dqlite's protocol (cluster/cluster.h).
 *
 * DESIGN: the command needs no running trail of its own: it reads the node's address from
 * DATA_DIR/cluster/node-id (or takes --address) and asks that node LEADER and CLUSTER. Any member
 * answers both, so the status shows even when the node asked is a follower; a node that knows no
 * leader (an election under way, no quorum) says so. */
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
            "DIR/cluster/node-id) or the node at HOST:PORT sees them.\n");
}

static int status(const char *address)
{
    tr_error err = {0};
    dq_client *c = NULL;
    dq_node_info *nodes = NULL;
    size_t n = 0;
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
    printf("%-20s  %-24s  %s\n", "ID", "ADDRESS", "ROLE");
    for (size_t i = 0; i < n; i++)
        printf("%-20" PRIu64 "  %-24s  %s%s\n", nodes[i].id, nodes[i].address,
               dq_role_name(nodes[i].role), nodes[i].id == leader_id ? " (leader)" : "");
out:
    dq_nodes_free(nodes, n);
    tr_free(leader);
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
