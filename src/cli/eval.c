/* cli/eval.c: `trail eval CODE`. Placeholder until the engine lands (issue: sandbox engine). */
#include "cli/cli_internal.h"

#include <stdio.h>

int cli_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "trail eval: not built yet\n");
    return 1;
}
