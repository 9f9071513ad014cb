/* cli/cmd_run.c: `trail run`: its flags, turned into server_opts for server_run() (server/server.h),
 * which does the rest. */
#include "cli/cli_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: trail run [options]\n\n"
        "Serves HTTP, the database and the WASM components of a data directory.\n\n"
        "Options:\n"
        "  --address HOST:PORT       where to listen (default localhost:4000, which is\n"
        "                            127.0.0.1 and ::1); a name listens on every address it\n"
        "                            names, a numeric address ([::1] for IPv6) on that one\n"
        "                            only; port 0 picks a free port\n"
        "  --data-dir DIR            the data directory (default ./traildepot; created with\n"
        "                            config.textproto, data/, migrations/, wasm/ if missing)\n"
        "  --public-dir DIR          serve static files from DIR\n"
        "  --runtime-root-fs DIR     the directory guest code may read (sandbox root)\n"
        "  --runtime-threads N       worker threads (default: config, else the number of CPUs)\n"
        "  --cluster-address HOST:PORT  cluster mode: run a dqlite node on HOST:PORT, the\n"
        "                            address the other members reach it at (docs/scaling.md)\n"
        "  --join HOST:PORT,...      members of the cluster to join through (none: this node\n"
        "                            starts a new cluster)\n"
        "  -q, --quiet               no access log on stdout\n"
        "  -h, --help                this help\n\n"
        "Settings come from DIR/config.textproto; a flag overrides the file.\n"
        "SIGINT or SIGTERM stops the server gracefully; SIGHUP reloads the components.\n"
        "Other commands reach the server through DIR/trail.sock (`trail jobs run`).\n");
}

/* Accepts "--name value" and "--name=value". Returns the value, or NULL if argv[*i] is not name
 * (a missing value is reported and sets *bad). */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *bad)
{
    size_t nl = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, nl) != 0) return NULL;
    if (a[nl] == '=') return a + nl + 1;
    if (a[nl] != '\0') return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "trail run: %s needs a value\n", name);
        *bad = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_flags(int argc, char **argv, server_opts *f)
{
    for (int i = 1; i < argc; i++) {
        bool bad = false;
        const char *v;
        if ((v = flag_value(argc, argv, &i, "--address", &bad))) {
            f->address = v;
        } else if ((v = flag_value(argc, argv, &i, "--data-dir", &bad))) {
            f->data_dir = v;
        } else if ((v = flag_value(argc, argv, &i, "--public-dir", &bad))) {
            f->public_dir = v;
        } else if ((v = flag_value(argc, argv, &i, "--cluster-address", &bad))) {
            f->cluster_address = v;
        } else if ((v = flag_value(argc, argv, &i, "--join", &bad))) {
            f->join = v;
        } else if ((v = flag_value(argc, argv, &i, "--runtime-root-fs", &bad))) {
            f->root_fs = v;
        } else if ((v = flag_value(argc, argv, &i, "--runtime-threads", &bad))) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > SERVER_MAX_WORKERS) {
                fprintf(stderr, "trail run: --runtime-threads must be 1..%d, got '%s'\n",
                        SERVER_MAX_WORKERS, v);
                return -1;
            }
            f->threads = (int)n;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            f->quiet = true;
        } else if (!bad && argv[i][0] != '-') {
            fprintf(stderr,
                    "trail run: unexpected argument '%s': trail run takes options only (see "
                    "`trail run --help`)\n",
                    argv[i]);
            return -1;
        } else if (!bad) {
            fprintf(stderr, "trail run: unknown option '%s' (see `trail run --help`)\n", argv[i]);
            return -1;
        }
        if (bad) return -1;
    }
    return 0;
}

int cli_run(int argc, char **argv)
{
    if (cli__wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    server_opts f = {.data_dir = "./traildepot"};
    if (parse_flags(argc, argv, &f) < 0) return 2;
    return server_run(&f);
}
