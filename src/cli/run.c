/* cli/run.c: `trail run`. Placeholder until the server lands (issue: trail run). */
#include "cli/cli_internal.h"

#include <stdio.h>

int cli_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "trail run: not built yet\n");
    return 1;
}
