/* cli/cli_internal.h: the subcommands, one file each, called by cli_main with argv starting at
 * the subcommand's name. Each handles --help itself and returns the exit status. */
#ifndef TRAIL_CLI_CLI_INTERNAL_H
#define TRAIL_CLI_CLI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cli_command {
    const char *name;
    const char *summary; /* one line for `trail --help` */
    int (*fn)(int argc, char **argv);
} cli_command;

/* The command table, terminated by a zeroed entry; defined in cli.c. */
extern const cli_command cli_commands[];

int cli_eval(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_components(int argc, char **argv);
int cli_jobs(int argc, char **argv);
int cli_cluster(int argc, char **argv); /* cli/cmd_cluster.c */
int cli_user(int argc, char **argv);  /* cli/cmd_users.c */
int cli_admin(int argc, char **argv); /* cli/cmd_users.c */

/* First-party components (cli/scaffold.c). */
bool cli__first_party_installed(const char *name, const char *wasm_dir);
int cli__scaffold_first_party(const char *name, const char *wasm_dir, bool update);
int cli__remove_first_party(const char *name, const char *wasm_dir);
/* The command that builds a first-party project, run in its folder ("./build.sh"). */
const char *cli__first_party_build_hint(const char *name);
/* Prints a line for an installed first-party project; false when there is none. */
bool cli__print_first_party_status(const char *wasm_dir);
/* The C project of trailbase-guest-c (cli/scaffold_c.c): written, removed, whether it is there. */
int cli__scaffold_c(const char *wasm_dir);
int cli__remove_c(const char *wasm_dir);
bool cli__c_installed(const char *wasm_dir);
/* Prints a component's routes and jobs under its `installed` line. */
void cli__print_manifest(const char *bytes, size_t len);

/* Prints "GROUP: unknown command 'WORD'; the commands are: a, b, c (see `GROUP --help`)" on
 * stderr and returns the usage exit status, 2. valid is NULL-terminated. */
int cli__unknown_command(const char *group, const char *word, const char *const *valid);

/* Whether argv[*i] is the option name ("--name VALUE" or "--name=VALUE"): then *value is its
 * value and *i the index of the last word it took. "--name" last, without a value, is not. */
bool cli__opt(int argc, char **argv, int *i, const char *name, const char **value);

/* True when argv[1..] has -h or --help. */
bool cli__wants_help(int argc, char **argv);

#endif
