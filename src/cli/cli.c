/* cli/cli.c: dispatches `trail SUBCOMMAND ...` and prints the top-level help. */
#include "cli/cli.h"
#include "cli/cli_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "wasm/js/jsg.h"

#ifndef TRAIL_VERSION
#define TRAIL_VERSION "0.1.0"
#endif

const cli_command cli_commands[] = {
    {"run", "serve HTTP, the database and the WASM components", cli_run},
    {"components", "list, add, inspect, remove and update the WASM components", cli_components},
    {"jobs", "list the scheduled jobs, or run one now", cli_jobs},
    {"eval", "evaluate JavaScript in a fresh sandboxed isolate and print the result", cli_eval},
    {"user", "add, delete, verify users; change passwords and emails; end sessions; mint tokens",
     cli_user},
    {"admin", "list, promote and demote admins", cli_admin},
    {"cluster", "show the members of the cluster, their roles and the leader", cli_cluster},
    {NULL, NULL, NULL},
};

bool cli__opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return false;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return true;
    }
    if (argv[*i][n] != '\0' || *i + 1 >= argc) return false;
    *value = argv[++*i];
    return true;
}

bool cli__wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return true;
    return false;
}

static void usage(FILE *out)
{
    fprintf(out, "trail %s: a single-executable application backend\n\n", TRAIL_VERSION);
    fprintf(out, "Usage: trail <command> [options]\n\nCommands:\n");
    for (const cli_command *c = cli_commands; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out,
            "\nRun `trail <command> --help` for a command's options, `trail --version` for the\n"
            "versions of trail, its JavaScript engine and SQLite.\n");
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("trail %s (%s, SQLite %s)\n", TRAIL_VERSION, jsg_engine_version(),
               sqlite3_libversion());
        return 0;
    }
    for (const cli_command *c = cli_commands; c->name; c++)
        if (strcmp(c->name, cmd) == 0) return c->fn(argc - 1, argv + 1);
    const char *names[TR_ARRAY_LEN(cli_commands)];
    size_t n = 0;
    for (const cli_command *c = cli_commands; c->name; c++)
        names[n++] = c->name;
    names[n] = NULL;
    return cli__unknown_command("trail", cmd, names);
}

int cli__unknown_command(const char *group, const char *word, const char *const *valid)
{
    fprintf(stderr, "%s: unknown command '%s'; the commands are:", group, word);
    for (size_t i = 0; valid[i]; i++)
        fprintf(stderr, "%s %s", i ? "," : "", valid[i]);
    fprintf(stderr, " (see `%s --help`)\n", group);
    return 2;
}
