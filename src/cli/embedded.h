/* cli/embedded.h: the first-party project template and SDK tarball compiled into trail
 * (build/gen/embedded_files.c, made by tools/embed.sh). */
#ifndef TRAIL_CLI_EMBEDDED_H
#define TRAIL_CLI_EMBEDDED_H

#include <stddef.h>

#include "base/embed.h"

extern const tr_embedded_file cli_embedded_files[];
extern const size_t cli_embedded_files_len;

#endif
