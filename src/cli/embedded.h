/* cli/embedded.h: files compiled into the trail binary (the TypeScript project template and the
 * SDK tarball), generated at build time by tools/embed.sh into build/gen/embedded_files.c. */
#ifndef TRAIL_CLI_EMBEDDED_H
#define TRAIL_CLI_EMBEDDED_H

#include <stddef.h>

typedef struct cli_embedded_file {
    const char *path;  /* relative path to write it under, e.g. "src/index.ts" */
    const char *start; /* contents, [start, end) */
    const char *end;
} cli_embedded_file;

extern const cli_embedded_file cli_embedded_files[];
extern const size_t cli_embedded_files_len;

#endif
