/* cli/cli_internal.h: the subcommands, one file each, called by cli_main with argv starting at
 * the subcommand's name. Each handles --help itself and returns the exit status. */
#ifndef TRAIL_CLI_CLI_INTERNAL_H
#define TRAIL_CLI_CLI_INTERNAL_H

#include <stdbool.h>

typedef struct cli_command {
    const char *name;
    const char *summary; /* one line for `trail --help` */
    int (*fn)(int argc, char **argv);
} cli_command;

/* The command table, terminated by a zeroed entry; defined in cli.c. */
extern const cli_command cli_commands[];

int cli_eval(int argc, char **argv);
int cli_run(int argc, char **argv);

/* True when argv[1..] has -h or --help. */
bool cli__wants_help(int argc, char **argv);

#endif
