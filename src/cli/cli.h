/* cli/cli.h: the `trail` command line: subcommands run, eval, components, ... */
#ifndef TRAIL_CLI_CLI_H
#define TRAIL_CLI_CLI_H

/* Parses argv and runs the subcommand; returns the process exit status. */
int cli_main(int argc, char **argv);

#endif
